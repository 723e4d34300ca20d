package mailboxtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/davmail/davmail/mailbox"
)

func testMailbox(t *testing.T, newStore NewStore) {
	ctx, s, mb := open(t, newStore)
	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if got := folderPaths(t, mb); !slices.Equal(got, []string{mailbox.Inbox}) {
		t.Errorf("new mailbox: Folders = %q, want [INBOX]", got)
	}
	if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != 0 || f.Unseen != 0 || f.Size != 0 {
		t.Errorf("new INBOX: %+v, want empty", f)
	}
	root := mustFolder(t, mb, "")
	if root.Messages != 0 || root.Name() != "" {
		t.Errorf("root: %+v", root)
	}

	for _, user := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b", "a\nb", "\xff"} {
		_, err := s.Mailbox(ctx, user)
		wantErr(t, err, mailbox.ErrInvalidName, "Mailbox(%q)", user)
	}

	// The same user reaches the same state.
	m := mustAppendNamed(t, mb, mailbox.Inbox, "shared.EML")
	mustCreate(t, mb, "Only-Alice")
	again, err := s.Mailbox(ctx, "alice")
	if err != nil {
		t.Fatalf("Mailbox(alice) again: %v", err)
	}
	if got := mustStat(t, again, mailbox.Inbox, "shared.EML"); got.ID != m.ID {
		t.Errorf("second handle: ID %d, want %d", got.ID, m.ID)
	}

	// Users are isolated.
	bob, err := s.Mailbox(ctx, "bob")
	if err != nil {
		t.Fatalf("Mailbox(bob): %v", err)
	}
	if got := folderPaths(t, bob); !slices.Equal(got, []string{mailbox.Inbox}) {
		t.Errorf("bob: Folders = %q, want [INBOX]", got)
	}
	if l := mustList(t, bob, mailbox.Inbox); len(l) != 0 {
		t.Errorf("bob's INBOX lists %d messages of alice's", len(l))
	}
	_, err = bob.Stat(ctx, mailbox.Inbox, "shared.EML")
	wantErr(t, err, mailbox.ErrNotFound, "bob: Stat of alice's message")
	_, err = bob.Folder(ctx, "Only-Alice")
	wantErr(t, err, mailbox.ErrNotFound, "bob: Folder of alice's folder")
}

func testFolderOrder(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	// Created out of order on purpose; parents before children.
	mustCreate(t, mb, "Sent", "日本語", "a", "INBOX/z", "Archive", "Archive/2024",
		"Archive-x", "INBOX/a", "INBOX/a/deep", "B", "Entwürfe", "INBOX-old", "Trash")
	want := []string{
		"INBOX", "INBOX/a", "INBOX/a/deep", "INBOX/z",
		"Archive", "Archive-x", "Archive/2024", "B", "Entwürfe", "INBOX-old", "Sent", "Trash", "a", "日本語",
	}
	if got := folderPaths(t, mb); !slices.Equal(got, want) {
		t.Errorf("Folders order:\n got %q\nwant %q", got, want)
	}
}

func testFolderCounts(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	check := func(path string, messages, unseen int, size int64) {
		t.Helper()
		f := mustFolder(t, mb, path)
		if f.Messages != messages || f.Unseen != unseen || f.Size != size {
			t.Errorf("%s: messages %d unseen %d size %d, want %d %d %d", path, f.Messages, f.Unseen, f.Size, messages, unseen, size)
		}
		if path == "" {
			return // not in Folders
		}
		// Folders reports the same figures as Folder.
		fs, err := mb.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(fs, func(g mailbox.Folder) bool { return g.Path == path })
		if i < 0 {
			t.Fatalf("Folders lacks %q", path)
		}
		if g := fs[i]; g.Messages != f.Messages || g.Unseen != f.Unseen || g.Size != f.Size || g.Modseq != f.Modseq {
			t.Errorf("%s: Folders says %+v, Folder says %+v", path, g, f)
		}
	}
	check("Sent", 0, 0, 0)
	a := mustAppend(t, mb, "Sent", rawMessage("a", "x"), mailbox.AppendOptions{Flags: mailbox.FlagSeen})
	b := mustAppend(t, mb, "Sent", rawMessage("b", "yy"), mailbox.AppendOptions{})
	c := mustAppend(t, mb, "Sent", rawMessage("c", strings.Repeat("z", 1000)), mailbox.AppendOptions{Flags: mailbox.FlagFlagged})
	check("Sent", 3, 2, a.Size+b.Size+c.Size)
	check(mailbox.Inbox, 0, 0, 0)
	check("", 0, 0, 0) // the root holds no messages

	if _, err := mb.SetFlags(ctx, "Sent", b.Name, mailbox.FlagSeen, true); err != nil {
		t.Fatal(err)
	}
	check("Sent", 3, 1, a.Size+b.Size+c.Size)
	if err := mb.Delete(ctx, "Sent", a.Name); err != nil {
		t.Fatal(err)
	}
	check("Sent", 2, 1, b.Size+c.Size)
	if _, err := mb.Move(ctx, "Sent", c.Name, mailbox.Inbox, "", false); err != nil {
		t.Fatal(err)
	}
	check("Sent", 1, 0, b.Size)
	check(mailbox.Inbox, 1, 1, c.Size)
	if _, err := mb.Copy(ctx, "Sent", b.Name, mailbox.Inbox, "", false); err != nil {
		t.Fatal(err)
	}
	check("Sent", 1, 0, b.Size)
	check(mailbox.Inbox, 2, 1, b.Size+c.Size)
	if _, err := mb.SetFlags(ctx, mailbox.Inbox, b.Name, mailbox.FlagSeen, false); err != nil {
		t.Fatal(err)
	}
	check(mailbox.Inbox, 2, 2, b.Size+c.Size)
	// Replacing changes the size to the new content's.
	r := mustAppend(t, mb, mailbox.Inbox, rawMessage("r", "short"), mailbox.AppendOptions{Name: b.Name, Replace: true, Flags: mailbox.FlagSeen})
	check(mailbox.Inbox, 2, 1, r.Size+c.Size)
}

func testCreateFolder(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "P", "INBOX/sub", "INBOX/sub/deeper", "Entwürfe", "日本語", "日本語/子", "R&D", "With Space")
	for _, p := range []string{"P", "INBOX/sub", "INBOX/sub/deeper", "Entwürfe", "日本語", "日本語/子", "R&D", "With Space"} {
		f := mustFolder(t, mb, p)
		if f.Messages != 0 || f.Unseen != 0 || f.Size != 0 {
			t.Errorf("new folder %q not empty: %+v", p, f)
		}
		if f.UIDValidity == 0 {
			t.Errorf("folder %q: UIDValidity 0", p)
		}
		if want := p[strings.LastIndexByte(p, '/')+1:]; f.Name() != want {
			t.Errorf("folder %q: Name() %q", p, f.Name())
		}
		// Messages can live there.
		m := mustAppendNamed(t, mb, p, "m.EML")
		if got := mustStatID(t, mb, m.ID); got.Folder != p {
			t.Errorf("message appended to %q is in %q", p, got.Folder)
		}
	}

	for _, p := range []string{mailbox.Inbox, "P", "INBOX/sub", "日本語/子"} {
		wantErr(t, mb.CreateFolder(ctx, p), mailbox.ErrExists, "CreateFolder(%q)", p)
	}
	for _, p := range []string{"Missing/child", "P/missing/child", "INBOX/none/x"} {
		wantErr(t, mb.CreateFolder(ctx, p), mailbox.ErrNoParent, "CreateFolder(%q)", p)
	}
	// Invalid names whose parent exists, so the answer is unambiguous.
	for _, p := range []string{".", "..", "P/.", "P/..", "P/", "/P", `a\b`, "P/a\\b", "a\x01b", "P/a\x7f", "tab\there", "\xff\xfe", "P/" + strings.Repeat("x", 256)} {
		wantErr(t, mb.CreateFolder(ctx, p), mailbox.ErrInvalidName, "CreateFolder(%q)", p)
	}
	want := []string{"INBOX", "INBOX/sub", "INBOX/sub/deeper", "Entwürfe", "P", "R&D", "With Space", "日本語", "日本語/子"}
	if got := folderPaths(t, mb); !slices.Equal(got, want) {
		t.Errorf("after failed creations: Folders\n got %q\nwant %q", got, want)
	}
}

func testUIDValidity(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "F")
	before := mustFolder(t, mb, "F").UIDValidity
	if err := mb.DeleteFolder(ctx, "F"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, mb, "F")
	after := mustFolder(t, mb, "F").UIDValidity
	if before == 0 || after == 0 || before == after {
		t.Errorf("UIDValidity %d before delete and %d after re-creation: want distinct and non-zero", before, after)
	}
}

func testRenameFolder(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "A", "A/B", "A/B/C", "Q", "INBOX/sub")
	ma := mustAppendNamed(t, mb, "A", "a.EML")
	mc := mustAppendNamed(t, mb, "A/B/C", "c.EML")
	msub := mustAppendNamed(t, mb, "INBOX/sub", "s.EML")
	folderProp := []mailbox.Prop{{Space: "urn:x", Local: "color", XML: "red"}}
	deepProp := []mailbox.Prop{{Space: "urn:x", Local: "deep", XML: "<x:v xmlns:x=\"urn:x\">1</x:v>"}}
	msgProp := []mailbox.Prop{{Space: "urn:x", Local: "tag", XML: "t"}}
	mustPatch(t, mb, "A", "", folderProp, nil)
	mustPatch(t, mb, "A/B/C", "", deepProp, nil)
	mustPatch(t, mb, "A/B/C", "c.EML", msgProp, nil)
	content := mustRead(t, mb, "A/B/C", "c.EML")

	if err := mb.RenameFolder(ctx, "A", "Z"); err != nil {
		t.Fatalf("RenameFolder(A, Z): %v", err)
	}
	for _, p := range []string{"A", "A/B", "A/B/C"} {
		_, err := mb.Folder(ctx, p)
		wantErr(t, err, mailbox.ErrNotFound, "Folder(%q) after rename", p)
		_, err = mb.List(ctx, p)
		wantErr(t, err, mailbox.ErrNotFound, "List(%q) after rename", p)
	}
	want := []string{"INBOX", "INBOX/sub", "Q", "Z", "Z/B", "Z/B/C"}
	if got := folderPaths(t, mb); !slices.Equal(got, want) {
		t.Errorf("Folders after rename:\n got %q\nwant %q", got, want)
	}
	if l := mustList(t, mb, "Z"); len(l) != 1 || l[0].ID != ma.ID || l[0].Folder != "Z" || l[0].Name != "a.EML" {
		t.Errorf("List(Z) = %+v, want message %d named a.EML in Z", l, ma.ID)
	}
	if got := mustStatID(t, mb, mc.ID); got.Folder != "Z/B/C" || got.Name != "c.EML" {
		t.Errorf("StatID after rename: folder %q name %q, want Z/B/C c.EML", got.Folder, got.Name)
	}
	if got := mustStat(t, mb, "Z/B/C", "c.EML"); got.ID != mc.ID || !got.HasDeadProps {
		t.Errorf("moved message: ID %d HasDeadProps %v, want %d true", got.ID, got.HasDeadProps, mc.ID)
	}
	if got := mustRead(t, mb, "Z/B/C", "c.EML"); string(got) != string(content) {
		t.Errorf("moved message content changed")
	}
	if got := mustProps(t, mb, "Z", ""); !slices.Equal(got, folderProp) {
		t.Errorf("folder props after rename: %+v, want %+v", got, folderProp)
	}
	if got := mustProps(t, mb, "Z/B/C", ""); !slices.Equal(got, deepProp) {
		t.Errorf("subfolder props after rename: %+v, want %+v", got, deepProp)
	}
	if got := mustProps(t, mb, "Z/B/C", "c.EML"); !slices.Equal(got, msgProp) {
		t.Errorf("message props after rename: %+v, want %+v", got, msgProp)
	}
	if f := mustFolder(t, mb, "Z"); f.Messages != 1 || f.Size != ma.Size {
		t.Errorf("renamed folder counts: %+v", f)
	}

	// Into another parent, and out of INBOX.
	if err := mb.RenameFolder(ctx, "Z/B", "Q/B"); err != nil {
		t.Fatalf("RenameFolder(Z/B, Q/B): %v", err)
	}
	if got := mustStatID(t, mb, mc.ID); got.Folder != "Q/B/C" {
		t.Errorf("after second rename: message in %q, want Q/B/C", got.Folder)
	}
	if err := mb.RenameFolder(ctx, "INBOX/sub", "Top"); err != nil {
		t.Fatalf("RenameFolder(INBOX/sub, Top): %v", err)
	}
	if got := mustStatID(t, mb, msub.ID); got.Folder != "Top" {
		t.Errorf("message of INBOX/sub now in %q, want Top", got.Folder)
	}
	if err := mb.RenameFolder(ctx, "Top", "INBOX/back"); err != nil {
		t.Fatalf("RenameFolder(Top, INBOX/back): %v", err)
	}
	want = []string{"INBOX", "INBOX/back", "Q", "Q/B", "Q/B/C", "Z"}
	if got := folderPaths(t, mb); !slices.Equal(got, want) {
		t.Errorf("Folders at the end:\n got %q\nwant %q", got, want)
	}
}

func testRenameFolderErrors(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "A", "A/B", "Other", "INBOX/sub")
	mustAppendNamed(t, mb, "A", "a.EML")
	before := folderPaths(t, mb)
	for _, c := range []struct {
		from, to string
		want     error
	}{
		{mailbox.Inbox, "X", mailbox.ErrForbidden},
		{"A", mailbox.Inbox, mailbox.ErrForbidden},
		{"", "X", mailbox.ErrForbidden},
		{"A", "", mailbox.ErrForbidden},
		{"Nope", "X", mailbox.ErrNotFound},
		{"A/Nope", "X", mailbox.ErrNotFound},
		{"A", "Other", mailbox.ErrExists},
		{"A", "INBOX/sub", mailbox.ErrExists},
		{"A", "A", mailbox.ErrExists},
		{"A", "Missing/A", mailbox.ErrNoParent},
		{"A", "A/inner", mailbox.ErrInvalidName},
		{"A", "A/B/inner", mailbox.ErrInvalidName},
		{"A", "bad\\name", mailbox.ErrInvalidName},
		{"A", "Other/..", mailbox.ErrInvalidName},
	} {
		wantErr(t, mb.RenameFolder(ctx, c.from, c.to), c.want, "RenameFolder(%q, %q)", c.from, c.to)
	}
	if got := folderPaths(t, mb); !slices.Equal(got, before) {
		t.Errorf("failed renames changed the tree:\n got %q\nwant %q", got, before)
	}
	if l := mustList(t, mb, "A"); len(l) != 1 {
		t.Errorf("failed renames: A lists %d messages, want 1", len(l))
	}
}

func testDeleteFolder(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "D", "D/E", "D-sibling", "INBOX/sub")
	md := mustAppendNamed(t, mb, "D", "d.EML")
	me := mustAppendNamed(t, mb, "D/E", "e.EML")
	ms := mustAppendNamed(t, mb, "D-sibling", "s.EML")
	mi := mustAppendNamed(t, mb, mailbox.Inbox, "i.EML")
	mustAppendNamed(t, mb, "INBOX/sub", "sub.EML")
	mustPatch(t, mb, "D", "", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil)
	uidv := mustFolder(t, mb, "D").UIDValidity

	wantErr(t, mb.DeleteFolder(ctx, mailbox.Inbox), mailbox.ErrForbidden, "DeleteFolder(INBOX)")
	wantErr(t, mb.DeleteFolder(ctx, ""), mailbox.ErrForbidden, "DeleteFolder(root)")
	wantErr(t, mb.DeleteFolder(ctx, "Missing"), mailbox.ErrNotFound, "DeleteFolder(Missing)")
	wantErr(t, mb.DeleteFolder(ctx, "D/Missing"), mailbox.ErrNotFound, "DeleteFolder(D/Missing)")

	if err := mb.DeleteFolder(ctx, "D"); err != nil {
		t.Fatalf("DeleteFolder(D): %v", err)
	}
	for _, p := range []string{"D", "D/E"} {
		_, err := mb.Folder(ctx, p)
		wantErr(t, err, mailbox.ErrNotFound, "Folder(%q) after delete", p)
		_, err = mb.List(ctx, p)
		wantErr(t, err, mailbox.ErrNotFound, "List(%q) after delete", p)
	}
	for _, id := range []uint64{md.ID, me.ID} {
		_, err := mb.StatID(ctx, id)
		wantErr(t, err, mailbox.ErrNotFound, "StatID(%d) of a message in a deleted folder", id)
	}
	// Siblings with a common prefix and INBOX stay.
	mustStatID(t, mb, ms.ID)
	mustStatID(t, mb, mi.ID)

	if err := mb.DeleteFolder(ctx, "INBOX/sub"); err != nil {
		t.Fatalf("DeleteFolder(INBOX/sub): %v", err)
	}
	if got := folderPaths(t, mb); !slices.Equal(got, []string{"INBOX", "D-sibling"}) {
		t.Errorf("Folders after deletes: %q", got)
	}
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 1 || l[0].ID != mi.ID {
		t.Errorf("INBOX after deleting INBOX/sub: %+v", l)
	}

	// Created again, the folder starts afresh.
	mustCreate(t, mb, "D")
	f := mustFolder(t, mb, "D")
	if f.Messages != 0 || f.Size != 0 || f.UIDValidity == uidv {
		t.Errorf("re-created folder: %+v (old UIDValidity %d)", f, uidv)
	}
	if p := mustProps(t, mb, "D", ""); len(p) != 0 {
		t.Errorf("re-created folder has the old dead props: %+v", p)
	}
	if _, err := mb.Folder(ctx, "D/E"); err == nil {
		t.Errorf("re-created folder has its old subfolder")
	}
}
