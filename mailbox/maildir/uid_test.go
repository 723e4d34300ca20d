package maildir

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"
)

// withFolder runs fn on the in-memory index of a folder of alice's
// mailbox, locked.
func withFolder(t *testing.T, s *Store, path string, fn func(b *mbox, f *folder)) {
	t.Helper()
	b, err := s.acquire(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer s.release(b)
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.folders[path]
	if f == nil {
		t.Fatalf("no folder %q", path)
	}
	fn(b, f)
}

func listNames(l []mailbox.Message) []string {
	out := make([]string, len(l))
	for i, m := range l {
		out[i] = m.Envelope.Subject
	}
	return out
}

// TestUIDsExhausted: a folder whose UIDs run out is renumbered 1…n in
// its order under a new UIDVALIDITY before the next arrival, and that
// state is what the index keeps. Also when the arrivals are found by a
// rescan: deliveries, and moves by another program, which then become
// new messages in their folder.
func TestUIDsExhausted(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	s := openStore(t, root, index, true)
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	md := filepath.Join(root, "alice", "Maildir")
	for _, n := range []string{"a", "b", "c"} {
		if _, err := mb.Append(ctx, "INBOX", strings.NewReader("Subject: "+n+"\r\n\r\nx\r\n"), mailbox.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Jump to the end of the UID space, as four billion arrivals would:
	// one UID left before an arrival must renumber first.
	last := uint32(math.MaxUint32 - uidHeadroom - 1)
	withFolder(t, s, "INBOX", func(_ *mbox, f *folder) { f.uidNext = last })
	d, err := mb.Append(ctx, "INBOX", strings.NewReader("Subject: d\r\n\r\nx\r\n"), mailbox.AppendOptions{})
	if err != nil || d.UID != last {
		t.Fatalf("Append at the end of the UIDs: UID %d, %v; want %d", d.UID, err, last)
	}
	before := folderOf(t, mb, "INBOX")

	// A delivery found by a rescan: renumbered, then indexed.
	mdaDeliver(t, md, "1900000000.M1P9.mda", []byte("Subject: e\r\n\r\nx\r\n"))
	l := mustList(t, mb, "INBOX")
	after := folderOf(t, mb, "INBOX")
	if after.UIDValidity == before.UIDValidity || after.UIDValidity == 0 || after.UIDNext != 6 {
		t.Errorf("after renumbering: UIDValidity %d (was %d), UIDNext %d; want a new UIDValidity and 6", after.UIDValidity, before.UIDValidity, after.UIDNext)
	}
	if got := listNames(l); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("order after renumbering %q", got)
	}
	for i, m := range l {
		if m.UID != uint32(i+1) {
			t.Errorf("%s: UID %d, want %d", m.Envelope.Subject, m.UID, i+1)
		}
	}
	if got, err := mb.StatID(ctx, d.ID); err != nil || got.UID != 4 {
		t.Errorf("StatID of d after renumbering: UID %d, %v; want 4", got.UID, err)
	}

	// A move by another program into a folder without a UID left: the
	// message cannot keep its identity there, it arrives as new.
	if err := mb.CreateFolder(ctx, "Trash"); err != nil {
		t.Fatal(err)
	}
	withFolder(t, s, "Trash", func(_ *mbox, f *folder) { f.uidNext = math.MaxUint32 })
	src := filepath.Join(md, fileOf(t, s, "alice", "INBOX", d.ID))
	if err := os.Rename(src, filepath.Join(md, ".Trash", "cur", filepath.Base(src))); err != nil {
		t.Fatal(err)
	}
	tl := mustList(t, mb, "Trash")
	if len(tl) != 1 || tl[0].Envelope.Subject != "d" || tl[0].UID != 1 || tl[0].ID == d.ID {
		t.Errorf("Trash after a move into a folder out of UIDs: %+v", tl)
	}
	if f := folderOf(t, mb, "Trash"); f.UIDNext != 2 {
		t.Errorf("Trash UIDNext %d, want 2", f.UIDNext)
	}
	if _, err := mb.StatID(ctx, d.ID); err == nil {
		t.Errorf("the moved message kept its ID")
	}

	// The index holds the renumbered state.
	lists := map[string][]mailbox.Message{"INBOX": mustList(t, mb, "INBOX"), "Trash": tl}
	folders := map[string]mailbox.Folder{"INBOX": folderOf(t, mb, "INBOX"), "Trash": folderOf(t, mb, "Trash")}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, root, index, true)
	defer s.Close()
	mb = mustMailbox(t, s, "alice")
	for p, want := range lists {
		got := mustList(t, mb, p)
		if !slices.EqualFunc(got, want, func(a, b mailbox.Message) bool { return a.ID == b.ID && a.UID == b.UID }) {
			t.Errorf("%s after reopening: %+v, want %+v", p, got, want)
		}
		if f := folderOf(t, mb, p); f.UIDValidity != folders[p].UIDValidity || f.UIDNext != folders[p].UIDNext {
			t.Errorf("%s after reopening: %+v, want %+v", p, f, folders[p])
		}
	}
	if st := s.Stats(); st.Parsed != 0 {
		t.Errorf("reopening parsed %d files", st.Parsed)
	}
}

// TestUIDRecordRepair: a folder record whose UIDNext is not above the
// UIDs of its messages (a damaged index) is repaired on load: UIDNext
// goes above them, under a new UIDVALIDITY.
func TestUIDRecordRepair(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	s := openStore(t, root, index, true)
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	for _, n := range []string{"a", "b"} {
		if _, err := mb.Append(ctx, "INBOX", strings.NewReader("Subject: "+n+"\r\n\r\nx\r\n"), mailbox.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := folderOf(t, mb, "INBOX")
	var fid uint32
	withFolder(t, s, "INBOX", func(_ *mbox, f *folder) { fid = f.fid })
	s.Close()

	db, err := bolt.Open(filepath.Join(index, "alice.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketFolders)
		rec, err := decodeFolder(bk.Get(fidKey(fid)))
		if err != nil {
			return err
		}
		rec.uidNext = 2 // below the second message's UID
		return bk.Put(fidKey(fid), encodeFolder(nil, &rec))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openStore(t, root, index, true)
	defer s.Close()
	mb = mustMailbox(t, s, "alice")
	f := folderOf(t, mb, "INBOX")
	if f.UIDNext != before.UIDNext || f.UIDValidity == before.UIDValidity {
		t.Errorf("repaired folder: UIDNext %d UIDValidity %d; want %d and a new UIDValidity (was %d)", f.UIDNext, f.UIDValidity, before.UIDNext, before.UIDValidity)
	}
	m, err := mb.Append(ctx, "INBOX", strings.NewReader("Subject: c\r\n\r\nx\r\n"), mailbox.AppendOptions{})
	if err != nil || m.UID != before.UIDNext {
		t.Errorf("Append after the repair: UID %d, %v; want %d", m.UID, err, before.UIDNext)
	}
}
