package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
	"github.com/rs/zerolog"
)

// writeCert writes a fresh self-signed certificate for cn (valid for
// 127.0.0.1 and cn) and its key to certFile and keyFile.
func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsFiles returns a certificate for cn and its key, written in dir.
func tlsFiles(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, cn)
	return certFile, keyFile
}

// tlsConn is one kept-alive HTTPS connection driven by hand, so the test
// knows which connection each request used.
type tlsConn struct {
	c  *tls.Conn
	br *bufio.Reader
}

func dialTLS(t *testing.T, addr string) *tlsConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // self-signed test certificates
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tlsConn{c: c, br: bufio.NewReader(c)}
}

func (tc *tlsConn) peerCN() string {
	return tc.c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// get sends GET path on the connection and returns the status and body.
func (tc *tlsConn) get(t *testing.T, path string) (int, string) {
	t.Helper()
	tc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(tc.c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatalf("writing on the kept connection: %v", err)
	}
	resp, err := http.ReadResponse(tc.br, nil)
	if err != nil {
		t.Fatalf("reading on the kept connection: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Close {
		t.Errorf("server asked to close the connection")
	}
	return resp.StatusCode, string(b)
}

func TestTLSServeAndReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := tlsFiles(t, dir, "first.test")
	ts := startServer(t, func(c *config.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !ts.TLS() {
		t.Fatal("TLS() false with a certificate")
	}
	addr := strings.TrimPrefix(ts.url, "http://")

	// Plain HTTP on the HTTPS port is refused (net/http answers 400).
	resp, err := http.Get("http://" + addr + "/healthz")
	if err == nil {
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %d, want 400", resp.StatusCode)
		}
		resp.Body.Close()
	}

	// A full request through a real client: Basic auth over HTTPS.
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("PROPFIND", "https://"+addr+"/exchange/alice/", nil)
	req.Header.Set("Depth", "0")
	req.SetBasicAuth("alice", testPassword)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("HTTPS PROPFIND: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(string(body), "/exchange/alice/") {
		t.Errorf("HTTPS PROPFIND: %d %.200s", resp.StatusCode, body)
	}

	old := dialTLS(t, addr)
	if cn := old.peerCN(); cn != "first.test" {
		t.Fatalf("first connection's certificate: %q", cn)
	}
	if code, body := old.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("first request: %d %q", code, body)
	}

	// Renewal: new files, then the reload SIGHUP triggers.
	writeCert(t, certFile, keyFile, "second.test")
	if err := ts.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	fresh := dialTLS(t, addr)
	if cn := fresh.peerCN(); cn != "second.test" {
		t.Errorf("new connection after reload got %q, want second.test", cn)
	}
	if code, _ := fresh.get(t, "/healthz"); code != 200 {
		t.Errorf("new connection: %d", code)
	}
	// The connection opened before the reload is still served, on its
	// original session.
	if code, body := old.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("old connection after reload: %d %q", code, body)
	}
	if cn := old.peerCN(); cn != "first.test" {
		t.Errorf("old connection's certificate changed to %q", cn)
	}

	// A broken renewal keeps the certificate in use.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.ReloadTLS(); err == nil {
		t.Error("ReloadTLS of a broken key: no error")
	}
	if cn := dialTLS(t, addr).peerCN(); cn != "second.test" {
		t.Errorf("after a failed reload: %q, want second.test still", cn)
	}
	if len(ts.logs.events(t, "TLS certificate reload failed; keeping the previous certificate")) != 1 {
		t.Error("failed reload not logged")
	}
}

func TestTLSStartupErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Data = dir
	cfg.MaildirRoot = filepath.Join(dir, "maildir")
	cfg.Users = filepath.Join(dir, "users")
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key")
	if _, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t))); err == nil || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("New with a missing certificate: %v", err)
	}
	// Without TLS, ReloadTLS says so.
	ts := startServer(t, nil)
	if err := ts.ReloadTLS(); !errors.Is(err, ErrNoTLS) {
		t.Errorf("ReloadTLS without TLS: %v", err)
	}
}

func TestHTTPRedirect(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := tlsFiles(t, dir, "redirect.test")
	ts := startServer(t, func(c *config.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.ServeRedirect(ln, "0.0.0.0:8443") }()
	base := "http://" + ln.Addr().String()
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, host, path string
		code               int
		location           string
	}{
		{"GET", "mail.example.org", "/exchange/alice/Inbox/?x=1", 301, "https://mail.example.org:8443/exchange/alice/Inbox/?x=1"},
		{"PROPFIND", "mail.example.org:80", "/exchange/alice/", 308, "https://mail.example.org:8443/exchange/alice/"},
		{"GET", "[2001:db8::1]", "/", 301, "https://[2001:db8::1]:8443/"},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		req.Host = tc.host
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s %s%s: %d %q, want %d %q", tc.method, tc.host, tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.code, tc.location)
		}
	}
	// Probes get the health answer itself.
	resp, err := noFollow.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz on the redirect port: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeRedirect after Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeRedirect still running after Shutdown")
	}
}
