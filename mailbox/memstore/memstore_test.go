package memstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/mailboxtest"
)

func TestConformance(t *testing.T) {
	mailboxtest.Run(t, func(t *testing.T) mailbox.Store { return New() })
}

func raw(subject string) []byte {
	return []byte("Subject: " + subject + "\r\nFrom: a@example.org\r\n\r\nbody\r\n")
}

// wantFull checks a refusal of a store cap: 507, the named limit, the kind.
func wantFull(t *testing.T, err error, limit string, kind error) {
	t.Helper()
	var le *limits.Error
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a *limits.Error for %s", err, limit)
	}
	if le.Limit != limit || le.Status != http.StatusInsufficientStorage || !errors.Is(err, kind) {
		t.Errorf("refusal %+v, want limit %s, status 507, kind %v", le, limit, kind)
	}
}

func TestCaps(t *testing.T) {
	ctx := t.Context()
	s := NewWithOptions(Options{MaxUsers: 2, MaxFolders: 2, MaxMessages: 3, MaxBytes: 100})
	defer s.Close()
	a, err := s.Mailbox(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailbox(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Mailbox(ctx, "c")
	wantFull(t, err, "memstore-max-users", limits.ErrTooComplex)
	if _, err := s.Mailbox(ctx, "a"); err != nil {
		t.Errorf("an existing user at the cap: %v", err)
	}
	if s.Len() != 2 {
		t.Errorf("Len %d, want 2", s.Len())
	}

	// INBOX counts as a folder; the root does not.
	if err := a.CreateFolder(ctx, "F"); err != nil {
		t.Fatal(err)
	}
	wantFull(t, a.CreateFolder(ctx, "G"), "memstore-max-folders", limits.ErrTooComplex)

	// Bytes: 40 + 40 fit, 40 more do not; nothing is left behind.
	body := bytes.Repeat([]byte("x"), 40)
	for _, name := range []string{"1", "2"} {
		if _, err := a.Append(ctx, "F", bytes.NewReader(body), mailbox.AppendOptions{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = a.Append(ctx, "F", bytes.NewReader(body), mailbox.AppendOptions{Name: "3"})
	wantFull(t, err, "memstore-max-bytes", limits.ErrTooLarge)
	_, err = a.Copy(ctx, "F", "1", "F", "copy", false)
	wantFull(t, err, "memstore-max-bytes", limits.ErrTooLarge)
	if got := s.StoredBytes(); got != 80 {
		t.Errorf("StoredBytes %d after refusals, want 80", got)
	}
	// Replacing counts the new bytes in before the old ones out, so the
	// budget must hold both for a moment: 80 + 20 is exactly 100.
	if _, err := a.Append(ctx, "F", bytes.NewReader(body[:20]), mailbox.AppendOptions{Name: "1", Replace: true}); err != nil {
		t.Fatal(err)
	}
	if got := s.StoredBytes(); got != 60 {
		t.Errorf("StoredBytes %d after replace, want 60", got)
	}

	// Messages: the third fits, the fourth does not, replacing does.
	if _, err := a.Append(ctx, "F", bytes.NewReader(nil), mailbox.AppendOptions{Name: "3"}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Append(ctx, "F", bytes.NewReader(nil), mailbox.AppendOptions{Name: "4"})
	wantFull(t, err, "memstore-max-messages", limits.ErrTooComplex)
	_, err = a.Copy(ctx, "F", "3", "F", "4", false)
	wantFull(t, err, "memstore-max-messages", limits.ErrTooComplex)
	if _, err := a.Append(ctx, "F", bytes.NewReader(nil), mailbox.AppendOptions{Name: "3", Replace: true}); err != nil {
		t.Errorf("replace at the message cap: %v", err)
	}
	if _, err := a.Copy(ctx, "F", "3", "F", "2", true); err != nil {
		t.Errorf("copy with replace at the message cap: %v", err)
	}
	if got := s.StoredBytes(); got != 20 {
		t.Errorf("StoredBytes %d, want 20", got)
	}

	// Deleting a folder frees its bytes.
	if err := a.DeleteFolder(ctx, "F"); err != nil {
		t.Fatal(err)
	}
	if got := s.StoredBytes(); got != 0 {
		t.Errorf("StoredBytes %d after DeleteFolder, want 0", got)
	}
}

func TestUnlimited(t *testing.T) {
	s := NewWithOptions(Options{MaxUsers: -1, MaxFolders: -1, MaxMessages: -1, MaxBytes: -1})
	mb, err := s.Mailbox(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Append(t.Context(), mailbox.Inbox, io.LimitReader(zeroReader{}, 1<<20), mailbox.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if s.StoredBytes() != 1<<20 {
		t.Errorf("StoredBytes %d", s.StoredBytes())
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestClose(t *testing.T) {
	ctx := t.Context()
	s := New()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	mb, err := s.Mailbox(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw("x")), mailbox.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := mb.Open(ctx, mailbox.Inbox, m.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("Read after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Ready(ctx); err == nil {
		t.Errorf("Ready after Close: nil")
	}
	if _, err := s.Mailbox(ctx, "u"); err == nil {
		t.Errorf("Mailbox after Close: nil error")
	}
	if s.Len() != 0 {
		t.Errorf("Len after Close: %d", s.Len())
	}
}

func TestCancelledContext(t *testing.T) {
	s := New()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Mailbox(ctx, "u"); !errors.Is(err, context.Canceled) {
		t.Errorf("Mailbox: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("a cancelled Mailbox created a mailbox")
	}
	mb, err := s.Mailbox(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.CreateFolder(ctx, "F"); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateFolder: %v", err)
	}
	if _, err := mb.Folder(t.Context(), "F"); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("a cancelled CreateFolder created the folder: %v", err)
	}
}

func TestSeed(t *testing.T) {
	s := New()
	m := s.MustSeed("alice", "Archive/2024/Q1", raw("seeded"))
	if m.Folder != "Archive/2024/Q1" || m.Name != "seeded.EML" {
		t.Errorf("seeded %q/%q", m.Folder, m.Name)
	}
	mb, err := s.Mailbox(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := mb.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range fs {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, ","); got != "INBOX,Archive,Archive/2024,Archive/2024/Q1" {
		t.Errorf("folders after seeding: %s", got)
	}
	if f, _ := mb.Folder(t.Context(), "Archive"); f.SpecialUse != `\Archive` {
		t.Errorf("Archive SpecialUse %q", f.SpecialUse)
	}
	s.MustSeed("alice", "Archive/2024/Q1", raw("seeded"))
	if m2, err := mb.Stat(t.Context(), "Archive/2024/Q1", "seeded-2.EML"); err != nil || m2.ID == m.ID {
		t.Errorf("second seed: %+v, %v", m2, err)
	}
	if _, err := s.Seed("alice", "", raw("x"), mailbox.AppendOptions{}); !errors.Is(err, mailbox.ErrForbidden) {
		t.Errorf("Seed into the root: %v", err)
	}
	if _, err := s.Seed("alice", "bad/../x", raw("x"), mailbox.AppendOptions{}); !errors.Is(err, mailbox.ErrInvalidName) {
		t.Errorf("Seed into an invalid path: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("MustSeed with an invalid user did not panic")
		}
	}()
	s.MustSeed("a/b", mailbox.Inbox, raw("x"))
}

func TestRootHoldsNoMessages(t *testing.T) {
	ctx := t.Context()
	s := New()
	mb, _ := s.Mailbox(ctx, "u")
	if _, err := mb.Append(ctx, "", bytes.NewReader(raw("x")), mailbox.AppendOptions{}); !errors.Is(err, mailbox.ErrForbidden) {
		t.Errorf("Append to the root: %v", err)
	}
	if _, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw("x")), mailbox.AppendOptions{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Move(ctx, mailbox.Inbox, "x", "", "", false); !errors.Is(err, mailbox.ErrForbidden) {
		t.Errorf("Move to the root: %v", err)
	}
	if _, err := mb.Copy(ctx, mailbox.Inbox, "x", "", "", false); !errors.Is(err, mailbox.ErrForbidden) {
		t.Errorf("Copy to the root: %v", err)
	}
	if err := mb.CreateFolder(ctx, ""); !errors.Is(err, mailbox.ErrExists) {
		t.Errorf("CreateFolder of the root: %v", err)
	}
}

func TestPathLength(t *testing.T) {
	ctx := t.Context()
	s := New()
	mb, _ := s.Mailbox(ctx, "u")
	seg := strings.Repeat("a", 200)
	deepest := seg
	for {
		if err := mb.CreateFolder(ctx, deepest); err != nil {
			t.Fatalf("CreateFolder of %d bytes: %v", len(deepest), err)
		}
		if len(deepest)+1+len(seg) > maxPathLen {
			break
		}
		deepest += "/" + seg
	}
	room := maxPathLen - len(deepest) - 1
	if err := mb.CreateFolder(ctx, deepest+"/"+strings.Repeat("b", room+1)); !errors.Is(err, mailbox.ErrInvalidName) {
		t.Errorf("CreateFolder one byte over maxPathLen: %v", err)
	}
	if err := mb.CreateFolder(ctx, deepest+"/"+strings.Repeat("b", room)); err != nil {
		t.Errorf("CreateFolder of exactly maxPathLen bytes: %v", err)
	}
	// A rename that would push a descendant over the cap is refused whole.
	long := strings.Repeat("s", 100)
	if err := mb.CreateFolder(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := mb.RenameFolder(ctx, seg, long+"/"+seg); !errors.Is(err, mailbox.ErrInvalidName) {
		t.Errorf("RenameFolder pushing a path over maxPathLen: %v", err)
	}
	if _, err := mb.Folder(ctx, deepest); err != nil {
		t.Errorf("refused rename moved the folders: %v", err)
	}
}

func FuzzDerivedName(f *testing.F) {
	for _, s := range []string{"", "Hello", "a/b", "..", "\x00\xff", strings.Repeat("日本語", 100), strings.Repeat("😀", 70) + "x", " . "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		name := derivedName(subject)
		if !mailbox.ValidSegment(name) || len(name) > maxDerivedName || !strings.HasSuffix(name, ".EML") {
			t.Fatalf("derivedName(%q) = %q (%d bytes)", subject, name, len(name))
		}
		// Room for UniqueName's suffix.
		if !mailbox.ValidSegment(mailbox.UniqueName(name, func(n string) bool { return n == name })) {
			t.Fatalf("derivedName(%q) leaves no room for a -2 suffix", subject)
		}
	})
}

// TestUIDsExhausted: when a folder's UIDs run out (UIDNext cannot pass
// the largest uint32), the folder is renumbered 1…n in its order under
// a new UIDValidity, and the arrival gets the next UID.
func TestUIDsExhausted(t *testing.T) {
	ctx := t.Context()
	s := New()
	defer s.Close()
	mbi, err := s.Mailbox(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	mb := mbi.(*mbox)
	for _, n := range []string{"a", "b", "c"} {
		if _, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw(n)), mailbox.AppendOptions{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	// Jump to the end of the UID space, as four billion arrivals would.
	mb.mu.Lock()
	mb.folders[mailbox.Inbox].uidNext = math.MaxUint32 - 1
	mb.mu.Unlock()
	d, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw("d")), mailbox.AppendOptions{Name: "d"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := mb.Folder(ctx, mailbox.Inbox)
	if d.UID != math.MaxUint32-1 || before.UIDNext != math.MaxUint32 {
		t.Fatalf("last UID %d, UIDNext %d; want %d and %d", d.UID, before.UIDNext, uint32(math.MaxUint32-1), uint32(math.MaxUint32))
	}
	// No room for another UID: renumber, then take the next.
	e, err := mb.Copy(ctx, mailbox.Inbox, "a", mailbox.Inbox, "e", false)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := mb.Folder(ctx, mailbox.Inbox)
	if after.UIDValidity == before.UIDValidity || after.UIDValidity == 0 {
		t.Errorf("UIDValidity %d after renumbering, was %d", after.UIDValidity, before.UIDValidity)
	}
	if e.UID != 5 || after.UIDNext != 6 {
		t.Errorf("after renumbering: new UID %d, UIDNext %d; want 5 and 6", e.UID, after.UIDNext)
	}
	l, err := mb.List(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, m := range l {
		got = append(got, m.Name)
		if m.UID != uint32(i+1) {
			t.Errorf("%s: UID %d, want %d", m.Name, m.UID, i+1)
		}
		if sm, err := mb.StatUID(ctx, mailbox.Inbox, m.UID); err != nil || sm.Name != m.Name {
			t.Errorf("StatUID(%d) = %q, %v; want %q", m.UID, sm.Name, err, m.Name)
		}
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("order after renumbering %q, want %q", got, want)
	}
	if _, err := mb.StatUID(ctx, mailbox.Inbox, math.MaxUint32-1); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("StatUID of a UID from before the renumbering: %v", err)
	}
}
