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
