package mailboxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// NewStore makes a fresh, empty store for one subtest (Run's argument).
type NewStore = func(t *testing.T) mailbox.Store

// Run runs the whole suite against the backend newStore makes, one
// subtest per area of the contract (see the package documentation).
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore NewStore)
	}{
		{"Mailbox", testMailbox},
		{"FolderOrder", testFolderOrder},
		{"FolderCounts", testFolderCounts},
		{"CreateFolder", testCreateFolder},
		{"UIDValidity", testUIDValidity},
		{"RenameFolder", testRenameFolder},
		{"RenameFolderErrors", testRenameFolderErrors},
		{"DeleteFolder", testDeleteFolder},
		{"List", testList},
		{"ListSnapshot", testListSnapshot},
		{"AppendNames", testAppendNames},
		{"AppendLongSubject", testAppendLongSubject},
		{"AppendExplicitName", testAppendExplicitName},
		{"AppendReplace", testAppendReplace},
		{"AppendBytes", testAppendBytes},
		{"AppendMaxSize", testAppendMaxSize},
		{"AppendReaderError", testAppendReaderError},
		{"AppendEnvelope", testAppendEnvelope},
		{"AppendFlagsAndDate", testAppendFlagsAndDate},
		{"AppendEmpty", testAppendEmpty},
		{"AppendMissingFolder", testAppendMissingFolder},
		{"Open", testOpen},
		{"Structure", testStructure},
		{"Stat", testStat},
		{"IDsNeverReused", testIDsNeverReused},
		{"Copy", testCopy},
		{"CopyErrors", testCopyErrors},
		{"Move", testMove},
		{"MoveErrors", testMoveErrors},
		{"Delete", testDelete},
		{"SetFlags", testSetFlags},
		{"Modseq", testModseq},
		{"DeadProps", testDeadProps},
		{"DeadPropsXML", testDeadPropsXML},
		{"DeadPropsCount", testDeadPropsCount},
		{"DeadPropsBytes", testDeadPropsBytes},
		{"DeadPropsMissing", testDeadPropsMissing},
		{"UIDAppend", testUIDAppend},
		{"UIDNeverReused", testUIDNeverReused},
		{"UIDMove", testUIDMove},
		{"UIDCopy", testUIDCopy},
		{"UIDStable", testUIDStable},
		{"StatUID", testStatUID},
		{"UIDValidityRecreate", testUIDValidityRecreate},
		{"ConcurrentAppend", testConcurrentAppend},
		{"CancelledAppend", testCancelledAppend},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

// open makes a fresh store, registers its Close, and returns alice's
// mailbox.
func open(t *testing.T, newStore NewStore) (context.Context, mailbox.Store, mailbox.Mailbox) {
	t.Helper()
	s := newStore(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx := t.Context()
	mb, err := s.Mailbox(ctx, "alice")
	if err != nil {
		t.Fatalf("Mailbox(alice): %v", err)
	}
	return ctx, s, mb
}

// rawMessage returns a small well-formed message with the given subject
// (written as is into the header) and body.
func rawMessage(subject, body string) []byte {
	return []byte("From: Alice Example <alice@example.org>\r\n" +
		"To: bob@example.org\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: <" + fmt.Sprintf("%x", len(subject)*31+len(body)) + ".test@example.org>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + body + "\r\n")
}

func mustAppend(t *testing.T, mb mailbox.Mailbox, folder string, raw []byte, opts mailbox.AppendOptions) mailbox.Message {
	t.Helper()
	m, err := mb.Append(t.Context(), folder, bytes.NewReader(raw), opts)
	if err != nil {
		t.Fatalf("Append(%q, name %q): %v", folder, opts.Name, err)
	}
	if m.Size != int64(len(raw)) {
		t.Fatalf("Append(%q): Size %d, want %d", folder, m.Size, len(raw))
	}
	if m.Folder != folder {
		t.Fatalf("Append(%q): Folder %q", folder, m.Folder)
	}
	if opts.Name != "" && m.Name != opts.Name {
		t.Fatalf("Append(%q): Name %q, want %q", folder, m.Name, opts.Name)
	}
	return m
}

// mustAppendNamed appends rawMessage(subject, body) under name.
func mustAppendNamed(t *testing.T, mb mailbox.Mailbox, folder, name string) mailbox.Message {
	t.Helper()
	return mustAppend(t, mb, folder, rawMessage(name, "body of "+name), mailbox.AppendOptions{Name: name})
}

func mustCreate(t *testing.T, mb mailbox.Mailbox, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := mb.CreateFolder(t.Context(), p); err != nil {
			t.Fatalf("CreateFolder(%q): %v", p, err)
		}
	}
}

func mustFolder(t *testing.T, mb mailbox.Mailbox, path string) mailbox.Folder {
	t.Helper()
	f, err := mb.Folder(t.Context(), path)
	if err != nil {
		t.Fatalf("Folder(%q): %v", path, err)
	}
	if f.Path != path {
		t.Fatalf("Folder(%q).Path = %q", path, f.Path)
	}
	return f
}

func mustList(t *testing.T, mb mailbox.Mailbox, folder string) []mailbox.Message {
	t.Helper()
	l, err := mb.List(t.Context(), folder)
	if err != nil {
		t.Fatalf("List(%q): %v", folder, err)
	}
	return l
}

func mustStat(t *testing.T, mb mailbox.Mailbox, folder, name string) mailbox.Message {
	t.Helper()
	m, err := mb.Stat(t.Context(), folder, name)
	if err != nil {
		t.Fatalf("Stat(%q, %q): %v", folder, name, err)
	}
	if m.Folder != folder || m.Name != name {
		t.Fatalf("Stat(%q, %q) = folder %q name %q", folder, name, m.Folder, m.Name)
	}
	return m
}

func mustStatID(t *testing.T, mb mailbox.Mailbox, id uint64) mailbox.Message {
	t.Helper()
	m, err := mb.StatID(t.Context(), id)
	if err != nil {
		t.Fatalf("StatID(%d): %v", id, err)
	}
	if m.ID != id {
		t.Fatalf("StatID(%d).ID = %d", id, m.ID)
	}
	return m
}

// mustRead returns the bytes Open gives for folder/name and checks that
// Size() agrees with them.
func mustRead(t *testing.T, mb mailbox.Mailbox, folder, name string) []byte {
	t.Helper()
	c, err := mb.Open(t.Context(), folder, name)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", folder, name, err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading %q/%q: %v", folder, name, err)
	}
	if int64(len(b)) != c.Size() {
		t.Fatalf("%q/%q: read %d bytes, Size() %d", folder, name, len(b), c.Size())
	}
	return b
}

func mustProps(t *testing.T, mb mailbox.Mailbox, folder, name string) []mailbox.Prop {
	t.Helper()
	p, err := mb.DeadProps(t.Context(), folder, name)
	if err != nil {
		t.Fatalf("DeadProps(%q, %q): %v", folder, name, err)
	}
	return p
}

func mustPatch(t *testing.T, mb mailbox.Mailbox, folder, name string, set []mailbox.Prop, remove []mailbox.PropName) {
	t.Helper()
	if err := mb.PatchProps(t.Context(), folder, name, set, remove); err != nil {
		t.Fatalf("PatchProps(%q, %q): %v", folder, name, err)
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error, format string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", fmt.Sprintf(format, args...), err, target)
	}
}

// folderPaths returns the paths Folders lists, in its order.
func folderPaths(t *testing.T, mb mailbox.Mailbox) []string {
	t.Helper()
	fs, err := mb.Folders(t.Context())
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Path
	}
	return out
}

// ids returns the IDs of a listing, in its order.
func ids(l []mailbox.Message) []uint64 {
	out := make([]uint64, len(l))
	for i, m := range l {
		out[i] = m.ID
	}
	return out
}

// names returns the sorted names of a listing.
func names(l []mailbox.Message) []string {
	out := make([]string, len(l))
	for i, m := range l {
		out[i] = m.Name
	}
	slices.Sort(out)
	return out
}

// sameMessage reports whether two index entries describe the same state,
// comparing times with Equal (backends may drop the monotonic reading or
// change the location) and treating nil and empty Keywords alike.
func sameMessage(a, b mailbox.Message) bool {
	if !a.InternalDate.Equal(b.InternalDate) || !a.Modified.Equal(b.Modified) || !a.Envelope.Date.Equal(b.Envelope.Date) {
		return false
	}
	norm := func(m mailbox.Message) mailbox.Message {
		m.InternalDate, m.Modified, m.Envelope.Date = time.Time{}, time.Time{}, time.Time{}
		if len(m.Keywords) == 0 {
			m.Keywords = nil
		}
		return m
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// sameMessages is sameMessage for listings.
func sameMessages(a, b []mailbox.Message) bool {
	return slices.EqualFunc(a, b, sameMessage)
}
