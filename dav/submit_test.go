package dav_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

// fakeSubmitter records submissions; the real queue is tested in
// internal/submit and end to end in internal/server.
type fakeSubmitter struct {
	mu   sync.Mutex
	sent []string
	ct   []string
}

func (f *fakeSubmitter) Submit(ctx context.Context, user, ct string, r io.Reader, save func(io.Reader) error) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if save != nil {
		if err := save(strings.NewReader(string(b))); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, user+":"+string(b))
	f.ct = append(f.ct, ct)
	return nil
}

func TestSubmissionURI(t *testing.T) {
	sub := &fakeSubmitter{}
	ts := newTestServer(t, dav.Config{Submit: sub})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	for _, f := range []string{"Sent", "Drafts"} {
		mb.CreateFolder(context.Background(), f)
	}
	msg := "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
	// PUT, encoded and with a trailing slash.
	if resp, b := do(t, ts, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", msg, "Content-Type", "message/rfc822"); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT submission = %d %s", resp.StatusCode, b)
	}
	// PUT with Saveinsent: f and the rfc821 form.
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23", "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n\r\n"+msg, "Content-Type", "message/rfc821", "Saveinsent", "f"); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT rfc821 = %d", resp.StatusCode)
	}
	// DavMail's SMTP DATA: PUT a draft, MOVE it to the submission URI (no slash).
	do(t, ts, "PUT", "/exchange/alice/Drafts/d1.EML", msg)
	if resp, _ := do(t, ts, "MOVE", "/exchange/alice/Drafts/d1.EML", "", "Destination", "/exchange/alice/%23%23DavMailSubmissionURI%23%23", "Overwrite", "F"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("MOVE to submission = %d", resp.StatusCode)
	}
	if len(sub.sent) != 3 || sub.ct[1] != "message/rfc821" || !strings.HasPrefix(sub.sent[2], "alice:From: alice") {
		t.Fatalf("submissions: %q %q", sub.sent, sub.ct)
	}
	if l, _ := mb.List(context.Background(), "Drafts"); len(l) != 0 {
		t.Errorf("draft left after MOVE to the submission URI: %d", len(l))
	}
	if l, _ := mb.List(context.Background(), "Sent"); len(l) != 2 || l[0].Flags&mailbox.FlagSeen == 0 {
		t.Errorf("Sent copies: %d (want 2: Saveinsent f skipped one)", len(l))
	}
	// Literal '#' in the request line.
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /exchange/alice/##DavMailSubmissionURI## HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2UtcHc=\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("literal # submission: %v %v", resp, err)
	}
	// Not listable.
	if resp, _ := do(t, ts, "PROPFIND", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", "", "Depth", "0"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PROPFIND submission = %d, want 405", resp.StatusCode)
	}
	// Without a submitter: a clear 403.
	ts2 := newTestServer(t, dav.Config{})
	if resp, b := do(t, ts2, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", msg); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "relay") {
		t.Errorf("unconfigured sending: %d %s", resp.StatusCode, b)
	}
}

func TestSubmissionSizeLimit(t *testing.T) {
	sub := &fakeSubmitter{}
	ts := newTestServer(t, dav.Config{Submit: sub, MaxMessageSize: 100})
	resp, body := do(t, ts, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", strings.Repeat("x", 101))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "max-message-size") || !strings.Contains(body, "101") || len(sub.sent) != 0 {
		t.Errorf("oversized submission: %d %q, %d sent", resp.StatusCode, body, len(sub.sent))
	}
}

// TestRootSendmsg: the root names the submission URI when sending is on
// (DavMail MOVEs drafts there, exchange-webdav.md §1.4), and not when off.
func TestRootSendmsg(t *testing.T) {
	body := `<?xml version="1.0"?><a:propfind xmlns:a="DAV:" xmlns:d="urn:schemas:httpmail:"><a:prop><d:sendmsg/></a:prop></a:propfind>`
	ts := newTestServer(t, dav.Config{Submit: &fakeSubmitter{}})
	_, got := do(t, ts, "PROPFIND", "/exchange/alice/", body, "Depth", "0")
	if want := "<d:sendmsg>" + ts.URL + "/exchange/alice/%23%23DavMailSubmissionURI%23%23/</d:sendmsg>"; !strings.Contains(got, want) {
		t.Errorf("sendmsg missing, want %s:\n%s", want, got)
	}
	off := newTestServer(t, dav.Config{})
	if _, got := do(t, off, "PROPFIND", "/exchange/alice/", body, "Depth", "0"); strings.Contains(got, "DavMailSubmissionURI") {
		t.Errorf("sendmsg named without a submitter:\n%s", got)
	}
}

// TestTransportHeaders: x007d001f (PR_TRANSPORT_MESSAGE_HEADERS) is the
// raw header block of one message; DavMail answers IMAP header fetches
// from it (§11 #12).
func TestTransportHeaders(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	m := seed(t, ts, "alice", mailbox.Inbox, "Subject: hdr & <x>\r\nX-Test: 1\r\n\r\nbody\r\n", 0)
	body := `<?xml version="1.0"?><a:propfind xmlns:a="DAV:" xmlns:e="http://schemas.microsoft.com/mapi/proptag/"><a:prop><e:x007d001f/></a:prop></a:propfind>`
	_, got := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/"+url.PathEscape(m.Name), body, "Depth", "0")
	if !strings.Contains(got, "<e:x007d001f>Subject: hdr &amp; &lt;x&gt;&#13;\nX-Test: 1&#13;\n&#13;\n</e:x007d001f>") {
		t.Errorf("x007d001f:\n%q", got)
	}
}

// TestSavedestination: the copy of a sent message goes to the folder
// Savedestination names instead of Sent Items; a destination that is not
// a folder is refused before anything is sent.
func TestSavedestination(t *testing.T) {
	sub := &fakeSubmitter{}
	ts := newTestServer(t, dav.Config{Submit: sub})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	for _, f := range []string{"Sent", "Archive"} {
		mb.CreateFolder(context.Background(), f)
	}
	msg := "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: kept\r\n\r\nhello\r\n"
	if resp, b := do(t, ts, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", msg, "Content-Type", "message/rfc822", "Savedestination", ts.URL+"/exchange/alice/Archive/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with Savedestination = %d %s", resp.StatusCode, b)
	}
	if l, _ := mb.List(context.Background(), "Archive"); len(l) != 1 || l[0].Envelope.Subject != "kept" {
		t.Errorf("Archive holds %d messages, want the sent one", len(l))
	}
	if l, _ := mb.List(context.Background(), "Sent"); len(l) != 0 {
		t.Errorf("Sent holds %d messages, want none (Savedestination given)", len(l))
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", msg, "Content-Type", "message/rfc822", "Savedestination", "/exchange/alice/Nowhere/"); resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("Savedestination of a missing folder: %d, want a 4xx", resp.StatusCode)
	}
	if len(sub.sent) != 1 {
		t.Errorf("%d messages sent, want 1 (the refused one must not go out)", len(sub.sent))
	}
}
