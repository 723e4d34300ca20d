package server

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/mailbox"
	"github.com/emersion/go-smtp"
)

// relay is a real SMTP server (go-smtp) on loopback that records what it
// receives.
type relay struct {
	mu   sync.Mutex
	got  []relayed
	addr string
}

type relayed struct {
	from  string
	rcpts []string
	data  string
}

type relaySession struct {
	r   *relay
	cur relayed
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error { s.cur.from = from; return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.cur)
	s.r.mu.Unlock()
	s.cur = relayed{}
	return nil
}
func (s *relaySession) Reset()        { s.cur = relayed{} }
func (s *relaySession) Logout() error { return nil }

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *relay) wait(t *testing.T, n int) []relayed {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		if len(r.got) >= n {
			defer r.mu.Unlock()
			return append([]relayed(nil), r.got...)
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // polling a deadline, not waiting for readiness
	}
	t.Fatalf("relay received %d messages, want %d", len(r.got), n)
	return nil
}

// TestSubmissionThroughRelay: a message PUT to the Exchange submission URI
// goes through the persistent queue to a real SMTP relay, Bcc recipients
// included but the Bcc header stripped, From added from the account, and
// a copy lands in Sent.
func TestSubmissionThroughRelay(t *testing.T) {
	r := startRelay(t)
	ts := startServer(t, func(c *config.Config) {
		c.Relay, c.RelayTLS, c.MailDomain = r.addr, "none", "example.org"
	})
	mb, err := ts.Server.store.Mailbox(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.CreateFolder(context.Background(), "Sent"); err != nil {
		t.Fatal(err)
	}
	msg := "To: bob@example.net\r\nBcc: carol@example.com\r\nSubject: lunch\r\n\r\nnoon?\r\n"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+testPassword))
	resp, body := ts.do(t, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", strings.NewReader(msg), "Authorization", auth, "Content-Type", "message/rfc822")
	if resp.StatusCode != 200 {
		t.Fatalf("PUT submission: %d %s", resp.StatusCode, body)
	}
	got := r.wait(t, 1)[0]
	if got.from != "alice@example.org" || strings.Join(got.rcpts, ",") != "bob@example.net,carol@example.com" {
		t.Errorf("envelope: from %q to %v", got.from, got.rcpts)
	}
	if strings.Contains(got.data, "Bcc") || !strings.Contains(got.data, "From: alice@example.org") || !strings.Contains(got.data, "noon?") {
		t.Errorf("relayed message:\n%s", got.data)
	}
	sent, _ := mb.List(context.Background(), "Sent")
	if len(sent) != 1 || sent[0].Flags&mailbox.FlagSeen == 0 {
		t.Errorf("Sent copies: %+v", sent)
	}
	// Sending as someone else is refused.
	resp, _ = ts.do(t, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", strings.NewReader("From: mallory@evil.example\r\nTo: bob@example.net\r\n\r\nx\r\n"), "Authorization", auth)
	if resp.StatusCode != 403 {
		t.Errorf("foreign From = %d, want 403", resp.StatusCode)
	}
}
