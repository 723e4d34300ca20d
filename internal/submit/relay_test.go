package submit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/rs/zerolog"
)

// testRelay is an SMTP relay for tests: a go-smtp server on 127.0.0.1:0
// that records what it accepts and answers as the test says.
type testRelay struct {
	t    testing.TB
	srv  *smtp.Server
	ln   *toggleListener
	addr string

	mu   sync.Mutex
	msgs []relayed
	// rcpt, when set, answers RCPT TO (nil error: accepted).
	rcpt func(to string) error
	// data, when set, answers the end of DATA after the message is read.
	data func(m relayed) error
	// hold, when set, makes DATA wait for it to be closed (after reading
	// the message, before answering), and entered is signalled first.
	hold    chan struct{}
	entered chan struct{}
	// user/pass, when set, require AUTH PLAIN.
	user, pass string
	authed     atomic.Int32
}

type relayed struct {
	from  string
	rcpts []string
	data  []byte
}

type relayOpts struct {
	tls        *tls.Config // STARTTLS offered when set
	implicit   bool        // TLS from the first byte (needs tls)
	user, pass string
}

func newRelay(t testing.TB, o relayOpts) *testRelay {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = inner
	if o.implicit {
		l = tls.NewListener(inner, o.tls)
	}
	r := &testRelay{t: t, ln: &toggleListener{Listener: l}, addr: inner.Addr().String(), user: o.user, pass: o.pass}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r}, nil
	}))
	r.srv.Domain = "relay.test"
	r.srv.AllowInsecureAuth = true
	r.srv.MaxRecipients = 5000
	r.srv.MaxMessageBytes = 64 << 20
	r.srv.EnableSMTPUTF8 = true
	r.srv.ReadTimeout = 10 * time.Second
	r.srv.WriteTimeout = 10 * time.Second
	if o.tls != nil && !o.implicit {
		r.srv.TLSConfig = o.tls
	}
	go r.srv.Serve(r.ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *testRelay) setDown(down bool) { r.ln.down.Store(down) }

func (r *testRelay) received() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayed(nil), r.msgs...)
}

// toggleListener accepts and at once closes connections while down: a
// relay that is unreachable, without giving up the port.
type toggleListener struct {
	net.Listener
	down atomic.Bool
}

func (l *toggleListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.down.Load() {
			return c, err
		}
		c.Close()
	}
}

type relaySession struct {
	r     *testRelay
	from  string
	rcpts []string
	authd bool
}

func (s *relaySession) AuthMechanisms() []string {
	if s.r.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.user || password != s.r.pass {
			return errors.New("invalid credentials")
		}
		s.authd = true
		s.r.authed.Add(1)
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.user != "" && !s.authd {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	f := s.r.rcpt
	s.r.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	m := relayed{from: s.from, rcpts: append([]string(nil), s.rcpts...), data: b}
	s.r.mu.Lock()
	hold, entered, f := s.r.hold, s.r.entered, s.r.data
	s.r.mu.Unlock()
	if hold != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		<-hold
	}
	if f != nil {
		if err := f(m); err != nil {
			return err
		}
	}
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, m)
	s.r.mu.Unlock()
	return nil
}

func (s *relaySession) Reset()        { s.from, s.rcpts = "", nil }
func (s *relaySession) Logout() error { return nil }

// bounces records what the queue hands to Options.Bounce.
type bounces struct {
	mu   sync.Mutex
	got  []bounceMsg
	fail atomic.Int32 // fail this many calls first
}

type bounceMsg struct {
	user string
	msg  []byte
}

func (b *bounces) store(_ context.Context, user string, r io.Reader) error {
	msg, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if b.fail.Add(-1) >= 0 {
		return errors.New("mailbox unavailable (test)")
	}
	b.mu.Lock()
	b.got = append(b.got, bounceMsg{user, msg})
	b.mu.Unlock()
	return nil
}

func (b *bounces) list() []bounceMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bounceMsg(nil), b.got...)
}

// testOptions are fast options for a queue talking to r.
func testOptions(r *testRelay, b *bounces) Options {
	return Options{
		Relay:          r.addr,
		TLS:            TLSNone,
		HelloName:      "gw.test",
		Workers:        2,
		RetryInitial:   5 * time.Millisecond,
		RetryMax:       40 * time.Millisecond,
		MaxAge:         time.Hour,
		DialTimeout:    5 * time.Second,
		CommandTimeout: 5 * time.Second,
		DataTimeout:    5 * time.Second,
		Bounce:         b.store,
	}
}

func openQueue(t *testing.T, dir string, o Options) *Queue {
	t.Helper()
	q, err := Open(dir, o, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close(context.Background()) })
	return q
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// selfSigned returns a TLS config with a fresh certificate for 127.0.0.1.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// copyTree copies the regular files under src to dst (a crash image).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func countRcpt(msgs []relayed, rcpt string) int {
	n := 0
	for _, m := range msgs {
		for _, r := range m.rcpts {
			if strings.EqualFold(r, rcpt) {
				n++
			}
		}
	}
	return n
}

func testLog(t testing.TB) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

func zerologTo(w io.Writer) zerolog.Logger { return zerolog.New(w).Level(zerolog.TraceLevel) }

// syncBuffer is a bytes.Buffer safe for the queue's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
