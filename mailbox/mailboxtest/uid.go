package mailboxtest

import (
	"math"
	"slices"
	"testing"

	"github.com/davmail/davmail/mailbox"
)

// checkUIDs checks the UID invariants of one folder and returns its
// listing: UIDs above 0 and below UIDNext, strictly ascending in List,
// and StatUID returning for each what Stat returns.
func checkUIDs(t *testing.T, mb mailbox.Mailbox, folder string) []mailbox.Message {
	t.Helper()
	f := mustFolder(t, mb, folder)
	if f.UIDNext == 0 {
		t.Errorf("%q: UIDNext 0", folder)
	}
	if f.UIDValidity == 0 {
		t.Errorf("%q: UIDValidity 0", folder)
	}
	l := mustList(t, mb, folder)
	for i, m := range l {
		if m.UID == 0 || m.UID >= f.UIDNext {
			t.Errorf("%q: message %q has UID %d, want 0 < UID < UIDNext %d", folder, m.Name, m.UID, f.UIDNext)
		}
		if i > 0 && l[i-1].UID >= m.UID {
			t.Errorf("%q: List not in strictly ascending UID order at %d: %d then %d", folder, i, l[i-1].UID, m.UID)
		}
		if s := mustStatUID(t, mb, folder, m.UID); !sameMessage(s, m) {
			t.Errorf("%q: StatUID(%d) and List differ:\n statuid %+v\n list    %+v", folder, m.UID, s, m)
		}
	}
	return l
}

func mustStatUID(t *testing.T, mb mailbox.Mailbox, folder string, uid uint32) mailbox.Message {
	t.Helper()
	m, err := mb.StatUID(t.Context(), folder, uid)
	if err != nil {
		t.Fatalf("StatUID(%q, %d): %v", folder, uid, err)
	}
	if m.UID != uid || m.Folder != folder {
		t.Fatalf("StatUID(%q, %d) = folder %q UID %d", folder, uid, m.Folder, m.UID)
	}
	return m
}

// listedNames returns the names of a listing, in its order.
func listedNames(l []mailbox.Message) []string {
	out := make([]string, len(l))
	for i, m := range l {
		out[i] = m.Name
	}
	return out
}

// uidNext returns the folder's UIDNext.
func uidNext(t *testing.T, mb mailbox.Mailbox, folder string) uint32 {
	t.Helper()
	return mustFolder(t, mb, folder).UIDNext
}

// wantEntered checks the UID of a message that entered folder when its
// UIDNext was before, and that UIDNext moved past it.
func wantEntered(t *testing.T, mb mailbox.Mailbox, what string, m mailbox.Message, before uint32) {
	t.Helper()
	if m.UID < before || m.UID == 0 {
		t.Errorf("%s: UID %d, want at least the folder's earlier UIDNext %d", what, m.UID, before)
	}
	if next := uidNext(t, mb, m.Folder); next <= m.UID {
		t.Errorf("%s: UIDNext %d, want above the new UID %d", what, next, m.UID)
	}
	if got := mustStat(t, mb, m.Folder, m.Name); got.UID != m.UID {
		t.Errorf("%s: Stat says UID %d, the operation returned %d", what, got.UID, m.UID)
	}
}

func testUIDAppend(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	for _, folder := range []string{mailbox.Inbox, "Sent", ""} {
		if f := mustFolder(t, mb, folder); f.UIDNext == 0 {
			t.Errorf("empty folder %q: UIDNext 0", folder)
		}
	}
	var last uint32
	for i, name := range []string{"a.EML", "b.EML", "c.EML", "d.EML"} {
		before := uidNext(t, mb, mailbox.Inbox)
		m := mustAppendNamed(t, mb, mailbox.Inbox, name)
		wantEntered(t, mb, "Append "+name, m, before)
		if i > 0 && m.UID <= last {
			t.Errorf("Append %s: UID %d not above the previous %d", name, m.UID, last)
		}
		last = m.UID
		// Appends elsewhere do not touch this folder's UIDs.
		mustAppendNamed(t, mb, "Sent", name)
	}
	l := checkUIDs(t, mb, mailbox.Inbox)
	if got, want := listedNames(l), []string{"a.EML", "b.EML", "c.EML", "d.EML"}; !slices.Equal(got, want) {
		t.Errorf("INBOX lists %q, want %q (arrival order)", got, want)
	}
	checkUIDs(t, mb, "Sent")
	// A derived name is no different (an empty message: AppendEmpty).
	before := uidNext(t, mb, mailbox.Inbox)
	wantEntered(t, mb, "Append without a name", mustAppend(t, mb, mailbox.Inbox, rawMessage("derived", "x"), mailbox.AppendOptions{}), before)
	checkUIDs(t, mb, mailbox.Inbox)
}

func testUIDNeverReused(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Other")
	seen := map[uint32]string{}
	note := func(m mailbox.Message) {
		t.Helper()
		if prev, ok := seen[m.UID]; ok {
			t.Errorf("UID %d of %s reused, first used by %s", m.UID, m.Name, prev)
		}
		seen[m.UID] = m.Name
	}
	a := mustAppendNamed(t, mb, mailbox.Inbox, "a.EML")
	note(a)
	top := mustAppendNamed(t, mb, mailbox.Inbox, "top.EML")
	note(top)
	// Delete the highest UID, then append: above it, not in its place.
	next := uidNext(t, mb, mailbox.Inbox)
	if err := mb.Delete(ctx, mailbox.Inbox, "top.EML"); err != nil {
		t.Fatal(err)
	}
	if got := uidNext(t, mb, mailbox.Inbox); got != next {
		t.Errorf("Delete moved UIDNext from %d to %d", next, got)
	}
	again := mustAppendNamed(t, mb, mailbox.Inbox, "top.EML")
	note(again)
	wantEntered(t, mb, "Append after deleting the highest UID", again, next)
	_, err := mb.StatUID(ctx, mailbox.Inbox, top.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of a deleted message")

	// Replace is new content: a new UID, the old one gone.
	next = uidNext(t, mb, mailbox.Inbox)
	r := mustAppend(t, mb, mailbox.Inbox, rawMessage("replacement", "new"), mailbox.AppendOptions{Name: "top.EML", Replace: true})
	note(r)
	wantEntered(t, mb, "Append with Replace", r, next)
	_, err = mb.StatUID(ctx, mailbox.Inbox, again.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of the replaced message")

	// Out and back in: a new UID, not the old one.
	next = uidNext(t, mb, mailbox.Inbox)
	if _, err := mb.Move(ctx, mailbox.Inbox, "a.EML", "Other", "", false); err != nil {
		t.Fatal(err)
	}
	back, err := mb.Move(ctx, "Other", "a.EML", mailbox.Inbox, "", false)
	if err != nil {
		t.Fatal(err)
	}
	note(back)
	wantEntered(t, mb, "Move out and back", back, next)
	if back.ID != a.ID {
		t.Errorf("Move out and back: ID %d, want %d", back.ID, a.ID)
	}
	_, err = mb.StatUID(ctx, mailbox.Inbox, a.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of a message's UID from before it left")
	checkUIDs(t, mb, mailbox.Inbox)
}

func testUIDMove(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Dst")
	// Dst has a history: its UIDNext is ahead of INBOX's.
	for _, n := range []string{"d1.EML", "d2.EML", "d3.EML"} {
		mustAppendNamed(t, mb, "Dst", n)
	}
	if err := mb.Delete(ctx, "Dst", "d3.EML"); err != nil {
		t.Fatal(err)
	}
	m := mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	mustAppendNamed(t, mb, mailbox.Inbox, "later.EML")
	srcNext, dstNext := uidNext(t, mb, mailbox.Inbox), uidNext(t, mb, "Dst")

	moved, err := mb.Move(ctx, mailbox.Inbox, "m.EML", "Dst", "", false)
	if err != nil {
		t.Fatalf("Move: %v", err)
	}
	if moved.ID != m.ID {
		t.Errorf("Move changed the ID from %d to %d", m.ID, moved.ID)
	}
	wantEntered(t, mb, "Move into Dst", moved, dstNext)
	if got := uidNext(t, mb, mailbox.Inbox); got != srcNext {
		t.Errorf("Move out of INBOX changed its UIDNext from %d to %d", srcNext, got)
	}
	if got := mustStatID(t, mb, m.ID); got.UID != moved.UID || got.Folder != "Dst" {
		t.Errorf("StatID after Move: folder %q UID %d, want Dst %d", got.Folder, got.UID, moved.UID)
	}
	_, err = mb.StatUID(ctx, mailbox.Inbox, m.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of the moved message at its old place")
	// It arrived last: it lists last in Dst.
	if l := checkUIDs(t, mb, "Dst"); l[len(l)-1].ID != m.ID {
		t.Errorf("the message moved in does not list last in Dst: %q", names(l))
	}

	// A rename within the folder keeps the UID and UIDNext.
	dstNext = uidNext(t, mb, "Dst")
	renamed, err := mb.Move(ctx, "Dst", "m.EML", "Dst", "renamed.EML", false)
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	if renamed.UID != moved.UID {
		t.Errorf("rename changed the UID from %d to %d", moved.UID, renamed.UID)
	}
	// Onto an existing name, with replace: the moved message keeps its
	// UID, the replaced one's is gone.
	d1 := mustStat(t, mb, "Dst", "d1.EML")
	over, err := mb.Move(ctx, "Dst", "renamed.EML", "Dst", "d1.EML", true)
	if err != nil {
		t.Fatalf("rename with replace: %v", err)
	}
	if over.UID != moved.UID || over.ID != m.ID {
		t.Errorf("rename with replace: UID %d ID %d, want %d %d", over.UID, over.ID, moved.UID, m.ID)
	}
	_, err = mb.StatUID(ctx, "Dst", d1.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of the message a rename replaced")
	// Onto itself: nothing changes.
	if same, err := mb.Move(ctx, "Dst", "d1.EML", "Dst", "", false); err != nil || same.UID != moved.UID {
		t.Errorf("Move onto itself: UID %d, %v; want %d", same.UID, err, moved.UID)
	}
	if got := uidNext(t, mb, "Dst"); got != dstNext {
		t.Errorf("renames changed UIDNext from %d to %d", dstNext, got)
	}

	// Into another folder onto an existing name, with replace: a new UID
	// there.
	mustAppendNamed(t, mb, mailbox.Inbox, "target.EML")
	inboxNext := uidNext(t, mb, mailbox.Inbox)
	in, err := mb.Move(ctx, "Dst", "d1.EML", mailbox.Inbox, "target.EML", true)
	if err != nil {
		t.Fatalf("Move with replace: %v", err)
	}
	wantEntered(t, mb, "Move with replace into INBOX", in, inboxNext)
	checkUIDs(t, mb, mailbox.Inbox)
	checkUIDs(t, mb, "Dst")
}

func testUIDCopy(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Dst")
	mustAppendNamed(t, mb, "Dst", "d1.EML")
	src := mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	srcNext, dstNext := uidNext(t, mb, mailbox.Inbox), uidNext(t, mb, "Dst")

	c, err := mb.Copy(ctx, mailbox.Inbox, "m.EML", "Dst", "", false)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	wantEntered(t, mb, "Copy into Dst", c, dstNext)
	if got := uidNext(t, mb, mailbox.Inbox); got != srcNext {
		t.Errorf("Copy out of INBOX changed its UIDNext from %d to %d", srcNext, got)
	}
	if got := mustStat(t, mb, mailbox.Inbox, "m.EML"); got.UID != src.UID {
		t.Errorf("Copy changed the source's UID from %d to %d", src.UID, got.UID)
	}
	// Within the folder, under another name: a new UID in the same folder.
	same, err := mb.Copy(ctx, mailbox.Inbox, "m.EML", mailbox.Inbox, "copy.EML", false)
	if err != nil {
		t.Fatalf("Copy within the folder: %v", err)
	}
	wantEntered(t, mb, "Copy within INBOX", same, srcNext)
	// Over an existing message: a new UID, the old one gone.
	dstNext = uidNext(t, mb, "Dst")
	d1 := mustStat(t, mb, "Dst", "d1.EML")
	rc, err := mb.Copy(ctx, mailbox.Inbox, "m.EML", "Dst", "d1.EML", true)
	if err != nil {
		t.Fatalf("Copy with replace: %v", err)
	}
	wantEntered(t, mb, "Copy with replace", rc, dstNext)
	_, err = mb.StatUID(ctx, "Dst", d1.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of the message a Copy replaced")
	checkUIDs(t, mb, mailbox.Inbox)
	checkUIDs(t, mb, "Dst")
}

func testUIDStable(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "A", "A/B")
	m := mustAppendNamed(t, mb, "A/B", "m.EML")
	mustAppendNamed(t, mb, "A/B", "n.EML")
	before := mustFolder(t, mb, "A/B")
	keep := func(what string, folder string) {
		t.Helper()
		got := mustStat(t, mb, folder, "m.EML")
		if got.UID != m.UID || got.ID != m.ID {
			t.Errorf("%s: UID %d ID %d, want %d %d", what, got.UID, got.ID, m.UID, m.ID)
		}
		if f := mustFolder(t, mb, folder); f.UIDNext != before.UIDNext || f.UIDValidity != before.UIDValidity {
			t.Errorf("%s: UIDNext %d UIDValidity %d, want %d %d", what, f.UIDNext, f.UIDValidity, before.UIDNext, before.UIDValidity)
		}
	}
	if _, err := mb.SetFlags(ctx, "A/B", "m.EML", mailbox.FlagSeen|mailbox.FlagFlagged, true); err != nil {
		t.Fatal(err)
	}
	keep("SetFlags add", "A/B")
	if _, err := mb.SetFlags(ctx, "A/B", "m.EML", mailbox.FlagSeen, false); err != nil {
		t.Fatal(err)
	}
	keep("SetFlags remove", "A/B")
	mustPatch(t, mb, "A/B", "m.EML", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil)
	keep("PatchProps", "A/B")
	mustPatch(t, mb, "A/B", "", []mailbox.Prop{{Space: "urn:x", Local: "f", XML: "v"}}, nil)
	keep("PatchProps of the folder", "A/B")
	if err := mb.RenameFolder(ctx, "A", "Z"); err != nil {
		t.Fatal(err)
	}
	keep("RenameFolder of the parent", "Z/B")
	if got := mustStatUID(t, mb, "Z/B", m.UID); got.ID != m.ID {
		t.Errorf("StatUID after RenameFolder: ID %d, want %d", got.ID, m.ID)
	}
	_, err := mb.StatUID(ctx, "A/B", m.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID in the old path of a renamed folder")
	checkUIDs(t, mb, "Z/B")
}

func testStatUID(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Other")
	a := mustAppendNamed(t, mb, mailbox.Inbox, "a.EML")
	b := mustAppendNamed(t, mb, mailbox.Inbox, "b.EML")
	o := mustAppendNamed(t, mb, "Other", "o.EML")
	for _, m := range []mailbox.Message{a, b, o} {
		if got := mustStatUID(t, mb, m.Folder, m.UID); !sameMessage(got, mustStat(t, mb, m.Folder, m.Name)) {
			t.Errorf("StatUID(%q, %d) = %+v, Stat says otherwise", m.Folder, m.UID, got)
		}
	}
	next := uidNext(t, mb, mailbox.Inbox)
	for _, uid := range []uint32{0, next, next + 1, math.MaxUint32} {
		_, err := mb.StatUID(ctx, mailbox.Inbox, uid)
		wantErr(t, err, mailbox.ErrNotFound, "StatUID(INBOX, %d)", uid)
	}
	// A UID is per folder: o's UID in INBOX is some other message or none.
	if got, err := mb.StatUID(ctx, mailbox.Inbox, o.UID); err == nil && got.ID == o.ID {
		t.Errorf("StatUID(INBOX, %d) found the message of Other", o.UID)
	}
	_, err := mb.StatUID(ctx, "Missing", a.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID in a missing folder")
	_, err = mb.StatUID(ctx, "", a.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID in the root")
}

func testUIDValidityRecreate(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "F")
	old := mustAppendNamed(t, mb, "F", "m.EML")
	oldF := mustFolder(t, mb, "F")
	if err := mb.DeleteFolder(ctx, "F"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, mb, "F")
	f := mustFolder(t, mb, "F")
	if f.UIDValidity == oldF.UIDValidity {
		t.Errorf("re-created folder kept UIDValidity %d", f.UIDValidity)
	}
	_, err := mb.StatUID(ctx, "F", old.UID)
	wantErr(t, err, mailbox.ErrNotFound, "StatUID of a message of the deleted folder")
	checkUIDs(t, mb, "F")
	// Under the new UIDValidity the UIDs may start again; the message is
	// another one all the same.
	m := mustAppendNamed(t, mb, "F", "m.EML")
	if m.ID == old.ID {
		t.Errorf("message in the re-created folder has the old ID")
	}
	checkUIDs(t, mb, "F")
}
