package mailboxtest

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

func testList(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	a := mustAppendNamed(t, mb, mailbox.Inbox, "a.EML")
	b := mustAppendNamed(t, mb, "Sent", "b.EML")
	c := mustAppendNamed(t, mb, mailbox.Inbox, "c.EML")
	// b is older than c (a lower ID) but arrives in INBOX after it, so it
	// lists after c: List is in UID order, arrival in the folder.
	if _, err := mb.Move(ctx, "Sent", "b.EML", mailbox.Inbox, "", false); err != nil {
		t.Fatal(err)
	}
	d := mustAppendNamed(t, mb, mailbox.Inbox, "0-first-by-name.EML")
	l := mustList(t, mb, mailbox.Inbox)
	if got, want := ids(l), []uint64{a.ID, c.ID, b.ID, d.ID}; !slices.Equal(got, want) {
		t.Errorf("List IDs %v, want %v (a, c, b moved in, d)", got, want)
	}
	for i := 1; i < len(l); i++ {
		if l[i-1].UID >= l[i].UID {
			t.Errorf("List not in ascending UID order at %d: %d then %d", i, l[i-1].UID, l[i].UID)
		}
	}
	for _, m := range l {
		if m.Folder != mailbox.Inbox {
			t.Errorf("listed message %d has Folder %q", m.ID, m.Folder)
		}
		if s := mustStat(t, mb, m.Folder, m.Name); !sameMessage(s, m) {
			t.Errorf("List entry and Stat differ:\n list %+v\n stat %+v", m, s)
		}
	}
	if l := mustList(t, mb, "Sent"); len(l) != 0 {
		t.Errorf("Sent lists %d messages after the move", len(l))
	}
	if l := mustList(t, mb, ""); len(l) != 0 {
		t.Errorf("the root lists %d messages", len(l))
	}
	_, err := mb.List(ctx, "Missing")
	wantErr(t, err, mailbox.ErrNotFound, "List(Missing)")
}

func testListSnapshot(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Other")
	for _, n := range []string{"1.EML", "2.EML", "3.EML", "4.EML"} {
		mustAppendNamed(t, mb, mailbox.Inbox, n)
	}
	l := mustList(t, mb, mailbox.Inbox)
	saved := slices.Clone(l)

	mustAppendNamed(t, mb, mailbox.Inbox, "5.EML")
	if err := mb.Delete(ctx, mailbox.Inbox, "1.EML"); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.SetFlags(ctx, mailbox.Inbox, "2.EML", mailbox.FlagSeen|mailbox.FlagAnswered, true); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Move(ctx, mailbox.Inbox, "3.EML", "Other", "moved.EML", false); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Move(ctx, mailbox.Inbox, "4.EML", mailbox.Inbox, "renamed.EML", false); err != nil {
		t.Fatal(err)
	}
	mustPatch(t, mb, mailbox.Inbox, "2.EML", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil)
	if err := mb.RenameFolder(ctx, "Other", "Renamed"); err != nil {
		t.Fatal(err)
	}

	if !reflect.DeepEqual(l, saved) {
		t.Errorf("a List result changed after later changes:\n now %+v\n was %+v", l, saved)
	}
	if l2 := mustList(t, mb, mailbox.Inbox); sameMessages(l2, saved) {
		t.Errorf("a new List does not show the changes")
	}
}

func testAppendNames(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	for _, c := range []struct {
		raw  []byte
		want string
	}{
		{rawMessage("Hello", "1"), "Hello.EML"},
		{rawMessage("Hello", "2"), "Hello-2.EML"},
		{rawMessage("Hello", "3"), "Hello-3.EML"},
		{rawMessage("Hello.EML", "x"), "Hello.EML.EML"},
		{rawMessage("  Hello  ", "4"), "Hello-4.EML"},
		{rawMessage("a/b", "x"), mailbox.NameFromSubject("a/b")},
		{rawMessage(`back\slash`, "x"), mailbox.NameFromSubject(`back\slash`)},
		{rawMessage("=?UTF-8?B?R3LDvMOfZQ==?=", "x"), "Grüße.EML"},
		{rawMessage("", "x"), "No Subject.EML"},
		{[]byte("From: x@example.org\r\n\r\nno subject header\r\n"), "No Subject-2.EML"},
		{rawMessage("...", "x"), "No Subject-3.EML"},
	} {
		m := mustAppend(t, mb, mailbox.Inbox, c.raw, mailbox.AppendOptions{})
		if m.Name != c.want {
			t.Errorf("Append of subject %q: name %q, want %q", m.Envelope.Subject, m.Name, c.want)
		}
		if !mailbox.ValidSegment(m.Name) {
			t.Errorf("derived name %q is not a valid segment", m.Name)
		}
		if got := mustStat(t, mb, mailbox.Inbox, m.Name); got.ID != m.ID {
			t.Errorf("Stat(%q).ID = %d, want %d", m.Name, got.ID, m.ID)
		}
	}
}

func testAppendLongSubject(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	for _, subject := range []string{strings.Repeat("x", 300), strings.Repeat("日本語", 100), strings.Repeat("😀", 150)} {
		want := mailbox.NameFromSubject(subject)
		m := mustAppend(t, mb, mailbox.Inbox, rawMessage(subject, "x"), mailbox.AppendOptions{})
		if !mailbox.ValidSegment(m.Name) {
			t.Errorf("long subject: derived name of %d bytes is not a valid segment", len(m.Name))
		}
		mustStat(t, mb, mailbox.Inbox, m.Name)
		if !mailbox.ValidSegment(want) {
			t.Logf("mailbox.NameFromSubject gives a %d-byte name for a %d-byte subject; the backend shortened it to %d bytes", len(want), len(subject), len(m.Name))
			continue
		}
		if m.Name != want {
			t.Errorf("long subject: name %q, want %q", m.Name, want)
		}
	}
}

func testAppendExplicitName(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	m := mustAppend(t, mb, mailbox.Inbox, rawMessage("Subject ignored", "x"), mailbox.AppendOptions{Name: "given name.EML"})
	if m.Name != "given name.EML" {
		t.Errorf("Name %q", m.Name)
	}
	_, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(rawMessage("again", "y")), mailbox.AppendOptions{Name: "given name.EML"})
	wantErr(t, err, mailbox.ErrExists, "Append to an existing name without Replace")
	if got := mustRead(t, mb, mailbox.Inbox, "given name.EML"); !bytes.Equal(got, rawMessage("Subject ignored", "x")) {
		t.Errorf("a refused Append changed the existing message")
	}
	for _, name := range []string{".", "..", "a/b", `a\b`, "a\x00b", "a\nb", "\xff", strings.Repeat("n", 256)} {
		_, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(rawMessage("x", "y")), mailbox.AppendOptions{Name: name})
		wantErr(t, err, mailbox.ErrInvalidName, "Append with Name %q", name)
	}
	// A name without extension, as DavMail's COPY/MOVE destinations have,
	// and a non-ASCII one.
	for _, name := range []string{"6f1c2a7e-2b7d-4c55-9e83-2f0c1d7a9b10", "Grüße 日本.EML", "with.dots.in.it"} {
		mustAppend(t, mb, mailbox.Inbox, rawMessage("x", "y"), mailbox.AppendOptions{Name: name})
	}
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 4 {
		t.Errorf("INBOX has %d messages, want 4: %q", len(l), names(l))
	}
}

func testAppendReplace(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	old := mustAppend(t, mb, mailbox.Inbox, rawMessage("old", "old content"), mailbox.AppendOptions{Name: "draft.EML", Flags: mailbox.FlagSeen})
	props := []mailbox.Prop{{Space: "http://schemas.microsoft.com/mapi/proptag/", Local: "x0e070003", XML: "9"}}
	mustPatch(t, mb, mailbox.Inbox, "draft.EML", props, nil)
	newRaw := rawMessage("new", "the new content, longer than the old one")
	m := mustAppend(t, mb, mailbox.Inbox, newRaw, mailbox.AppendOptions{Name: "draft.EML", Replace: true, Flags: mailbox.FlagDraft})
	if m.ID == old.ID {
		t.Errorf("replaced content kept ID %d", m.ID)
	}
	if m.Flags != mailbox.FlagDraft || m.Envelope.Subject != "new" {
		t.Errorf("replacement: flags %v subject %q, want D and new", m.Flags, m.Envelope.Subject)
	}
	_, err := mb.StatID(ctx, old.ID)
	wantErr(t, err, mailbox.ErrNotFound, "StatID of the replaced message")
	if got := mustStat(t, mb, mailbox.Inbox, "draft.EML"); got.ID != m.ID {
		t.Errorf("Stat after replace: ID %d, want %d", got.ID, m.ID)
	}
	if got := mustRead(t, mb, mailbox.Inbox, "draft.EML"); !bytes.Equal(got, newRaw) {
		t.Errorf("content after replace: %q", got)
	}
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 1 || l[0].ID != m.ID {
		t.Errorf("List after replace: %+v", l)
	}
	// RFC 4918 §9.7.1: the dead properties of the resource survive a PUT.
	if got := mustProps(t, mb, mailbox.Inbox, "draft.EML"); !slices.Equal(got, props) {
		t.Errorf("dead props after replace: %+v, want %+v", got, props)
	}
	if !m.HasDeadProps {
		t.Errorf("replacement: HasDeadProps false")
	}
	// Replace of a name that does not exist simply creates it.
	mustAppend(t, mb, mailbox.Inbox, rawMessage("x", "y"), mailbox.AppendOptions{Name: "fresh.EML", Replace: true})
}

func testAppendBytes(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	var big bytes.Buffer
	big.Write(rawMessage("binary", ""))
	for i := 0; big.Len() < 200<<10; i++ { // 200 KiB: several read chunks
		big.WriteByte(byte(i * 7))
	}
	for name, raw := range map[string][]byte{
		"lf.EML":     []byte("Subject: lf\n\nbare\nline feeds\n"),
		"cr.EML":     []byte("Subject: cr\r\n\r\nbare\rcarriage\r\rreturns"),
		"nul.EML":    []byte("Subject: nul\r\n\r\n\x00\x00\x01\xff\xfe no final newline"),
		"8bit.EML":   []byte("Subject: Grüße\r\n\r\n\xe4\xf6\xfc latin-1 bytes\r\n"),
		"binary.EML": big.Bytes(),
	} {
		// HalfReader makes the backend cope with short reads.
		m, err := mb.Append(t.Context(), mailbox.Inbox, iotest.HalfReader(bytes.NewReader(raw)), mailbox.AppendOptions{Name: name})
		if err != nil {
			t.Fatalf("Append(%s): %v", name, err)
		}
		if m.Size != int64(len(raw)) {
			t.Errorf("%s: Size %d, want %d", name, m.Size, len(raw))
		}
		if got := mustRead(t, mb, mailbox.Inbox, name); !bytes.Equal(got, raw) {
			t.Errorf("%s: Open returned %d bytes that differ from the %d appended", name, len(got), len(raw))
		}
		if got := mustStat(t, mb, mailbox.Inbox, name); got.Size != int64(len(raw)) {
			t.Errorf("%s: Stat Size %d, want %d", name, got.Size, len(raw))
		}
	}
}

func testAppendMaxSize(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	raw := rawMessage("sized", strings.Repeat("0123456789", 100))
	mustAppend(t, mb, mailbox.Inbox, raw, mailbox.AppendOptions{Name: "exact.EML", MaxSize: int64(len(raw))})
	before := mustList(t, mb, mailbox.Inbox)
	folder := mustFolder(t, mb, mailbox.Inbox)

	for _, name := range []string{"over.EML", ""} {
		_, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw), mailbox.AppendOptions{Name: name, MaxSize: int64(len(raw)) - 1})
		wantErr(t, err, limits.ErrTooLarge, "Append one byte over MaxSize (name %q)", name)
		var le *limits.Error
		if !errors.As(err, &le) {
			t.Errorf("over MaxSize: error %T is not a *limits.Error", err)
		}
	}
	// A large stream far over the cap.
	_, err := mb.Append(ctx, mailbox.Inbox, io.LimitReader(zeros{}, 10<<20), mailbox.AppendOptions{Name: "huge.EML", MaxSize: 64 << 10})
	wantErr(t, err, limits.ErrTooLarge, "Append of 10 MiB with MaxSize 64 KiB")

	if after := mustList(t, mb, mailbox.Inbox); !sameMessages(after, before) {
		t.Errorf("refused Appends changed the folder: %q", names(after))
	}
	if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != folder.Messages || f.Size != folder.Size {
		t.Errorf("refused Appends changed the counts: %+v, was %+v", f, folder)
	}
	_, err = mb.Stat(ctx, mailbox.Inbox, "over.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Stat of a refused Append")
	// The name is still free.
	mustAppend(t, mb, mailbox.Inbox, raw[:10], mailbox.AppendOptions{Name: "over.EML", MaxSize: 10})
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func testAppendReaderError(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	errBroken := errors.New("connection reset by test")
	for _, name := range []string{"broken.EML", ""} {
		r := io.MultiReader(bytes.NewReader(rawMessage("broken", strings.Repeat("x", 100<<10))), iotest.ErrReader(errBroken))
		_, err := mb.Append(ctx, mailbox.Inbox, r, mailbox.AppendOptions{Name: name})
		wantErr(t, err, errBroken, "Append from a failing reader (name %q)", name)
	}
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 0 {
		t.Errorf("failed Appends stored %q", names(l))
	}
	if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != 0 || f.Size != 0 {
		t.Errorf("failed Appends changed the counts: %+v", f)
	}
}

func testAppendEnvelope(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	raw := []byte("From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n" +
		"To: Bob <bob@example.org>\r\n" +
		"Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?Q?_aus_K=C3=B6ln?=\r\n" +
		"Date: Tue, 14 Nov 2023 22:13:20 +0100\r\n" +
		"Message-ID: <envelope-test@example.org>\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n" +
		"\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n")
	m := mustAppend(t, mb, mailbox.Inbox, raw, mailbox.AppendOptions{})
	e := m.Envelope
	if e.Subject != "Grüße aus Köln" {
		t.Errorf("Subject %q", e.Subject)
	}
	if !strings.Contains(e.From, "Jürgen Müller") || !strings.Contains(e.From, "juergen@example.org") {
		t.Errorf("From %q", e.From)
	}
	if e.MessageID != "<envelope-test@example.org>" {
		t.Errorf("MessageID %q", e.MessageID)
	}
	if want := time.Date(2023, 11, 14, 21, 13, 20, 0, time.UTC); !e.Date.Equal(want) {
		t.Errorf("Date %v, want %v", e.Date, want)
	}
	if e.ContentType != "multipart/mixed" {
		t.Errorf("ContentType %q", e.ContentType)
	}
	if m.Name != "Grüße aus Köln.EML" {
		t.Errorf("Name %q", m.Name)
	}
	if got := mustStat(t, mb, mailbox.Inbox, m.Name); !sameMessage(got, m) {
		t.Errorf("Stat %+v differs from Append's %+v", got, m)
	}
}

func testAppendFlagsAndDate(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	date := time.Date(2020, 2, 29, 12, 30, 45, 0, time.UTC)
	flags := mailbox.FlagSeen | mailbox.FlagAnswered | mailbox.FlagFlagged
	m := mustAppend(t, mb, mailbox.Inbox, rawMessage("dated", "x"), mailbox.AppendOptions{Flags: flags, InternalDate: date})
	s := mustStat(t, mb, mailbox.Inbox, m.Name)
	for _, got := range []mailbox.Message{m, s} {
		if got.Flags != flags {
			t.Errorf("Flags %q, want %q", got.Flags, flags)
		}
		if !got.InternalDate.Equal(date) {
			t.Errorf("InternalDate %v, want %v", got.InternalDate, date)
		}
	}

	// Zero means now. Backends may keep whole seconds.
	before := time.Now().Truncate(time.Second)
	m = mustAppend(t, mb, mailbox.Inbox, rawMessage("now", "x"), mailbox.AppendOptions{})
	after := time.Now().Add(time.Second)
	if m.InternalDate.Before(before) || m.InternalDate.After(after) {
		t.Errorf("default InternalDate %v, want between %v and %v", m.InternalDate, before, after)
	}
	if m.Flags != 0 {
		t.Errorf("default Flags %q", m.Flags)
	}
}

// testAppendEmpty: an empty message is a message like any other: named,
// counted, with a UID and a one-part structure. A backend that cannot
// store one (an IMAP server refuses empty APPENDs) answers
// mailbox.ErrEmptyMessage, which is an ErrForbidden, and stores nothing.
func testAppendEmpty(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	before := uidNext(t, mb, mailbox.Inbox)
	if _, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(nil), mailbox.AppendOptions{}); errors.Is(err, mailbox.ErrEmptyMessage) {
		wantErr(t, err, mailbox.ErrForbidden, "Append of an empty message refused")
		if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != 0 {
			t.Errorf("a refused empty message was stored: %+v", f)
		}
		return
	} else if err != nil {
		t.Fatalf("Append of an empty message: %v (want success or mailbox.ErrEmptyMessage)", err)
	}
	ms, err := mb.List(ctx, mailbox.Inbox)
	if err != nil || len(ms) != 1 {
		t.Fatalf("after Append of an empty message: %d messages, %v", len(ms), err)
	}
	m := ms[0]
	wantEntered(t, mb, "Append of an empty message", m, before)
	if st, err := mb.Structure(t.Context(), mailbox.Inbox, m.Name); err != nil || len(st.Parts) != 1 {
		t.Errorf("structure of an empty message: %+v, %v", st, err)
	}
	if m.Size != 0 || m.Name != "No Subject.EML" {
		t.Errorf("empty message: size %d name %q", m.Size, m.Name)
	}
	if got := mustRead(t, mb, mailbox.Inbox, m.Name); len(got) != 0 {
		t.Errorf("empty message reads %d bytes", len(got))
	}
	mustAppend(t, mb, mailbox.Inbox, nil, mailbox.AppendOptions{Name: "placeholder.EML"})
	if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != 2 || f.Size != 0 || f.Unseen != 2 {
		t.Errorf("counts with two empty messages: %+v", f)
	}
}

func testAppendMissingFolder(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	for _, name := range []string{"", "x.EML"} {
		_, err := mb.Append(ctx, "Missing", bytes.NewReader(rawMessage("x", "y")), mailbox.AppendOptions{Name: name})
		wantErr(t, err, mailbox.ErrNotFound, "Append to a missing folder (name %q)", name)
	}
	if got := folderPaths(t, mb); !slices.Equal(got, []string{mailbox.Inbox}) {
		t.Errorf("Append to a missing folder created folders: %q", got)
	}
}

func testOpen(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	raw := rawMessage("open", "0123456789abcdefghijklmnopqrstuvwxyz")
	m := mustAppend(t, mb, mailbox.Inbox, raw, mailbox.AppendOptions{})
	c, err := mb.Open(ctx, mailbox.Inbox, m.Name)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size() != m.Size {
		t.Errorf("Size() %d, Message.Size %d", c.Size(), m.Size)
	}
	readN := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
		return b
	}
	if got := readN(5); !bytes.Equal(got, raw[:5]) {
		t.Errorf("first bytes %q", got)
	}
	if pos, err := c.Seek(0, io.SeekCurrent); err != nil || pos != 5 {
		t.Errorf("Seek(0, current) = %d, %v; want 5", pos, err)
	}
	if pos, err := c.Seek(10, io.SeekStart); err != nil || pos != 10 {
		t.Errorf("Seek(10, start) = %d, %v", pos, err)
	}
	if got := readN(7); !bytes.Equal(got, raw[10:17]) {
		t.Errorf("after Seek(10): %q, want %q", got, raw[10:17])
	}
	if pos, err := c.Seek(-4, io.SeekEnd); err != nil || pos != int64(len(raw))-4 {
		t.Errorf("Seek(-4, end) = %d, %v", pos, err)
	}
	if rest, err := io.ReadAll(c); err != nil || !bytes.Equal(rest, raw[len(raw)-4:]) {
		t.Errorf("after Seek(-4, end): %q, %v", rest, err)
	}
	b := make([]byte, 9)
	if n, err := c.ReadAt(b, 20); n != 9 || err != nil || !bytes.Equal(b, raw[20:29]) {
		t.Errorf("ReadAt(9, 20) = %d, %v, %q", n, err, b[:n])
	}
	if n, err := c.ReadAt(b, int64(len(raw))-3); n != 3 || err != io.EOF || !bytes.Equal(b[:3], raw[len(raw)-3:]) {
		t.Errorf("ReadAt across the end = %d, %v; want 3, io.EOF", n, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	_, err = mb.Open(ctx, mailbox.Inbox, "missing.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Open of a missing message")
	_, err = mb.Open(ctx, "Missing", m.Name)
	wantErr(t, err, mailbox.ErrNotFound, "Open in a missing folder")
}

func testStat(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	a := mustAppendNamed(t, mb, mailbox.Inbox, "a.EML")
	b := mustAppendNamed(t, mb, "Sent", "a.EML") // same name, other folder
	if a.ID == b.ID {
		t.Errorf("two messages share ID %d", a.ID)
	}
	for _, m := range []mailbox.Message{a, b} {
		if got := mustStat(t, mb, m.Folder, m.Name); !sameMessage(got, m) {
			t.Errorf("Stat %+v, Append returned %+v", got, m)
		}
		if got := mustStatID(t, mb, m.ID); !sameMessage(got, m) {
			t.Errorf("StatID %+v, Append returned %+v", got, m)
		}
	}
	_, err := mb.Stat(ctx, mailbox.Inbox, "missing.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Stat of a missing message")
	_, err = mb.Stat(ctx, "Missing", "a.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Stat in a missing folder")
	_, err = mb.Stat(ctx, mailbox.Inbox, "")
	wantErr(t, err, mailbox.ErrNotFound, "Stat with an empty name")
	_, err = mb.StatID(ctx, max(a.ID, b.ID)+1000)
	wantErr(t, err, mailbox.ErrNotFound, "StatID of an unknown ID")
}

func testIDsNeverReused(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	seen := map[uint64]bool{}
	note := func(m mailbox.Message) {
		t.Helper()
		if seen[m.ID] {
			t.Errorf("ID %d reused for %s/%s", m.ID, m.Folder, m.Name)
		}
		seen[m.ID] = true
	}
	for i, folder := range []string{mailbox.Inbox, "Sent", mailbox.Inbox} {
		note(mustAppend(t, mb, folder, rawMessage("m", strings.Repeat("x", i)), mailbox.AppendOptions{}))
	}
	// Delete the newest (highest ID) message, then append again.
	last := mustAppendNamed(t, mb, "Sent", "last.EML")
	note(last)
	if err := mb.Delete(ctx, "Sent", "last.EML"); err != nil {
		t.Fatal(err)
	}
	note(mustAppendNamed(t, mb, "Sent", "last.EML"))
	// The same after replacing and after deleting a folder.
	note(mustAppend(t, mb, "Sent", rawMessage("r", "r"), mailbox.AppendOptions{Name: "last.EML", Replace: true}))
	if err := mb.DeleteFolder(ctx, "Sent"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, mb, "Sent")
	note(mustAppendNamed(t, mb, "Sent", "last.EML"))
	c, err := mb.Copy(ctx, "Sent", "last.EML", mailbox.Inbox, "", false)
	if err != nil {
		t.Fatal(err)
	}
	note(c)
}

func testCopy(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	date := time.Date(2021, 6, 1, 8, 0, 0, 0, time.UTC)
	raw := rawMessage("copy me", "body")
	src := mustAppend(t, mb, mailbox.Inbox, raw, mailbox.AppendOptions{Name: "m.EML", Flags: mailbox.FlagSeen | mailbox.FlagFlagged, InternalDate: date})
	props := []mailbox.Prop{{Space: "urn:x", Local: "a", XML: "1"}, {Space: "urn:x", Local: "b", XML: "2", Lang: "en"}}
	mustPatch(t, mb, mailbox.Inbox, "m.EML", props, nil)
	src = mustStat(t, mb, mailbox.Inbox, "m.EML")

	c, err := mb.Copy(ctx, mailbox.Inbox, "m.EML", "Sent", "", false)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if c.ID == src.ID || c.Folder != "Sent" || c.Name != "m.EML" {
		t.Errorf("copy: ID %d (source %d) folder %q name %q", c.ID, src.ID, c.Folder, c.Name)
	}
	if c.Size != src.Size || c.Flags != src.Flags || !c.InternalDate.Equal(date) || !c.HasDeadProps || c.Envelope.Subject != "copy me" {
		t.Errorf("copy: %+v, source %+v", c, src)
	}
	if got := mustStat(t, mb, "Sent", "m.EML"); !sameMessage(got, c) {
		t.Errorf("Stat of the copy %+v, Copy returned %+v", got, c)
	}
	if got := mustRead(t, mb, "Sent", "m.EML"); !bytes.Equal(got, raw) {
		t.Errorf("copy content differs")
	}
	if got := mustProps(t, mb, "Sent", "m.EML"); !slices.Equal(got, props) {
		t.Errorf("copy props %+v, want %+v", got, props)
	}
	if got := mustStat(t, mb, mailbox.Inbox, "m.EML"); got.ID != src.ID || got.Flags != src.Flags {
		t.Errorf("source changed by Copy: %+v", got)
	}
	// The props are copied, not shared.
	mustPatch(t, mb, "Sent", "m.EML", []mailbox.Prop{{Space: "urn:x", Local: "a", XML: "changed"}}, []mailbox.PropName{{Space: "urn:x", Local: "b"}})
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); !slices.Equal(got, props) {
		t.Errorf("patching the copy changed the source's props: %+v", got)
	}

	// Under another name in the same folder.
	c2, err := mb.Copy(ctx, mailbox.Inbox, "m.EML", mailbox.Inbox, "copy.EML", false)
	if err != nil {
		t.Fatalf("Copy to a new name: %v", err)
	}
	if c2.Name != "copy.EML" || c2.Folder != mailbox.Inbox || c2.ID == src.ID || c2.ID == c.ID {
		t.Errorf("renamed copy: %+v", c2)
	}

	// Onto an existing name.
	other := mustAppendNamed(t, mb, "Sent", "other.EML")
	_, err = mb.Copy(ctx, mailbox.Inbox, "m.EML", "Sent", "other.EML", false)
	wantErr(t, err, mailbox.ErrExists, "Copy onto an existing name without replace")
	if got := mustStat(t, mb, "Sent", "other.EML"); got.ID != other.ID {
		t.Errorf("a refused Copy replaced the destination")
	}
	c3, err := mb.Copy(ctx, mailbox.Inbox, "m.EML", "Sent", "other.EML", true)
	if err != nil {
		t.Fatalf("Copy with replace: %v", err)
	}
	_, err = mb.StatID(ctx, other.ID)
	wantErr(t, err, mailbox.ErrNotFound, "StatID of the replaced destination")
	if got := mustStat(t, mb, "Sent", "other.EML"); got.ID != c3.ID || got.Size != src.Size {
		t.Errorf("after Copy with replace: %+v", got)
	}
	if got := mustProps(t, mb, "Sent", "other.EML"); !slices.Equal(got, props) {
		t.Errorf("Copy with replace: props %+v, want the source's %+v", got, props)
	}
	if f := mustFolder(t, mb, "Sent"); f.Messages != 2 || f.Size != 2*src.Size {
		t.Errorf("Sent counts after copies: %+v", f)
	}
}

func testCopyErrors(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	before := mustList(t, mb, mailbox.Inbox)
	for _, c := range []struct {
		folder, name, dstFolder, dstName string
		replace                          bool
		want                             error
	}{
		{mailbox.Inbox, "m.EML", mailbox.Inbox, "", false, mailbox.ErrForbidden},
		{mailbox.Inbox, "m.EML", mailbox.Inbox, "", true, mailbox.ErrForbidden},
		{mailbox.Inbox, "m.EML", mailbox.Inbox, "m.EML", true, mailbox.ErrForbidden},
		{mailbox.Inbox, "missing.EML", "Sent", "", false, mailbox.ErrNotFound},
		{"Missing", "m.EML", "Sent", "", false, mailbox.ErrNotFound},
		{mailbox.Inbox, "m.EML", "Missing", "", false, mailbox.ErrNotFound},
		{mailbox.Inbox, "m.EML", "Sent", "a/b", false, mailbox.ErrInvalidName},
		{mailbox.Inbox, "m.EML", "Sent", "..", false, mailbox.ErrInvalidName},
	} {
		_, err := mb.Copy(ctx, c.folder, c.name, c.dstFolder, c.dstName, c.replace)
		wantErr(t, err, c.want, "Copy(%q, %q, %q, %q, %v)", c.folder, c.name, c.dstFolder, c.dstName, c.replace)
	}
	if after := mustList(t, mb, mailbox.Inbox); !sameMessages(after, before) {
		t.Errorf("failed copies changed INBOX: %q", names(after))
	}
	if l := mustList(t, mb, "Sent"); len(l) != 0 {
		t.Errorf("failed copies stored %q in Sent", names(l))
	}
}

func testMove(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	raw := rawMessage("move me", "body")
	src := mustAppend(t, mb, mailbox.Inbox, raw, mailbox.AppendOptions{Name: "m.EML", Flags: mailbox.FlagSeen})
	props := []mailbox.Prop{{Space: "urn:x", Local: "a", XML: "1"}}
	mustPatch(t, mb, mailbox.Inbox, "m.EML", props, nil)

	m, err := mb.Move(ctx, mailbox.Inbox, "m.EML", "Sent", "", false)
	if err != nil {
		t.Fatalf("Move: %v", err)
	}
	if m.ID != src.ID || m.Folder != "Sent" || m.Name != "m.EML" || m.Flags != src.Flags || m.Size != src.Size {
		t.Errorf("moved: %+v, source %+v", m, src)
	}
	_, err = mb.Stat(ctx, mailbox.Inbox, "m.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Stat at the old place")
	if got := mustStatID(t, mb, src.ID); got.Folder != "Sent" || got.Name != "m.EML" {
		t.Errorf("StatID after move: %q/%q", got.Folder, got.Name)
	}
	if got := mustRead(t, mb, "Sent", "m.EML"); !bytes.Equal(got, raw) {
		t.Errorf("moved content differs")
	}
	if got := mustProps(t, mb, "Sent", "m.EML"); !slices.Equal(got, props) {
		t.Errorf("moved props %+v, want %+v", got, props)
	}

	// Rename within a folder.
	r, err := mb.Move(ctx, "Sent", "m.EML", "Sent", "renamed.EML", false)
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	if r.ID != src.ID || r.Name != "renamed.EML" || r.Folder != "Sent" {
		t.Errorf("renamed: %+v", r)
	}
	if l := mustList(t, mb, "Sent"); len(l) != 1 || l[0].Name != "renamed.EML" {
		t.Errorf("Sent after rename: %q", names(l))
	}
	if got := mustProps(t, mb, "Sent", "renamed.EML"); !slices.Equal(got, props) {
		t.Errorf("renamed props %+v", got)
	}

	// Onto itself: nothing happens.
	cur := mustStat(t, mb, "Sent", "renamed.EML")
	for _, dst := range []string{"", "renamed.EML"} {
		same, err := mb.Move(ctx, "Sent", "renamed.EML", "Sent", dst, false)
		if err != nil {
			t.Errorf("Move onto itself (dst %q): %v", dst, err)
		}
		if !sameMessage(same, cur) {
			t.Errorf("Move onto itself returned %+v, want %+v", same, cur)
		}
	}
	if got := mustStat(t, mb, "Sent", "renamed.EML"); !sameMessage(got, cur) {
		t.Errorf("Move onto itself changed the message: %+v", got)
	}

	// Onto an existing name.
	other := mustAppendNamed(t, mb, mailbox.Inbox, "other.EML")
	_, err = mb.Move(ctx, "Sent", "renamed.EML", mailbox.Inbox, "other.EML", false)
	wantErr(t, err, mailbox.ErrExists, "Move onto an existing name without replace")
	mustStat(t, mb, "Sent", "renamed.EML")
	if got := mustStat(t, mb, mailbox.Inbox, "other.EML"); got.ID != other.ID {
		t.Errorf("a refused Move replaced the destination")
	}
	m, err = mb.Move(ctx, "Sent", "renamed.EML", mailbox.Inbox, "other.EML", true)
	if err != nil {
		t.Fatalf("Move with replace: %v", err)
	}
	if m.ID != src.ID || m.Folder != mailbox.Inbox || m.Name != "other.EML" {
		t.Errorf("after Move with replace: %+v", m)
	}
	_, err = mb.StatID(ctx, other.ID)
	wantErr(t, err, mailbox.ErrNotFound, "StatID of the replaced destination")
	if l := mustList(t, mb, "Sent"); len(l) != 0 {
		t.Errorf("Sent after moving out: %q", names(l))
	}
	if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != 1 || f.Size != src.Size || f.Unseen != 0 {
		t.Errorf("INBOX counts after Move with replace: %+v", f)
	}
}

func testMoveErrors(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Sent")
	mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	before := mustList(t, mb, mailbox.Inbox)
	for _, c := range []struct {
		folder, name, dstFolder, dstName string
		want                             error
	}{
		{mailbox.Inbox, "missing.EML", "Sent", "", mailbox.ErrNotFound},
		{"Missing", "m.EML", "Sent", "", mailbox.ErrNotFound},
		{mailbox.Inbox, "m.EML", "Missing", "", mailbox.ErrNotFound},
		{mailbox.Inbox, "m.EML", "Sent", "a/b", mailbox.ErrInvalidName},
		{mailbox.Inbox, "m.EML", mailbox.Inbox, ".", mailbox.ErrInvalidName},
	} {
		_, err := mb.Move(ctx, c.folder, c.name, c.dstFolder, c.dstName, false)
		wantErr(t, err, c.want, "Move(%q, %q, %q, %q)", c.folder, c.name, c.dstFolder, c.dstName)
	}
	if after := mustList(t, mb, mailbox.Inbox); !sameMessages(after, before) {
		t.Errorf("failed moves changed INBOX: %q", names(after))
	}
}

func testDelete(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	a := mustAppendNamed(t, mb, mailbox.Inbox, "a.EML")
	b := mustAppendNamed(t, mb, mailbox.Inbox, "b.EML")
	if err := mb.Delete(ctx, mailbox.Inbox, "a.EML"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := mb.Stat(ctx, mailbox.Inbox, "a.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Stat after Delete")
	_, err = mb.StatID(ctx, a.ID)
	wantErr(t, err, mailbox.ErrNotFound, "StatID after Delete")
	_, err = mb.Open(ctx, mailbox.Inbox, "a.EML")
	wantErr(t, err, mailbox.ErrNotFound, "Open after Delete")
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 1 || l[0].ID != b.ID {
		t.Errorf("List after Delete: %q", names(l))
	}
	wantErr(t, mb.Delete(ctx, mailbox.Inbox, "a.EML"), mailbox.ErrNotFound, "Delete twice")
	wantErr(t, mb.Delete(ctx, "Missing", "b.EML"), mailbox.ErrNotFound, "Delete in a missing folder")
	// The name is free again.
	mustAppendNamed(t, mb, mailbox.Inbox, "a.EML")
}

func testSetFlags(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	m := mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	mustAppendNamed(t, mb, mailbox.Inbox, "other.EML")
	step := func(flags mailbox.Flags, add bool, want mailbox.Flags, unseen int) {
		t.Helper()
		got, err := mb.SetFlags(ctx, mailbox.Inbox, "m.EML", flags, add)
		if err != nil {
			t.Fatalf("SetFlags(%q, %v): %v", flags, add, err)
		}
		if got.Flags != want || got.ID != m.ID || got.Name != "m.EML" {
			t.Errorf("SetFlags(%q, %v) returned flags %q, want %q", flags, add, got.Flags, want)
		}
		if s := mustStat(t, mb, mailbox.Inbox, "m.EML"); !sameMessage(s, got) {
			t.Errorf("SetFlags returned %+v, Stat says %+v", got, s)
		}
		if f := mustFolder(t, mb, mailbox.Inbox); f.Unseen != unseen {
			t.Errorf("after SetFlags(%q, %v): Unseen %d, want %d", flags, add, f.Unseen, unseen)
		}
	}
	step(mailbox.FlagSeen, true, mailbox.FlagSeen, 1)
	step(mailbox.FlagFlagged|mailbox.FlagAnswered, true, mailbox.FlagSeen|mailbox.FlagFlagged|mailbox.FlagAnswered, 1)
	step(mailbox.FlagSeen, true, mailbox.FlagSeen|mailbox.FlagFlagged|mailbox.FlagAnswered, 1)
	step(mailbox.FlagSeen|mailbox.FlagAnswered, false, mailbox.FlagFlagged, 2)
	step(mailbox.FlagDeleted|mailbox.FlagDraft|mailbox.FlagPassed, true, mailbox.FlagFlagged|mailbox.FlagDeleted|mailbox.FlagDraft|mailbox.FlagPassed, 2)
	step(mailbox.FlagDeleted|mailbox.FlagDraft|mailbox.FlagPassed|mailbox.FlagFlagged|mailbox.FlagSeen, false, 0, 2)

	_, err := mb.SetFlags(ctx, mailbox.Inbox, "missing.EML", mailbox.FlagSeen, true)
	wantErr(t, err, mailbox.ErrNotFound, "SetFlags of a missing message")
	_, err = mb.SetFlags(ctx, "Missing", "m.EML", mailbox.FlagSeen, true)
	wantErr(t, err, mailbox.ErrNotFound, "SetFlags in a missing folder")
}
