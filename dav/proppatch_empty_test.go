package dav_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/memstore"
)

// noEmptyStore behaves as the IMAP backend does before Dovecot: it
// refuses to store a zero-byte message with mailbox.ErrEmptyMessage.
type noEmptyStore struct{ mailbox.Store }

func (s noEmptyStore) Mailbox(ctx context.Context, user string) (mailbox.Mailbox, error) {
	mb, err := s.Store.Mailbox(ctx, user)
	if err != nil {
		return nil, err
	}
	return noEmptyMailbox{mb}, nil
}

type noEmptyMailbox struct{ mailbox.Mailbox }

func (m noEmptyMailbox) Append(ctx context.Context, folder string, r io.Reader, o mailbox.AppendOptions) (mailbox.Message, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return mailbox.Message{}, err
	}
	if len(b) == 0 {
		return mailbox.Message{}, mailbox.ErrEmptyMessage
	}
	return m.Mailbox.Append(ctx, folder, bytes.NewReader(b), o)
}

// TestDavMailAppendFlowNoEmptyMessages: DavMail's APPEND and send
// (PROPPATCH on a missing item, then PUT) work on a store that cannot
// hold an empty message, as an IMAP upstream cannot: the item starts as a
// placeholder that the PUT replaces, keeping the flags the PROPPATCH set.
func TestDavMailAppendFlowNoEmptyMessages(t *testing.T) {
	ts := newTestServer(t, dav.Config{Store: noEmptyStore{memstore.New()}})
	href := "/exchange/alice/Drafts/f6ede6eb-uuid.EML"
	if resp, _ := do(t, ts, "MKCOL", "/exchange/alice/Drafts/", ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("MKCOL Drafts = %d", resp.StatusCode)
	}
	body := `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x0e070003 xmlns="http://schemas.microsoft.com/mapi/proptag/">9</x0e070003></D:prop></D:set></D:propertyupdate>`
	resp, b := do(t, ts, "PROPPATCH", href, body)
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(b, "HTTP/1.1 201 Created") {
		t.Fatalf("PROPPATCH create: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, ts, "PUT", href, sampleMsg, "Translate", "f", "Content-Type", "message/rfc822"); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT over the placeholder = %d, want 200", resp.StatusCode)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	m, err := mb.Stat(context.Background(), "Drafts", "f6ede6eb-uuid.EML")
	if err != nil || m.Size != int64(len(sampleMsg)) || m.Flags != mailbox.FlagSeen|mailbox.FlagDraft {
		t.Fatalf("after PUT: %+v %v", m, err)
	}
	if _, got := do(t, ts, "GET", href, "", "Translate", "f"); got != sampleMsg {
		t.Errorf("GET after PUT: %q", got)
	}
	// An empty PUT is refused with a reason that names the cause.
	resp, b = do(t, ts, "PUT", "/exchange/alice/Drafts/empty.EML", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "empty message") {
		t.Errorf("empty PUT: %d %q", resp.StatusCode, b)
	}
}

// TestLockUnmappedNoEmptyMessages: a LOCK on an unmapped URL creates the
// resource (RFC 4918 §7.3) on a store without empty messages too.
func TestLockUnmappedNoEmptyMessages(t *testing.T) {
	ts := newTestServer(t, dav.Config{Store: noEmptyStore{memstore.New()}})
	body := `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	resp, b := do(t, ts, "LOCK", "/exchange/alice/Inbox/unmapped.EML", body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Lock-Token") == "" {
		t.Fatalf("LOCK unmapped = %d %s", resp.StatusCode, b)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	if _, err := mb.Stat(context.Background(), mailbox.Inbox, "unmapped.EML"); err != nil {
		t.Errorf("the locked resource does not exist: %v", err)
	}
}
