package maildir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/mailboxtest"
)

// testLogger routes the store's log to the test.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// newTestStore opens a Store on fresh temporary directories, creating
// mailboxes on first use as the conformance suite expects.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, t.TempDir(), t.TempDir(), true)
}

func openStore(t testing.TB, root, index string, create bool, mod ...func(*Options)) *Store {
	t.Helper()
	o := Options{Root: root, IndexDir: index, Logger: testLogger(t), CreateMissing: create}
	for _, f := range mod {
		f(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	mailboxtest.Run(t, func(t *testing.T) mailbox.Store { return newTestStore(t) })
}

func mustMailbox(t testing.TB, s *Store, user string) mailbox.Mailbox {
	t.Helper()
	mb, err := s.Mailbox(context.Background(), user)
	if err != nil {
		t.Fatalf("Mailbox(%q): %v", user, err)
	}
	return mb
}

func mustList(t testing.TB, mb mailbox.Mailbox, folder string) []mailbox.Message {
	t.Helper()
	l, err := mb.List(context.Background(), folder)
	if err != nil {
		t.Fatalf("List(%q): %v", folder, err)
	}
	return l
}

// fileOf returns the file (relative to the Maildir) of a message, from
// the index.
func fileOf(t testing.TB, s *Store, user, folder string, id uint64) string {
	t.Helper()
	b, err := s.acquire(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	defer s.release(b)
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.folders[folder]
	if f == nil {
		t.Fatalf("no folder %q", folder)
	}
	_, r, ok := f.getID(id)
	if !ok {
		t.Fatalf("no message %d in %q", id, folder)
	}
	rel, _ := filepath.Rel(b.root, f.filePath(r))
	return rel
}

func folderOf(t testing.TB, mb mailbox.Mailbox, path string) mailbox.Folder {
	t.Helper()
	f, err := mb.Folder(context.Background(), path)
	if err != nil {
		t.Fatalf("Folder(%q): %v", path, err)
	}
	return f
}

func byID(l []mailbox.Message) map[uint64]mailbox.Message {
	out := make(map[uint64]mailbox.Message, len(l))
	for _, m := range l {
		out[m.ID] = m
	}
	return out
}

// TestCorpus checks the index of a mkcorpus corpus against its manifest:
// every message in the right folder with the exact size, flags and
// subject, and Open returning the file's bytes.
func TestCorpus(t *testing.T) {
	dir := cachedCorpus(t, "-bigfolder", "2000")
	manifest := readManifest(t, dir)
	s := openStore(t, dir, t.TempDir(), false)
	defer s.Close()
	ctx := context.Background()
	wantFolders := map[string][]string{
		"alice": {"INBOX", "Archive", "Archive/2024", "Bulk", "Drafts", "Empty", "Entwürfe", "Sent", "Trash"},
		"bob":   {"INBOX", "Archive", "Archive/2024", "Drafts", "Empty", "Entwürfe", "Sent", "Trash"},
	}
	for user, want := range wantFolders {
		mb := mustMailbox(t, s, user)
		fs, err := mb.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		counts := map[string]int{}
		for _, f := range fs {
			got = append(got, f.Path)
			counts[f.Path] = f.Messages
			if (f.Path == "Sent") != (f.SpecialUse == `\Sent`) || (f.Path == "Archive") != (f.SpecialUse == `\Archive`) {
				t.Errorf("%s: %q has special use %q", user, f.Path, f.SpecialUse)
			}
			if f.UIDValidity == 0 {
				t.Errorf("%s: %q has UIDValidity 0", user, f.Path)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Folders = %q, want %q", user, got, want)
		}
		if counts["Archive"] != 0 || counts["Empty"] != 0 {
			t.Errorf("%s: implicit Archive has %d messages, Empty %d", user, counts["Archive"], counts["Empty"])
		}

		// Index every listed message by its file.
		byFile := map[string]mailbox.Message{}
		for _, f := range fs {
			l := mustList(t, mb, f.Path)
			if len(l) != f.Messages {
				t.Errorf("%s: List(%q) has %d messages, Folder says %d", user, f.Path, len(l), f.Messages)
			}
			var size int64
			for i, m := range l {
				if i > 0 && l[i-1].ID >= m.ID {
					t.Fatalf("%s: List(%q) not in ascending ID order", user, f.Path)
				}
				if m.Folder != f.Path {
					t.Errorf("%s: message %d in %q has Folder %q", user, m.ID, f.Path, m.Folder)
				}
				size += m.Size
				byFile[filepath.Join(user, "Maildir", fileOf(t, s, user, f.Path, m.ID))] = m
			}
			if size != f.Size {
				t.Errorf("%s: %q: Size %d, sum of messages %d", user, f.Path, f.Size, size)
			}
		}
		n := 0
		for _, e := range manifest {
			if e.User != user {
				continue
			}
			n++
			m, ok := byFile[e.File]
			if !ok {
				t.Errorf("%s: %s (%s) not listed", user, e.File, e.Folder)
				continue
			}
			if m.Folder != e.Folder {
				t.Errorf("%s: %s in folder %q, want %q", user, e.File, m.Folder, e.Folder)
			}
			if m.Size != e.Size {
				t.Errorf("%s: %s: Size %d, want %d", user, e.File, m.Size, e.Size)
			}
			if m.Flags.String() != e.Flags {
				t.Errorf("%s: %s: Flags %q, want %q", user, e.File, m.Flags, e.Flags)
			}
			if e.Malformed == "" && m.Envelope.Subject != e.Subject {
				t.Errorf("%s: %s: Subject %q, want %q", user, e.File, m.Envelope.Subject, e.Subject)
			}
			if e.Malformed == "" && !strings.HasSuffix(m.Name, ".EML") {
				t.Errorf("%s: %s: Name %q", user, e.File, m.Name)
			}
		}
		if n != len(byFile) {
			t.Errorf("%s: %d messages listed, manifest has %d", user, len(byFile), n)
		}
		// Open returns the file's bytes, for a sample of every kind
		// (all malformed and large ones, every 50th otherwise).
		for i, e := range manifest {
			if e.User != user || (e.Malformed == "" && e.Size < 1<<20 && i%50 != 0) {
				continue
			}
			m := byFile[e.File]
			want, err := os.ReadFile(filepath.Join(dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			c, err := mb.Open(ctx, m.Folder, m.Name)
			if err != nil {
				t.Fatalf("Open(%q, %q): %v", m.Folder, m.Name, err)
			}
			got, err := io.ReadAll(c)
			c.Close()
			if err != nil || !bytes.Equal(got, want) || c.Size() != int64(len(want)) {
				t.Errorf("%s: Open(%s) returned %d bytes (err %v), want the %d bytes of the file", user, e.File, len(got), err, len(want))
			}
		}
	}
}

// mdaDeliver drops a message into new/ as a delivery agent does: tmp/,
// then rename.
func mdaDeliver(t testing.TB, maildir, base string, data []byte) {
	t.Helper()
	tmp := filepath.Join(maildir, "tmp", base)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", base)); err != nil {
		t.Fatal(err)
	}
}

// TestExternalChanges changes the Maildir behind the store's back, as a
// delivery agent and Dovecot do, and checks that the next List sees it
// and that only the new file is parsed.
func TestExternalChanges(t *testing.T) {
	root := t.TempDir()
	genCorpus(t, root, "-users", "alice", "-messages", "40", "-large", "0", "-malformed=false")
	s := openStore(t, root, t.TempDir(), false)
	defer s.Close()
	mb := mustMailbox(t, s, "alice")
	md := filepath.Join(root, "alice", "Maildir")

	inbox := mustList(t, mb, "INBOX")
	trash := mustList(t, mb, "Trash")
	if len(inbox) < 4 {
		t.Fatalf("corpus INBOX has %d messages; need 4", len(inbox))
	}
	parsed := s.Stats().Parsed

	// Pick three messages in cur/.
	var cur []mailbox.Message
	for _, m := range inbox {
		if strings.HasPrefix(fileOf(t, s, "alice", "INBOX", m.ID), "cur/") && m.Flags&mailbox.FlagFlagged == 0 {
			cur = append(cur, m)
		}
	}
	if len(cur) < 3 {
		t.Fatalf("need 3 unflagged messages in cur/, have %d", len(cur))
	}
	flagged, deleted, moved := cur[0], cur[1], cur[2]
	inboxNext, trashNext := folderOf(t, mb, "INBOX").UIDNext, folderOf(t, mb, "Trash").UIDNext

	// Dovecot sets \Flagged: rename with new info.
	old := filepath.Join(md, fileOf(t, s, "alice", "INBOX", flagged.ID))
	base, info, _ := parseName(filepath.Base(old))
	if err := os.Rename(old, filepath.Join(md, "cur", base+infoSep+mergeInfo(info, flagged.Flags|mailbox.FlagFlagged))); err != nil {
		t.Fatal(err)
	}
	// Expunge.
	if err := os.Remove(filepath.Join(md, fileOf(t, s, "alice", "INBOX", deleted.ID))); err != nil {
		t.Fatal(err)
	}
	// Move to Trash.
	mv := filepath.Join(md, fileOf(t, s, "alice", "INBOX", moved.ID))
	if err := os.Rename(mv, filepath.Join(md, ".Trash", "cur", filepath.Base(mv))); err != nil {
		t.Fatal(err)
	}
	// Delivery.
	mdaDeliver(t, md, "1800000000.M1P9.mda", []byte("From: x@example.com\nSubject: Fresh delivery\n\nhello\n"))

	got := byID(mustList(t, mb, "INBOX"))
	if m, ok := got[flagged.ID]; !ok || m.Flags != flagged.Flags|mailbox.FlagFlagged || m.Name != flagged.Name || m.Modseq <= flagged.Modseq || m.UID != flagged.UID {
		t.Errorf("flagged message: %+v (ok %v), want flags %v and UID %d", m, ok, flagged.Flags|mailbox.FlagFlagged, flagged.UID)
	}
	if _, ok := got[deleted.ID]; ok {
		t.Errorf("deleted message still listed")
	}
	if _, ok := got[moved.ID]; ok {
		t.Errorf("moved message still listed in INBOX")
	}
	var fresh *mailbox.Message
	for _, m := range got {
		if m.Envelope.Subject == "Fresh delivery" {
			fresh = &m
		}
	}
	if fresh == nil || fresh.Name != "Fresh delivery.EML" || fresh.Flags != 0 || fresh.ID <= inbox[len(inbox)-1].ID || fresh.UID != inboxNext {
		t.Errorf("delivered message: %+v; want UID %d", fresh, inboxNext)
	}
	if next := folderOf(t, mb, "INBOX").UIDNext; next != inboxNext+1 {
		t.Errorf("INBOX UIDNext %d after one delivery, want %d (the external changes out of INBOX do not move it)", next, inboxNext+1)
	}
	if len(got) != len(inbox)-2+1 {
		t.Errorf("INBOX has %d messages, want %d", len(got), len(inbox)-1)
	}
	trl := mustList(t, mb, "Trash")
	tr := byID(trl)
	// The one arrival in Trash gets exactly Trash's UIDNext.
	if m, ok := tr[moved.ID]; !ok || m.Name != moved.Name || m.Folder != "Trash" || m.Size != moved.Size || m.UID != trashNext {
		t.Errorf("moved message in Trash: %+v (ok %v); want same ID and name, UID %d", m, ok, trashNext)
	}
	if next := folderOf(t, mb, "Trash").UIDNext; next != trashNext+1 {
		t.Errorf("Trash UIDNext %d after one move in, want %d", next, trashNext+1)
	}
	if trl[len(trl)-1].ID != moved.ID {
		t.Errorf("the message moved into Trash does not list last")
	}
	if m, err := mb.StatUID(context.Background(), "Trash", tr[moved.ID].UID); err != nil || m.ID != moved.ID {
		t.Errorf("StatUID of the moved message: %+v, %v", m, err)
	}
	if len(tr) != len(trash)+1 {
		t.Errorf("Trash has %d messages, want %d", len(tr), len(trash)+1)
	}
	if d := s.Stats().Parsed - parsed; d != 1 {
		t.Errorf("parsed %d files for the changes, want 1 (the delivery)", d)
	}
	fi, err := mb.Folder(context.Background(), "INBOX")
	if err != nil || fi.Messages != len(got) {
		t.Errorf("Folder(INBOX) = %+v, %v", fi, err)
	}

	// Dovecot moves the delivery to cur/ without flags: same message,
	// same modseq, no parse.
	nf := filepath.Join(md, "new", "1800000000.M1P9.mda")
	if err := os.Rename(nf, filepath.Join(md, "cur", "1800000000.M1P9.mda:2,")); err != nil {
		t.Fatal(err)
	}
	m, err := mb.Stat(context.Background(), "INBOX", "Fresh delivery.EML")
	if err != nil || m.ID != fresh.ID || m.Modseq != fresh.Modseq || m.UID != fresh.UID {
		t.Errorf("after new/ → cur/: %+v, %v; want the same ID, UID and modseq", m, err)
	}
	c, err := mb.Open(context.Background(), "INBOX", "Fresh delivery.EML")
	if err != nil {
		t.Fatalf("Open after new/ → cur/: %v", err)
	}
	c.Close()
	if d := s.Stats().Parsed - parsed; d != 1 {
		t.Errorf("parsed %d files, want 1", d)
	}

	// An external folder: created, then listed with its message.
	if err := os.MkdirAll(filepath.Join(md, ".Projects", "new"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(md, ".Projects", "cur"), 0o700)
	os.MkdirAll(filepath.Join(md, ".Projects", "tmp"), 0o700)
	mdaDeliver(t, filepath.Join(md, ".Projects"), "1800000001.M2P9.mda", []byte("Subject: In a project\n\nx\n"))
	pl := mustList(t, mb, "Projects")
	if len(pl) != 1 || pl[0].Envelope.Subject != "In a project" {
		t.Errorf("Projects: %+v", pl)
	}
	// And removed again: the folder is gone.
	if err := os.RemoveAll(filepath.Join(md, ".Projects")); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.List(context.Background(), "Projects"); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("List of a removed folder: %v, want ErrNotFound", err)
	}
}

// TestRestart: a second Store on the same index lists the same IDs,
// UIDs and names, and the folders keep UIDValidity and UIDNext, without
// parsing anything.
func TestRestart(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	genCorpus(t, root, "-users", "alice", "-messages", "60", "-large", "0")
	ctx := context.Background()
	s := openStore(t, root, index, false)
	mb := mustMailbox(t, s, "alice")
	// An appended message with an explicit name, and a deleted one, so
	// that UIDNext is above the highest UID left.
	if _, err := mb.Append(ctx, "Sent", strings.NewReader("Subject: mine\n\nx\n"), mailbox.AppendOptions{Name: "custom name.EML", Flags: mailbox.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Append(ctx, "Sent", strings.NewReader("Subject: gone\n\nx\n"), mailbox.AppendOptions{Name: "gone.EML"}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Delete(ctx, "Sent", "gone.EML"); err != nil {
		t.Fatal(err)
	}
	// And a message moved into INBOX: its ID is older than INBOX's
	// newest, its UID the highest.
	if _, err := mb.Append(ctx, "Sent", strings.NewReader("Subject: moved\n\nx\n"), mailbox.AppendOptions{Name: "moved.EML"}); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Move(ctx, "Sent", "moved.EML", "INBOX", "", false); err != nil {
		t.Fatal(err)
	}
	fs, err := mb.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string][]mailbox.Message{}
	for _, f := range fs {
		lists[f.Path] = mustList(t, mb, f.Path)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.List(ctx, "INBOX"); !errors.Is(err, ErrClosed) {
		t.Errorf("List on a closed store: %v, want ErrClosed", err)
	}

	s2 := openStore(t, root, index, false)
	defer s2.Close()
	mb2 := mustMailbox(t, s2, "alice")
	fs2, err := mb2.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs2) != len(fs) {
		t.Fatalf("folders after restart: %d, before %d", len(fs2), len(fs))
	}
	for i, f := range fs2 {
		if f.Path != fs[i].Path || f.UIDValidity != fs[i].UIDValidity || f.UIDNext != fs[i].UIDNext || f.Messages != fs[i].Messages || f.Modseq != fs[i].Modseq {
			t.Errorf("folder after restart %+v, before %+v", f, fs[i])
		}
		l := mustList(t, mb2, f.Path)
		before := lists[f.Path]
		if len(l) != len(before) {
			t.Errorf("%q: %d messages after restart, %d before", f.Path, len(l), len(before))
			continue
		}
		for j := range l {
			a, b := l[j], before[j]
			if a.ID != b.ID || a.UID != b.UID || a.Name != b.Name || a.Size != b.Size || a.Flags != b.Flags || a.Modseq != b.Modseq ||
				!a.InternalDate.Equal(b.InternalDate) || a.Envelope.Subject != b.Envelope.Subject || !a.Envelope.Date.Equal(b.Envelope.Date) {
				t.Errorf("%q: after restart %+v, before %+v", f.Path, a, b)
			}
		}
	}
	if st := s2.Stats(); st.Parsed != 0 || st.Loaded == 0 {
		t.Errorf("after restart: %+v; want nothing parsed, everything loaded", st)
	}
	if _, err := mb2.Stat(ctx, "Sent", "custom name.EML"); err != nil {
		t.Errorf("appended name lost on restart: %v", err)
	}
	// UIDs go on where they stopped, not reusing the deleted one's.
	sentBefore := fs[slices.IndexFunc(fs, func(f mailbox.Folder) bool { return f.Path == "Sent" })]
	m, err := mb2.Append(ctx, "Sent", strings.NewReader("Subject: after\n\nx\n"), mailbox.AppendOptions{})
	if err != nil || m.UID != sentBefore.UIDNext {
		t.Errorf("Append after restart: UID %d, %v; want %d", m.UID, err, sentBefore.UIDNext)
	}
}

// TestLeftovers: a crash in the middle of writes leaves temp files and
// half-made directories; opening the mailbox removes them and they are
// never listed.
func TestLeftovers(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "alice", "Maildir")
	for _, d := range []string{"cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp", trashPrefix + ".x/cur", mkdirPrefix + "y/cur"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	own := filepath.Join(md, "tmp", "1700000000.M1P1Q1.host"+tmpMarker)
	ownSent := filepath.Join(md, ".Sent", "tmp", "1700000000.M1P1Q2.host"+tmpMarker)
	oldForeign := filepath.Join(md, "tmp", "1600000000.M1P1.mda")
	youngForeign := filepath.Join(md, "tmp", "1700000001.M1P1.mda")
	for _, p := range []string{own, ownSent, oldForeign, youngForeign} {
		if err := os.WriteFile(p, []byte("Subject: half\n\npartial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-40 * time.Hour)
	os.Chtimes(oldForeign, old, old)

	s := openStore(t, root, t.TempDir(), false)
	defer s.Close()
	mb := mustMailbox(t, s, "alice")
	for _, p := range []string{own, ownSent, oldForeign, filepath.Join(md, trashPrefix+".x"), filepath.Join(md, mkdirPrefix+"y")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(youngForeign); err != nil {
		t.Errorf("another program's recent temp file removed: %v", err)
	}
	fs, err := mb.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Messages != 0 || (f.Path != "INBOX" && f.Path != "Sent") {
			t.Errorf("unexpected folder %+v", f)
		}
	}
}

// TestAppendFiles checks what Append leaves on disk: one file in cur/
// named "<unique>,S=<size>:2,<flags>", with the internal date as mtime,
// nothing in tmp/; and nothing at all when it fails.
func TestAppendFiles(t *testing.T) {
	s := newTestStore(t)
	defer s.Close()
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	md := filepath.Join(s.opts.Root, "alice", "Maildir")
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	m, err := mb.Append(ctx, "INBOX", strings.NewReader("Subject: hello\n\nbody\n"), mailbox.AppendOptions{Flags: mailbox.FlagSeen | mailbox.FlagAnswered, InternalDate: date})
	if err != nil {
		t.Fatal(err)
	}
	names, _ := readDirNames(filepath.Join(md, "cur"))
	if len(names) != 1 || !strings.HasSuffix(names[0], ",S=21:2,RS") {
		t.Fatalf("cur/ = %q", names)
	}
	if st, err := os.Stat(filepath.Join(md, "cur", names[0])); err != nil || !st.ModTime().Equal(date) {
		t.Errorf("mtime %v, want the internal date %v", st.ModTime(), date)
	}
	if m.Name != "hello.EML" || !m.InternalDate.Equal(date) {
		t.Errorf("appended %+v", m)
	}

	// Over MaxSize, a reader error, a cancelled context: nothing stays.
	_, err = mb.Append(ctx, "INBOX", strings.NewReader(strings.Repeat("x", 100)), mailbox.AppendOptions{MaxSize: 99})
	if !errors.Is(err, limits.ErrTooLarge) {
		t.Errorf("over MaxSize: %v", err)
	}
	_, err = mb.Append(ctx, "INBOX", io.MultiReader(strings.NewReader("Subject: x\n\n"), errReader{}), mailbox.AppendOptions{})
	if !errors.Is(err, errBroken) {
		t.Errorf("reader error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	_, err = mb.Append(cctx, "INBOX", &cancelReader{cancel: cancel}, mailbox.AppendOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		names, _ := readDirNames(filepath.Join(md, sub))
		if want := map[string]int{"cur": 1}[sub]; len(names) != want {
			t.Errorf("%s/ = %q after failed appends", sub, names)
		}
	}
	if l := mustList(t, mb, "INBOX"); len(l) != 1 {
		t.Errorf("INBOX has %d messages", len(l))
	}
}

var errBroken = errors.New("broken reader")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// cancelReader yields data and cancels its context on the second read.
type cancelReader struct {
	cancel func()
	n      int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	r.n++
	if r.n > 1 {
		r.cancel()
	}
	return copy(p, "Subject: partial\n\n"), nil
}

// TestFolderLayout checks the Maildir++ directories, the maildirfolder
// marker and the subscriptions file.
func TestFolderLayout(t *testing.T) {
	s := newTestStore(t)
	defer s.Close()
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	md := filepath.Join(s.opts.Root, "alice", "Maildir")
	for _, p := range []string{"Entwürfe", "INBOX/sub", "R&D", "Archive", "Archive/2024"} {
		if err := mb.CreateFolder(ctx, p); err != nil {
			t.Fatalf("CreateFolder(%q): %v", p, err)
		}
	}
	for _, d := range []string{".Entw&APw-rfe", ".INBOX.sub", ".R&-D", ".Archive", ".Archive.2024"} {
		for _, sub := range []string{"cur", "new", "tmp", "maildirfolder"} {
			if _, err := os.Stat(filepath.Join(md, d, sub)); err != nil {
				t.Errorf("%s/%s: %v", d, sub, err)
			}
		}
	}
	if err := mb.CreateFolder(ctx, "a.b"); !errors.Is(err, mailbox.ErrInvalidName) {
		t.Errorf("CreateFolder(a.b): %v, want ErrInvalidName", err)
	}
	subs := func() string {
		b, _ := os.ReadFile(filepath.Join(md, subsFile))
		return string(b)
	}
	if got := subs(); got != "Entw&APw-rfe\nINBOX.sub\nR&-D\nArchive\nArchive.2024\n" {
		t.Errorf("subscriptions = %q", got)
	}
	if err := mb.RenameFolder(ctx, "Archive", "Old"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(md, ".Old.2024", "cur")); err != nil {
		t.Errorf("renamed subfolder: %v", err)
	}
	if got := subs(); got != "Entw&APw-rfe\nINBOX.sub\nR&-D\nOld\nOld.2024\n" {
		t.Errorf("subscriptions after rename = %q", got)
	}
	if _, err := mb.Append(ctx, "Old/2024", strings.NewReader("Subject: x\n\n"), mailbox.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := mb.DeleteFolder(ctx, "Old"); err != nil {
		t.Fatal(err)
	}
	if got := subs(); got != "Entw&APw-rfe\nINBOX.sub\nR&-D\n" {
		t.Errorf("subscriptions after delete = %q", got)
	}
	ents, _ := os.ReadDir(md)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".Old") || strings.HasPrefix(e.Name(), "..") {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	// Dovecot's version 2 format is kept.
	os.WriteFile(filepath.Join(md, subsFile), []byte("V\t2\n\nINBOX\nR&D\n"), 0o600)
	if err := mb.CreateFolder(ctx, "Neu/Ü"); !errors.Is(err, mailbox.ErrNoParent) {
		t.Errorf("CreateFolder without parent: %v", err)
	}
	if err := mb.CreateFolder(ctx, "Über"); err != nil {
		t.Fatal(err)
	}
	if got := subs(); got != "V\t2\n\nINBOX\nR&D\nÜber\n" {
		t.Errorf("v2 subscriptions = %q", got)
	}
}

// TestImplicitParent: ".Archive.2024" without ".Archive" lists "Archive"
// as an empty folder, and storing into it creates its directory.
func TestImplicitParent(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "alice", "Maildir")
	for _, d := range []string{"cur", "new", "tmp", ".Archive.2024/cur", ".Archive.2024/new", ".Archive.2024/tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	s := openStore(t, root, t.TempDir(), false)
	defer s.Close()
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	f, err := mb.Folder(ctx, "Archive")
	if err != nil || f.Messages != 0 || f.SpecialUse != `\Archive` {
		t.Fatalf("Folder(Archive) = %+v, %v", f, err)
	}
	if err := mb.CreateFolder(ctx, "Archive"); !errors.Is(err, mailbox.ErrExists) {
		t.Errorf("CreateFolder(Archive): %v", err)
	}
	if _, err := mb.Append(ctx, "Archive", strings.NewReader("Subject: a\n\n"), mailbox.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(md, ".Archive", "cur")); err != nil {
		t.Errorf("Archive not created: %v", err)
	}
	if l := mustList(t, mb, "Archive"); len(l) != 1 {
		t.Errorf("Archive: %d messages", len(l))
	}
	// Removing the child of an implicit parent removes the parent too,
	// as Dovecot drops \NoSelect folders without children; Archive is
	// real now, so it stays.
	if err := mb.DeleteFolder(ctx, "Archive/2024"); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Folder(ctx, "Archive"); err != nil {
		t.Errorf("Archive gone with its child: %v", err)
	}
}

// TestKeywords: Dovecot keyword letters map through dovecot-keywords and
// survive a flag change.
func TestKeywords(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "alice", "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	os.WriteFile(filepath.Join(md, "dovecot-keywords"), []byte("0 $Label1\n1 Work\n"), 0o600)
	os.WriteFile(filepath.Join(md, "cur", "1700000000.M1P1.x:2,Sb"), []byte("Subject: kw\n\n"), 0o600)
	s := openStore(t, root, t.TempDir(), false)
	defer s.Close()
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	m, err := mb.Stat(ctx, "INBOX", "kw.EML")
	if err != nil || !slices.Equal(m.Keywords, []string{"Work"}) || m.Flags != mailbox.FlagSeen {
		t.Fatalf("Stat = %+v, %v", m, err)
	}
	if m, err = mb.SetFlags(ctx, "INBOX", "kw.EML", mailbox.FlagFlagged, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(md, "cur", "1700000000.M1P1.x:2,FSb")); err != nil {
		t.Errorf("keyword letter not kept: %v", err)
	}
	if !slices.Equal(m.Keywords, []string{"Work"}) {
		t.Errorf("keywords after SetFlags: %q", m.Keywords)
	}
}

// TestIndexErrors: an index from a newer davmail is refused; an
// unreadable one is moved aside and rebuilt.
func TestIndexErrors(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "alice", "Maildir", "cur"), 0o700)
	s := openStore(t, root, index, false)
	mb := mustMailbox(t, s, "alice")
	if _, err := mb.Append(context.Background(), "INBOX", strings.NewReader("Subject: x\n\n"), mailbox.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Newer schema.
	db := filepath.Join(index, "alice.db")
	s = openStore(t, root, index, false)
	b, err := s.acquire(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	err = b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte{0, 0, 0, 99}) })
	b.mu.Unlock()
	s.release(b)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Refused when the store opens, not on each request.
	if s, err := Open(Options{Root: root, IndexDir: index, Logger: testLogger(t)}); !errors.Is(err, errNewerSchema) || !strings.Contains(err.Error(), "version 99") {
		if s != nil {
			s.Close()
		}
		t.Errorf("newer schema: %v", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("a newer index must be left alone: %v", err)
	}

	// Garbage.
	os.WriteFile(db, bytes.Repeat([]byte("garbage!"), 1024), 0o600)
	s = openStore(t, root, index, false)
	defer s.Close()
	mb = mustMailbox(t, s, "alice")
	if l := mustList(t, mb, "INBOX"); len(l) != 1 || l[0].Name != "x.EML" {
		t.Errorf("rebuilt index lists %+v", l)
	}
	matches, _ := filepath.Glob(db + ".corrupt-*")
	if len(matches) != 1 {
		t.Errorf("corrupt index not moved aside: %q", matches)
	}
}

// TestOpenLRU: beyond MaxOpen idle mailboxes are closed, and handles to
// them keep working.
func TestOpenLRU(t *testing.T) {
	s := openStore(t, t.TempDir(), t.TempDir(), true, func(o *Options) { o.MaxOpen = 2 })
	defer s.Close()
	ctx := context.Background()
	var mbs []mailbox.Mailbox
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		mb := mustMailbox(t, s, u)
		if _, err := mb.Append(ctx, "INBOX", strings.NewReader("Subject: "+u+"\n\n"), mailbox.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		mbs = append(mbs, mb)
	}
	if n := s.Len(); n > 2 {
		t.Errorf("Len() = %d open mailboxes, cap 2", n)
	}
	for i, mb := range mbs {
		l := mustList(t, mb, "INBOX")
		if len(l) != 1 || l[0].Envelope.Subject != []string{"u1", "u2", "u3", "u4"}[i] {
			t.Errorf("mailbox %d after eviction: %+v", i, l)
		}
	}
	if st := s.Stats(); st.Parsed != 0 {
		t.Errorf("reopening parsed %d files", st.Parsed)
	}
	if _, err := s.Mailbox(ctx, "../etc"); !errors.Is(err, mailbox.ErrInvalidName) {
		t.Errorf("Mailbox(../etc): %v", err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestMissingMailbox: without CreateMissing a user without a Maildir is
// ErrNotFound, and nothing is created.
func TestMissingMailbox(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root, t.TempDir(), false)
	defer s.Close()
	if _, err := s.Mailbox(context.Background(), "nobody"); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("Mailbox(nobody): %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "nobody")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created a mailbox: %v", err)
	}
}

// TestListNoParse: listings answer from the index, never opening a
// message file, and a warm List of an unchanged folder returns the same
// snapshot without allocating.
func TestListNoParse(t *testing.T) {
	dir := cachedCorpus(t, "-bigfolder", "2000")
	s := openStore(t, dir, t.TempDir(), false)
	defer s.Close()
	mb := mustMailbox(t, s, "alice")
	first := mustList(t, mb, "Bulk")
	st := s.Stats()
	if st.Parsed != uint64(len(first)) {
		t.Errorf("first List parsed %d files for %d messages", st.Parsed, len(first))
	}
	ctx := context.Background()
	for range 3 {
		l := mustList(t, mb, "Bulk")
		if &l[0] != &first[0] || len(l) != len(first) {
			t.Errorf("warm List returned a new slice")
		}
		if _, err := mb.Folders(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st2 := s.Stats(); st2.Parsed != st.Parsed+uint64(countOthers(t, mb)) || st2.Opened != 0 {
		t.Errorf("listing parsed more than the other folders once, or opened files: %+v, before %+v", st2, st)
	}
	// Folders parsed the other folders once; listing again parses nothing.
	st = s.Stats()
	if _, err := mb.Folders(ctx); err != nil {
		t.Fatal(err)
	}
	mustList(t, mb, "INBOX")
	if st2 := s.Stats(); st2.Parsed != st.Parsed || st2.Opened != 0 {
		t.Errorf("second listing parsed or opened: %+v, before %+v", st2, st)
	}
}

func countOthers(t *testing.T, mb mailbox.Mailbox) int {
	fs, err := mb.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.Path != "Bulk" {
			n += f.Messages
		}
	}
	return n
}

// TestCancelledIndexing: a first indexing cancelled half way keeps what
// it did; the next List finishes it and no file is parsed twice.
func TestCancelledIndexing(t *testing.T) {
	const n = 5000 // more than two parse chunks
	dir := cachedCorpus(t, "-users", "alice", "-bigfolder", "5000", "-messages", "0", "-large", "0", "-malformed=false")
	s := openStore(t, dir, t.TempDir(), false)
	defer s.Close()
	mb := mustMailbox(t, s, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(time.Minute)
		for s.Stats().Parsed < parseChunk && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling a counter, not waiting for readiness
		}
		cancel()
	}()
	l, err := mb.List(ctx, "Bulk")
	<-done
	if err == nil && len(l) != n {
		t.Fatalf("List: %d messages", len(l))
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled List: %v", err)
	}
	first := s.Stats().Parsed
	l = mustList(t, mb, "Bulk")
	if len(l) != n {
		t.Fatalf("List after cancel: %d messages, want %d", len(l), n)
	}
	if p := s.Stats().Parsed; p != n {
		t.Errorf("parsed %d files in all (%d before the cancel) for %d messages", p, first, n)
	}
	seen := map[string]bool{}
	for _, m := range l {
		if seen[m.Name] {
			t.Fatalf("name %q twice", m.Name)
		}
		seen[m.Name] = true
	}
}

// TestConcurrentExternal: listings, flag changes and appends run while a
// delivery agent drops files into new/; every listing is consistent and
// in the end everything is there, each file parsed once.
func TestConcurrentExternal(t *testing.T) {
	s := newTestStore(t)
	defer s.Close()
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	md := filepath.Join(s.opts.Root, "alice", "Maildir")
	const delivered, appended = 60, 20
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	wg.Go(func() {
		for i := range delivered {
			base := fmt.Sprintf("18000000%02d.M%dP7.mda", i, i)
			tmp := filepath.Join(md, "tmp", base)
			err := os.WriteFile(tmp, fmt.Appendf(nil, "Subject: delivered %d\n\nx\n", i), 0o600)
			if err == nil {
				err = os.Rename(tmp, filepath.Join(md, "new", base))
			}
			if err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for i := range appended {
			m, err := mb.Append(ctx, "INBOX", strings.NewReader(fmt.Sprintf("Subject: appended %d\n\ny\n", i)), mailbox.AppendOptions{})
			if err != nil {
				errs <- err
				return
			}
			if _, err := mb.SetFlags(ctx, "INBOX", m.Name, mailbox.FlagSeen, true); err != nil {
				errs <- err
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 50 {
				l, err := mb.List(ctx, "INBOX")
				if err != nil {
					errs <- err
					return
				}
				names := map[string]bool{}
				for i, m := range l {
					if (i > 0 && l[i-1].UID >= m.UID) || names[m.Name] {
						errs <- fmt.Errorf("inconsistent listing at %d: %+v", i, m)
						return
					}
					names[m.Name] = true
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	l := mustList(t, mb, "INBOX")
	if len(l) != delivered+appended {
		t.Errorf("%d messages, want %d", len(l), delivered+appended)
	}
	seen := 0
	for _, m := range l {
		if strings.HasPrefix(m.Envelope.Subject, "appended") {
			seen++
			if m.Flags != mailbox.FlagSeen {
				t.Errorf("%s: flags %v", m.Name, m.Flags)
			}
		}
	}
	if seen != appended {
		t.Errorf("%d appended messages listed, want %d", seen, appended)
	}
	if p := s.Stats().Parsed; p != delivered {
		t.Errorf("parsed %d files, want %d (each delivery once, appends never)", p, delivered)
	}
}

// TestOpenMessageBudget: the open mailboxes hold at most MaxOpenMessages
// messages in memory together; beyond it the least recently used idle
// ones are closed (and reopened from their index, without parsing), but
// the most recently used one stays open however large it is.
func TestOpenMessageBudget(t *testing.T) {
	s := openStore(t, t.TempDir(), t.TempDir(), true, func(o *Options) { o.MaxOpenMessages = 15 })
	defer s.Close()
	ctx := context.Background()
	sizes := map[string]int{"u1": 10, "u2": 10, "big": 20}
	mbs := map[string]mailbox.Mailbox{}
	for _, u := range []string{"u1", "u2", "big"} {
		mb := mustMailbox(t, s, u)
		for i := range sizes[u] {
			if _, err := mb.Append(ctx, "INBOX", strings.NewReader(fmt.Sprintf("Subject: %s %d\n\n", u, i)), mailbox.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		mbs[u] = mb
	}
	check := func(step string, open int, inMem int64) {
		t.Helper()
		if n, m := s.Len(), s.MessagesInMemory(); n != open || m != inMem {
			t.Errorf("%s: %d mailboxes open holding %d messages, want %d and %d", step, n, m, open, inMem)
		}
	}
	// big alone is over the budget: it stays, as the most recent.
	check("after the appends", 1, 20)
	loads := s.Stats().Loads
	mustList(t, mbs["big"], "INBOX")
	if d := s.Stats().Loads - loads; d != 0 {
		t.Errorf("the most recent mailbox was reloaded %d times", d)
	}
	// u1 (10) and big (20): big, the older, goes.
	mustList(t, mbs["u1"], "INBOX")
	check("after u1", 1, 10)
	// u2 (10) beside u1 (10): 20 > 15, u1 goes.
	mustList(t, mbs["u2"], "INBOX")
	check("after u2", 1, 10)
	for u, mb := range mbs {
		if l := mustList(t, mb, "INBOX"); len(l) != sizes[u] {
			t.Errorf("%s lists %d messages after reopening, want %d", u, len(l), sizes[u])
		}
	}
	if st := s.Stats(); st.Parsed != 0 {
		t.Errorf("reopening parsed %d files", st.Parsed)
	}

	// With room for all three, all stay open.
	s2, err := Open(Options{Root: s.opts.Root, IndexDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, u := range []string{"u1", "u2", "big"} {
		mustList(t, mustMailbox(t, s2, u), "INBOX")
	}
	if n, m := s2.Len(), s2.MessagesInMemory(); n != 3 || m != 40 {
		t.Errorf("default budget: %d mailboxes open holding %d messages, want 3 and 40", n, m)
	}
}

// TestAppendSurvivesEviction: a message still streaming into tmp/ while
// the cap on open mailboxes closes its mailbox to make room for another
// user's is stored all the same. Its mailbox stays open until the append
// ends: reopened meanwhile, it would clean its tmp/ of the gateway's
// temporary files, the one being written included.
func TestAppendSurvivesEviction(t *testing.T) {
	s := openStore(t, t.TempDir(), t.TempDir(), true, func(o *Options) { o.MaxOpen = 1 })
	defer s.Close()
	ctx := context.Background()
	a, b := mustMailbox(t, s, "a"), mustMailbox(t, s, "b")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := a.Append(ctx, "INBOX", pr, mailbox.AppendOptions{})
		done <- err
	}()
	// Returns once the append has read it: the message is streaming.
	if _, err := pw.Write([]byte("Subject: slow upload\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	mustList(t, b, "INBOX") // b's turn: with MaxOpen 1, an idle a would be closed
	pw.Write([]byte("the rest of the body\r\n"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("Append across another user's request: %v", err)
	}
	if l := mustList(t, a, "INBOX"); len(l) != 1 || l[0].Envelope.Subject != "slow upload" {
		t.Errorf("a's INBOX: %+v", l)
	}
}
