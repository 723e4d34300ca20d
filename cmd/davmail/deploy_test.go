package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/rs/zerolog"
)

func TestConfigCheckCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: ':8080'\nmax-mesage-size: 1MiB\nidle-timeout: soon\n"), 0o600)
	code, out, errOut := cli(t, "", "config", "check", bad)
	if code != exitError || out != "" {
		t.Errorf("bad file: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		bad + `:2: unknown setting "max-mesage-size" (did you mean "max-message-size"?)`,
		bad + `:3: idle-timeout: invalid duration "soon"`,
		"    idle-timeout: how long an idle keep-alive connection stays open", // the explanation
		"DAVMAIL_IDLE_TIMEOUT",
		bad + ": 2 errors",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("report lacks %q:\n%s", want, errOut)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen: ':8080'\nmax-message-size: 50MiB\n"), 0o600)
	if code, out, _ := cli(t, "", "config", "check", good); code != exitOK || !strings.Contains(out, "OK") {
		t.Errorf("good file: %d %q", code, out)
	}
	for _, args := range [][]string{{"config"}, {"config", "check"}, {"config", "check", "a", "b"}, {"config", "frob"}} {
		if code, _, _ := cli(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, out, _ := cli(t, "", "help", "config"); code != 0 || !strings.Contains(out, "config check FILE") {
		t.Errorf("help config: %d %q", code, out)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	status := http.StatusOK
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, r.URL.Path+"\n")
	}))
	defer hs.Close()
	if code, out, errOut := cli(t, "", "healthcheck", "--url", hs.URL+"/healthz"); code != exitOK || !strings.Contains(out, "/healthz") {
		t.Errorf("healthy: %d %q %q", code, out, errOut)
	}
	status = http.StatusServiceUnavailable
	if code, _, errOut := cli(t, "", "healthcheck", "--url", hs.URL+"/readyz"); code != exitError || !strings.Contains(errOut, "503") {
		t.Errorf("unhealthy: %d %q", code, errOut)
	}
	hs.Close()
	if code, _, _ := cli(t, "", "healthcheck", "--url", hs.URL+"/healthz"); code != exitError {
		t.Errorf("nothing listening: %d", code)
	}
	for _, tc := range []struct {
		listen, cert string
		ready        bool
		want         string
	}{
		{"0.0.0.0:8080", "", false, "http://127.0.0.1:8080/healthz"},
		{":8443", "c.pem", true, "https://127.0.0.1:8443/readyz"},
		{"[::]:80", "", false, "http://[::1]:80/healthz"},
		{"192.0.2.1:8080", "", false, "http://192.0.2.1:8080/healthz"},
	} {
		cfg := config.Defaults()
		cfg.Listen, cfg.TLSCert = tc.listen, tc.cert
		if got := probeURL(cfg, tc.ready); got != tc.want {
			t.Errorf("probeURL(%s): %s, want %s", tc.listen, got, tc.want)
		}
	}
}

func TestInitialAdmin(t *testing.T) {
	cfg := config.Defaults()
	cfg.Users = filepath.Join(t.TempDir(), "users")
	log := zerolog.New(zerolog.NewTestWriter(t))
	// Without a password nothing happens.
	if err := initialAdmin(cfg, log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Users); !os.IsNotExist(err) {
		t.Errorf("users file created without a password: %v", err)
	}
	cfg.InitialAdminUser, cfg.InitialAdminPassword = "root", "first pw"
	if err := initialAdmin(cfg, log); err != nil {
		t.Fatal(err)
	}
	u, err := auth.LoadUsers(cfg.Users)
	if err != nil {
		t.Fatal(err)
	}
	if usr, ok := u.Lookup("root"); !ok || !usr.Admin() || !u.Verify("root", "first pw") {
		t.Fatalf("initial admin: %+v %v", usr, ok)
	}
	// Later starts leave an existing users file alone.
	cfg.InitialAdminPassword = "second pw"
	if err := initialAdmin(cfg, log); err != nil {
		t.Fatal(err)
	}
	if u, _ := auth.LoadUsers(cfg.Users); !u.Verify("root", "first pw") || u.Len() != 1 {
		t.Error("a second start changed the users file")
	}
}

// writeTestCert writes a self-signed certificate for cn and its key.
func writeTestCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// logField returns field of the first JSON log line with message msg.
func logField(out, msg, field string) string {
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
			s, _ := m[field].(string)
			return s
		}
	}
	return ""
}

// TestBinaryDeploy runs the real binary the way a container does (all
// settings from the environment, initial admin, HTTPS, a metrics
// listener): SIGHUP reloads the certificate for new connections, and
// SIGTERM during a 200 MB download stops accepting but lets the download
// complete before the process exits cleanly.
func TestBinaryDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	certFile, keyFile := filepath.Join(data, "cert.pem"), filepath.Join(data, "key.pem")
	writeTestCert(t, certFile, keyFile, "first.test")

	// The 200 MB message: sparse, so it costs no disk and no time.
	const size = 200 << 20
	cur := filepath.Join(data, "maildir", "root", "Maildir", "cur")
	os.MkdirAll(cur, 0o700)
	f, err := os.Create(filepath.Join(cur, "1700000000.M1P1Q1.test:2,S"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "From: a@example.org\r\nSubject: Big\r\n\r\n")
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()

	env := []string{
		"DAVMAIL_DATA=" + data, "DAVMAIL_LOG_FORMAT=json", "DAVMAIL_LISTEN=127.0.0.1:0",
		"DAVMAIL_TLS_CERT=" + certFile, "DAVMAIL_TLS_KEY=" + keyFile,
		"DAVMAIL_METRICS_LISTEN=127.0.0.1:0",
		"DAVMAIL_MAX_MESSAGE_SIZE=256MiB", "DAVMAIL_MAX_RESPONSE_SIZE=256MiB",
		"DAVMAIL_SHUTDOWN_GRACE=2m", // far more than 200 MB over loopback takes
		"DAVMAIL_INITIAL_ADMIN_USER=root", "DAVMAIL_INITIAL_ADMIN_PASSWORD=admin pw",
	}
	p := start(t, bin, env, "serve")
	out := p.waitFor(t, "the listening line", func(s string) bool { return listenAddr(s) != "" })
	addr := listenAddr(out)
	if !strings.Contains(out, `"message":"initial admin user created"`) || strings.Contains(out, "admin pw") {
		t.Errorf("initial admin: not created, or its password logged:\n%s", out)
	}
	peer := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // self-signed
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := peer(); cn != "first.test" {
		t.Fatalf("certificate %q", cn)
	}
	metricsAddr := logField(out, "listening", "metrics_addr")
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "davmail_users 1") {
		t.Errorf("metrics listener: %d, users line missing", resp.StatusCode)
	}

	// SIGHUP after a renewal.
	writeTestCert(t, certFile, keyFile, "second.test")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "the reload", func(s string) bool { return strings.Contains(s, `"message":"TLS certificate reloaded"`) })
	if cn := peer(); cn != "second.test" {
		t.Errorf("after SIGHUP: certificate %q, want second.test", cn)
	}

	// The download, then SIGTERM in its middle.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/exchange/root/Inbox/Big.EML", nil)
	req.SetBasicAuth("root", "admin pw")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	first, err := io.CopyN(io.Discard, resp.Body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "the shutdown line", func(s string) bool { return strings.Contains(s, `shutting down`) })
	// Stopped accepting: a new connection fails (the listener is closed
	// right after the log line; poll with a deadline).
	refused := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused = true
			break
		}
		c.Close()
	}
	if !refused {
		t.Error("new connections still accepted after SIGTERM")
	}
	select {
	case err := <-p.done:
		t.Fatalf("davmail exited (%v) before the download finished:\n%s", err, p.output())
	default:
	}
	rest, err := io.Copy(io.Discard, resp.Body)
	if err != nil || first+rest != size {
		t.Fatalf("download across SIGTERM: %d bytes, %v; want %d", first+rest, err, size)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit 60s after the download finished:\n%s", p.output())
	}
	if !strings.Contains(p.output(), `"message":"stopped"`) {
		t.Errorf("no 'stopped' line:\n%s", p.output())
	}
}
