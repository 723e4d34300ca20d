package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// TestManyExternalRenames: more flag changes by another program than one
// index transaction takes (renameBatch) are all seen, all persisted, and
// survive a reopen of the index.
func TestManyExternalRenames(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	cur := filepath.Join(root, "alice", "Maildir", "cur")
	for _, d := range []string{cur, filepath.Join(root, "alice", "Maildir", "new"), filepath.Join(root, "alice", "Maildir", "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := renameBatch*2 + 7 // three batches, the last one partial
	for i := range n {
		msg := fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i)
		if err := os.WriteFile(filepath.Join(cur, fmt.Sprintf("17000%05d.M%dP1.test:2,", i, i)), []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, root, index, false)
	mb := mustMailbox(t, s, "alice")
	if got := len(mustList(t, mb, mailbox.Inbox)); got != n {
		t.Fatalf("listed %d of %d", got, n)
	}
	// Another client marks every message read.
	for i := range n {
		old := filepath.Join(cur, fmt.Sprintf("17000%05d.M%dP1.test:2,", i, i))
		if err := os.Rename(old, old+"S"); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string, mb mailbox.Mailbox) {
		t.Helper()
		ms := mustList(t, mb, mailbox.Inbox)
		seen := 0
		for _, m := range ms {
			if m.Flags&mailbox.FlagSeen != 0 {
				seen++
			}
		}
		if len(ms) != n || seen != n {
			t.Errorf("%s: %d messages, %d seen, want %d and %d", when, len(ms), seen, n, n)
		}
	}
	check("after the renames", mb)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A nanosecond granularity: the reopened store trusts the recorded
	// scan instead of reading the folder again because the renames were
	// recent, so the flags must come from the records.
	s, err := Open(Options{Root: root, IndexDir: index, Logger: testLogger(t), Granularity: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mb = mustMailbox(t, s, "alice")
	check("after reopening the index", mb)
	// The flags came from the records the batches wrote: nothing was
	// parsed again, and the unchanged folder was not even read.
	if st := s.Stats(); st.Parsed != 0 || st.Scans != 0 || st.Loaded != uint64(n) {
		t.Errorf("after reopen: parsed %d, scans %d, loaded %d (want 0, 0, %d)", st.Parsed, st.Scans, st.Loaded, n)
	}
}

// TestRescanAmbiguousNames: a rescan that finds two names for one base
// (a crash between the link and the unlink of a rename, or a file both in
// new/ and cur/) lists one message per base, chosen deterministically:
// in cur/ the greater name, over new/ the name in cur/. It holds both for
// bases the index knows and for new ones, and the rescan parses only
// the new bases.
func TestRescanAmbiguousNames(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	md := filepath.Join(root, "alice", "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, subject string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(md, rel), []byte("Subject: "+subject+"\r\n\r\nbody\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(from, to string) {
		t.Helper()
		if err := os.Link(filepath.Join(md, from), filepath.Join(md, to)); err != nil {
			t.Fatal(err)
		}
	}
	write("cur/1700000001.A.test:2,S", "a")
	write("cur/1700000002.B.test:2,", "b")
	write("cur/1700000003.E.test:2,S", "e")
	s := openStore(t, root, index, false)
	defer s.Close()
	mb := mustMailbox(t, s, "alice")
	before := byName(mustList(t, mb, mailbox.Inbox))
	if len(before) != 3 {
		t.Fatalf("listed %d messages, want 3", len(before))
	}
	parsed := s.Stats().Parsed

	// Known base A: a second name, greater: it wins (Seen and Flagged).
	link("cur/1700000001.A.test:2,S", "cur/1700000001.A.test:2,SF")
	// Known base E: a second name, smaller: the indexed one stays.
	link("cur/1700000003.E.test:2,S", "cur/1700000003.E.test:2,D")
	// Known base B: also in new/: cur/ wins, nothing changes.
	link("cur/1700000002.B.test:2,", "new/1700000002.B.test")
	// New base C, in cur/ and new/: one message, from cur/ (Seen).
	write("cur/1700000004.C.test:2,S", "c")
	link("cur/1700000004.C.test:2,S", "new/1700000004.C.test")
	// New base D, twice in cur/: one message, the greater name (Flagged).
	write("cur/1700000005.D.test:2,", "d")
	link("cur/1700000005.D.test:2,", "cur/1700000005.D.test:2,F")
	time.Sleep(1100 * time.Millisecond) // past the directory time-stamp granularity

	after := byName(mustList(t, mb, mailbox.Inbox))
	want := map[string]mailbox.Flags{
		"a.EML": mailbox.FlagSeen | mailbox.FlagFlagged,
		"b.EML": 0,
		"e.EML": mailbox.FlagSeen,
		"c.EML": mailbox.FlagSeen,
		"d.EML": mailbox.FlagFlagged,
	}
	if len(after) != len(want) {
		t.Errorf("listed %d messages, want %d: %v", len(after), len(want), after)
	}
	for name, flags := range want {
		m, ok := after[name]
		if !ok {
			t.Errorf("%s not listed", name)
			continue
		}
		if m.Flags != flags {
			t.Errorf("%s: flags %v, want %v", name, m.Flags, flags)
		}
		if b, ok := before[name]; ok && (m.ID != b.ID || m.UID != b.UID) {
			t.Errorf("%s: ID/UID %d/%d, was %d/%d", name, m.ID, m.UID, b.ID, b.UID)
		}
	}
	if got := fileOf(t, s, "alice", mailbox.Inbox, after["b.EML"].ID); got != "cur/1700000002.B.test:2," {
		t.Errorf("b is read from %s, want its cur/ file", got)
	}
	if got := fileOf(t, s, "alice", mailbox.Inbox, after["a.EML"].ID); got != "cur/1700000001.A.test:2,SF" {
		t.Errorf("a is read from %s, want the greater name", got)
	}
	if d := s.Stats().Parsed - parsed; d != 2 {
		t.Errorf("the rescan parsed %d files, want 2 (the new bases C and D)", d)
	}
}

func byName(l []mailbox.Message) map[string]mailbox.Message {
	out := make(map[string]mailbox.Message, len(l))
	for _, m := range l {
		out[m.Name] = m
	}
	return out
}
