package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/davmail/davmail/mailbox"
)

// testTimeout bounds each test's upstream work.
const testTimeout = 60 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawClient logs in to the test Dovecot as login, as another IMAP client
// would, to change the mailbox behind the store's back.
func rawClient(t testing.TB, login string) *imapclient.Client {
	t.Helper()
	d := needDovecot(t)
	c, _, err := (&Dialer{Addr: d.Addr}).dial(context.Background(), login, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func msg(subject, body string) []byte {
	return []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nContent-Type: text/plain\r\n\r\n" + body + "\r\n")
}

func appendRaw(t testing.TB, c *imapclient.Client, box string, raw []byte) imapv2.UID {
	t.Helper()
	cmd := c.Append(box, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	ad, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return ad.UID
}

func TestDialerLogin(t *testing.T) {
	d := needDovecot(t)
	ctx := testCtx(t)
	dl := &Dialer{Addr: d.Addr}
	if err := dl.Login(ctx, "someone", testPassword); err != nil {
		t.Errorf("good password: %v", err)
	}
	if err := dl.Login(ctx, "someone", "wrong"); !errors.Is(err, ErrLoginFailed) {
		t.Errorf("wrong password: %v, want ErrLoginFailed", err)
	}
	bad := &Dialer{Addr: "127.0.0.1:1", Timeout: 2 * time.Second}
	if err := bad.Login(ctx, "someone", testPassword); err == nil || errors.Is(err, ErrLoginFailed) {
		t.Errorf("unreachable server: %v, want a connection error", err)
	}
	if err := bad.Ping(ctx); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
	if _, err := ParseTLSMode("ssl"); err == nil {
		t.Error("ParseTLSMode(ssl) accepted")
	}
}

// TestFreshness changes the mailbox with another IMAP client and checks
// that the store notices: new messages, flag changes, expunges and a
// UIDVALIDITY change; and that an unchanged folder costs no FETCH.
func TestFreshness(t *testing.T) {
	s := newTestStore(t, "fresh")
	defer s.Close()
	ctx := testCtx(t)
	mb, err := s.Mailbox(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(msg("mine", "x")), mailbox.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t, "fresh-alice")
	uid := appendRaw(t, c, "INBOX", msg("From =?UTF-8?Q?K=C3=B6ln?=", "y"))
	l, err := mb.List(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[1].UID != uint32(uid) || l[1].Name != "From Köln.EML" || l[1].Envelope.Subject != "From Köln" {
		t.Fatalf("after an upstream append: %+v", l)
	}
	ext := l[1]

	// Nothing changed: no FETCH, no SELECT.
	before := s.Stats()
	for i := 0; i < 3; i++ {
		if _, err := mb.List(ctx, mailbox.Inbox); err != nil {
			t.Fatal(err)
		}
	}
	if after := s.Stats(); after.Fetches != before.Fetches || after.Selects != before.Selects {
		t.Errorf("warm listings of an unchanged folder: %d FETCH, %d SELECT, want 0", after.Fetches-before.Fetches, after.Selects-before.Selects)
	}

	// A flag change upstream: found through CHANGEDSINCE, not a new FETCH
	// of metadata.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imapv2.UIDSetNum(uid), &imapv2.StoreFlags{Op: imapv2.StoreFlagsAdd, Silent: true, Flags: []imapv2.Flag{imapv2.FlagFlagged, "custom"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	before = s.Stats()
	got, err := mb.Stat(ctx, mailbox.Inbox, ext.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Folder(ctx, mailbox.Inbox); err != nil { // the freshness check
		t.Fatal(err)
	}
	got, _ = mb.StatID(ctx, ext.ID)
	if got.Flags != mailbox.FlagFlagged || len(got.Keywords) != 1 || got.Keywords[0] != "custom" || got.Modseq <= ext.Modseq {
		t.Errorf("after an upstream flag change: flags %q keywords %v modseq %d (was %d)", got.Flags, got.Keywords, got.Modseq, ext.Modseq)
	}
	if after := s.Stats(); after.Fetches != before.Fetches {
		t.Errorf("a flag change caused %d metadata FETCHes", after.Fetches-before.Fetches)
	}

	// An expunge upstream.
	if err := c.Store(imapv2.UIDSetNum(uid), &imapv2.StoreFlags{Op: imapv2.StoreFlagsAdd, Silent: true, Flags: []imapv2.Flag{imapv2.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(imapv2.UIDSetNum(uid)).Close(); err != nil {
		t.Fatal(err)
	}
	f, err := mb.Folder(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if f.Messages != 1 {
		t.Errorf("after an upstream expunge: %d messages, want 1", f.Messages)
	}
	if _, err := mb.StatID(ctx, ext.ID); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("expunged message still found by ID: %v", err)
	}

	// UIDVALIDITY change: the folder is deleted and created again
	// upstream; the store re-indexes it with new IDs.
	if err := mb.CreateFolder(ctx, "Box"); err != nil {
		t.Fatal(err)
	}
	m1, err := mb.Append(ctx, "Box", bytes.NewReader(msg("old", "1")), mailbox.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldF, _ := mb.Folder(ctx, "Box")
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Box").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Box", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendRaw(t, c, "Box", msg("new", "2"))
	l, err = mb.List(ctx, "Box")
	if err != nil {
		t.Fatal(err)
	}
	newF, _ := mb.Folder(ctx, "Box")
	if newF.UIDValidity == oldF.UIDValidity || len(l) != 1 || l[0].ID == m1.ID || l[0].Envelope.Subject != "new" {
		t.Errorf("after UIDVALIDITY %d→%d: %+v", oldF.UIDValidity, newF.UIDValidity, l)
	}

	// A folder created upstream appears; one deleted upstream goes.
	if err := c.Create("Elsewhere", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	fs, err := mb.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hasFolder(fs, "Elsewhere") {
		t.Errorf("folder created upstream not listed: %v", fs)
	}
	if err := c.Delete("Elsewhere").Wait(); err != nil {
		t.Fatal(err)
	}
	if fs, _ = mb.Folders(ctx); hasFolder(fs, "Elsewhere") {
		t.Errorf("folder deleted upstream still listed")
	}
}

func hasFolder(fs []mailbox.Folder, path string) bool {
	for _, f := range fs {
		if f.Path == path {
			return true
		}
	}
	return false
}

// TestRestart checks that IDs, names and dead properties survive a new
// store over the same index, and that no metadata FETCH is needed.
func TestRestart(t *testing.T) {
	d := needDovecot(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	open := func() *Store {
		s, err := New(Options{Dialer: &Dialer{Addr: d.Addr}, IndexDir: dir, Credentials: staticCreds{},
			LoginName: func(u string) string { return "restart-" + u }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	mb, _ := s.Mailbox(ctx, "alice")
	m, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(msg("keep", "x")), mailbox.AppendOptions{Name: "chosen.EML"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.PatchProps(ctx, mailbox.Inbox, "chosen.EML", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil); err != nil {
		t.Fatal(err)
	}
	// Fill the folder's sync state, then restart.
	if _, err := mb.List(ctx, mailbox.Inbox); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	mb, _ = s.Mailbox(ctx, "alice")
	l, err := mb.List(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || l[0].ID != m.ID || l[0].Name != "chosen.EML" || !l[0].HasDeadProps {
		t.Errorf("after restart: %+v, want ID %d chosen.EML with props", l, m.ID)
	}
	if st := s.Stats(); st.Fetches != 0 {
		t.Errorf("restart cost %d metadata FETCHes", st.Fetches)
	}
}

// TestOpenLarge reads a message spanning several windows sequentially,
// with ReadAt at scattered offsets, and after a Seek back.
func TestOpenLarge(t *testing.T) {
	s := newTestStore(t, "")
	defer s.Close()
	ctx := testCtx(t)
	mb, _ := s.Mailbox(ctx, "alice")
	var raw bytes.Buffer
	raw.Write(msg("big", ""))
	for i := 0; raw.Len() < 5<<20; i++ { // 5 MiB: windows of 256 KiB, 512 KiB, … 4 MiB
		fmt.Fprintf(&raw, "line %08d of a large message, CRLF terminated\r\n", i)
	}
	m, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw.Bytes()), mailbox.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := mb.Open(ctx, mailbox.Inbox, m.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, raw.Bytes()) {
		t.Fatalf("sequential read: %d bytes, %v; equal %v", len(got), err, bytes.Equal(got, raw.Bytes()))
	}
	buf := make([]byte, 1000)
	for _, off := range []int64{0, 4 << 20, 12345, int64(raw.Len()) - 1000, 3 << 20} {
		if _, err := c.ReadAt(buf, off); err != nil || !bytes.Equal(buf, raw.Bytes()[off:off+1000]) {
			t.Errorf("ReadAt(%d): %v", off, err)
		}
	}
	if _, err := c.ReadAt(buf, int64(raw.Len())-10); err == nil {
		t.Error("ReadAt past the end: no error")
	}
	if _, err := c.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 50)
	if _, err := io.ReadFull(c, head); err != nil || !bytes.Equal(head, raw.Bytes()[100:150]) {
		t.Errorf("read after Seek: %v", err)
	}
	// The structure of a message appended elsewhere comes from upstream.
	cl := rawClient(t, s.loginName("alice"))
	appendRaw(t, cl, "INBOX", []byte("Subject: mp\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n\r\nPDF\r\n--b--\r\n"))
	l, _ := mb.List(ctx, mailbox.Inbox)
	last := l[len(l)-1]
	if !last.Envelope.HasAttachments || last.Envelope.ContentType != "multipart/mixed" {
		t.Errorf("envelope from upstream: %+v", last.Envelope)
	}
	st, err := mb.Structure(ctx, mailbox.Inbox, last.Name)
	if err != nil || len(st.Parts) != 3 || st.Parts[2].FileName != "x.pdf" {
		t.Fatalf("structure from upstream: %+v %v", st, err)
	}
	c2, _ := mb.Open(ctx, mailbox.Inbox, last.Name)
	defer c2.Close()
	p := st.Parts[2]
	body := make([]byte, p.BodyEnd-p.BodyStart)
	if _, err := c2.ReadAt(body, p.BodyStart); err != nil || string(body) != "PDF" {
		t.Errorf("part by offsets: %q %v", body, err)
	}
}

// TestPool checks the per-user cap (a third Open waits while two hold
// connections), reuse, and reconnection after the server drops idle
// connections.
func TestPool(t *testing.T) {
	d := needDovecot(t)
	ctx := testCtx(t)
	s, err := New(Options{Dialer: &Dialer{Addr: d.Addr}, IndexDir: t.TempDir(), Credentials: staticCreds{},
		LoginName: func(u string) string { return "pool-" + u }, MaxConnsPerUser: 2, IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mb, _ := s.Mailbox(ctx, "alice")
	for i := 0; i < 3; i++ {
		if _, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(msg(fmt.Sprint("m", i), "x")), mailbox.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := mb.List(ctx, mailbox.Inbox)
	one := make([]byte, 1)
	var open []mailbox.Content
	for _, m := range l[:2] {
		c, err := mb.Open(ctx, mailbox.Inbox, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(one); err != nil { // takes a connection
			t.Fatal(err)
		}
		open = append(open, c)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	c3, _ := mb.Open(short, mailbox.Inbox, l[2].Name)
	_, err = c3.Read(one)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third connection over the cap of 2: %v, want to wait until the deadline", err)
	}
	c3.Close()
	for _, c := range open {
		c.Close()
	}
	dials := s.Stats().Dials
	if _, err := mb.Folders(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Dials != dials {
		t.Errorf("an idle connection was not reused")
	}
	// Kill every Dovecot imap process of the user: the pool notices the
	// dead connections and dials again.
	s.pools["alice"].mu.Lock()
	for _, cn := range s.pools["alice"].idle {
		cn.raw.Close() // as if the server had hung up
	}
	s.pools["alice"].mu.Unlock()
	if _, err := mb.Folder(ctx, mailbox.Inbox); err != nil {
		t.Errorf("after the server dropped the connections: %v", err)
	}
	if s.Stats().Dials == dials {
		t.Error("no reconnection")
	}
	// The idle sweep closes connections past the timeout.
	if n := s.pools["alice"].sweep(time.Now().Add(time.Minute)); n != 0 {
		t.Errorf("%d connections left after sweeping", n)
	}
}

// TestSpecialUse checks RFC 6154 attributes and the upstream
// delimiter mapping of names.
func TestSpecialUse(t *testing.T) {
	s := newTestStore(t, "")
	defer s.Close()
	ctx := testCtx(t)
	mb, _ := s.Mailbox(ctx, "alice")
	for _, p := range []string{"Sent", "Trash", "Drafts", "Junk", "Entwürfe"} {
		if err := mb.CreateFolder(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := mb.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Sent": `\Sent`, "Trash": `\Trash`, "Drafts": `\Drafts`, "Junk": `\Junk`, "Entwürfe": "", "INBOX": ""}
	for _, f := range fs {
		if w, ok := want[f.Path]; !ok || f.SpecialUse != w {
			t.Errorf("folder %q special-use %q, want %q", f.Path, f.SpecialUse, w)
		}
		delete(want, f.Path)
	}
	if len(want) != 0 {
		t.Errorf("missing folders %v", want)
	}
	// The non-ASCII name is stored upstream in modified UTF-7.
	c := rawClient(t, s.loginName("alice"))
	l, err := c.List("", "Entw*", nil).Collect()
	if err != nil || len(l) != 1 || l[0].Mailbox != "Entwürfe" {
		t.Errorf("upstream LIST: %+v %v", l, err)
	}
	if !strings.Contains(fmt.Sprint(s.Stats()), "") { // Stats is printable
		t.Error("Stats")
	}
}
