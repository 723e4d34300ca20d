package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// events returns the JSON log lines with message msg.
func (l *logBuf) events(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// requestEvent waits (polling with a deadline, never sleeping blindly)
// for the access-log line of request id.
func (l *logBuf) requestEvent(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range l.events(t, "request") {
			if m["id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request log line for %s in:\n%s", id, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testServer struct {
	*Server
	url  string
	logs *logBuf
	done chan error
}

const testPassword = "pass word:1"

func startServer(t *testing.T, mod func(*config.Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Data = dir
	cfg.MaildirRoot = filepath.Join(dir, "maildir")
	cfg.Users = filepath.Join(dir, "users")
	cfg.Listen = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Users, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	s, err := New(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, url: "http://" + ln.Addr().String(), logs: logs, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if n := s.Panics(); n != 0 && !t.Failed() && !strings.Contains(t.Name(), "Panic") {
			t.Errorf("%d handler panics", n)
		}
	})
	return ts
}

func (ts *testServer) do(t *testing.T, method, path string, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var idRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestEndpoints(t *testing.T) {
	ts := startServer(t, nil)

	resp, body := ts.do(t, "GET", "/healthz", nil)
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	if id := resp.Header.Get("X-Request-Id"); !idRE.MatchString(id) {
		t.Errorf("X-Request-Id %q, want 16 hex characters", id)
	}
	resp, body = ts.do(t, "GET", "/readyz", nil)
	if resp.StatusCode != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "/exchange/") {
		t.Errorf("/: %d %q", resp.StatusCode, body)
	}
	resp, _ = ts.do(t, "OPTIONS", "/", nil)
	if resp.StatusCode != 200 || resp.Header.Get("DAV") == "" {
		t.Errorf("OPTIONS /: %d DAV=%q", resp.StatusCode, resp.Header.Get("DAV"))
	}
	resp, _ = ts.do(t, "GET", "/nothing-here", nil)
	if resp.StatusCode != 404 {
		t.Errorf("/nothing-here: %d, want 404", resp.StatusCode)
	}
	resp, _ = ts.do(t, "POST", "/healthz", nil)
	if resp.StatusCode != 405 {
		t.Errorf("POST /healthz: %d, want 405", resp.StatusCode)
	}
}

func TestAuthAndAccessLog(t *testing.T) {
	ts := startServer(t, nil)

	// Without credentials: 401 with a Basic challenge.
	resp, _ := ts.do(t, "PROPFIND", "/exchange/alice/", nil, "Depth", "0", "Cookie", "sessionid=cookie-secret")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no auth: %d, want 401", resp.StatusCode)
	}
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="davmail"`) {
		t.Errorf("WWW-Authenticate %q", got)
	}
	ev := ts.logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	if ev["status"] != float64(401) || ev["user"] != "" || ev["level"] != "info" {
		t.Errorf("401 log line: %v", ev)
	}

	// With credentials: the DAV handler answers, and the log has the user.
	req, _ := http.NewRequest("PROPFIND", ts.url+"/exchange/alice/", strings.NewReader(`<?xml version="1.0"?><propfind xmlns="DAV:"><prop><displayname/></prop></propfind>`))
	req.SetBasicAuth("alice", testPassword)
	req.Header.Set("Depth", "1")
	req.Header.Set("User-Agent", "davmail-test/1.0")
	req.Header.Set("Content-Type", "application/xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND with auth: %d, want 207", resp.StatusCode)
	}
	id := resp.Header.Get("X-Request-Id")
	ev = ts.logs.requestEvent(t, id)
	want := map[string]any{
		"id": id, "user": "alice", "method": "PROPFIND", "path": "/exchange/alice/",
		"status": float64(207), "ua": "davmail-test/1.0", "level": "info",
		"bytes_in": float64(req.ContentLength), "bytes_out": float64(n),
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("log field %s = %v, want %v", k, ev[k], v)
		}
	}
	for _, k := range []string{"remote", "duration", "items"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("log field %s missing: %v", k, ev)
		}
	}
	if d, _ := ev["duration"].(float64); d <= 0 {
		t.Errorf("duration %v, want > 0 ms", ev["duration"])
	}
	if !strings.HasPrefix(ev["remote"].(string), "127.0.0.1:") {
		t.Errorf("remote %v", ev["remote"])
	}

	// A wrong password: 401, logged by auth without the password.
	req, _ = http.NewRequest("PROPFIND", ts.url+"/exchange/alice/", nil)
	req.SetBasicAuth("alice", "not-the-password")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	ts.logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	logs := ts.logs.String()
	for _, secret := range []string{testPassword, "not-the-password", "cookie-secret", "Authorization", "Basic "} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	if len(ts.logs.events(t, "authentication failed")) != 1 {
		t.Errorf("want one 'authentication failed' event:\n%s", logs)
	}
}

func TestLimitRefusalLogged(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MaxMessageSize = 1 << 10 })
	msg := "Subject: big\r\n\r\n" + strings.Repeat("x", 4<<10)
	req, _ := http.NewRequest("PUT", ts.url+"/exchange/alice/Inbox/big.EML", strings.NewReader(msg))
	req.SetBasicAuth("alice", testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT over max-message-size: %d, want 413", resp.StatusCode)
	}
	ev := ts.logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	if ev["level"] != "warn" || ev["limit"] != "max-message-size" || ev["limit_value"] != float64(1<<10) {
		t.Errorf("limit log line: %v", ev)
	}
}

func TestPanicRecovery(t *testing.T) {
	ts := startServer(t, nil)
	ts.mux.HandleFunc("/test/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	ts.mux.HandleFunc("/test/panic-late", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		panic("late boom")
	})

	resp, body := ts.do(t, "GET", "/test/panic", nil)
	if resp.StatusCode != 500 {
		t.Errorf("panic: status %d, want 500", resp.StatusCode)
	}
	id := resp.Header.Get("X-Request-Id")
	if !strings.Contains(body, id) || strings.Contains(body, "boom") {
		t.Errorf("panic body %q: want the request id, not the panic value", body)
	}
	if n := ts.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
	ev := ts.logs.requestEvent(t, id)
	if ev["status"] != float64(500) || ev["level"] != "error" || !strings.Contains(fmt.Sprint(ev["error"]), "boom") {
		t.Errorf("panic request line: %v", ev)
	}
	panics := ts.logs.events(t, "handler panicked")
	if len(panics) != 1 || !strings.Contains(fmt.Sprint(panics[0]["stack"]), "server_test.go") {
		t.Errorf("panic log with stack: %v", panics)
	}

	// A panic after the response started: the connection is cut, so the
	// client cannot take the short body for a whole one.
	req, _ := http.NewRequest("GET", ts.url+"/test/panic-late", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("late panic: the client read a complete response")
	}
	if n := ts.Panics(); n != 2 {
		t.Errorf("Panics() = %d, want 2", n)
	}

	// The server still works.
	if resp, _ := ts.do(t, "GET", "/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("after panics: /healthz %d", resp.StatusCode)
	}
}

// TestResponseWriterTransparent checks that the wrapper keeps Flusher,
// ReaderFrom (sendfile) and ResponseController working, and counts bytes.
func TestResponseWriterTransparent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "blob")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	var panics atomicCounter
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("not a Flusher")
		}
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("not a ReaderFrom")
		}
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("ResponseController.SetWriteDeadline: %v (Unwrap broken?)", err)
		}
		if reqlog.From(r.Context()).ID == "" {
			t.Error("no reqlog entry in the context")
		}
		zerolog.Ctx(r.Context()).Info().Msg("inside")
		f, err := os.Open(file)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		io.Copy(w, f)
	})
	srv := httptest.NewServer(&accessLog{log: zerolog.New(logs), next: h, panics: &panics.Int64})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("body: %d bytes, want %d", len(got), len(data))
	}
	ev := logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	if ev["bytes_out"] != float64(len(data)) || ev["status"] != float64(200) {
		t.Errorf("log: %v", ev)
	}
	inside := logs.events(t, "inside")
	if len(inside) != 1 || inside[0]["req"] != ev["id"] {
		t.Errorf("request-scoped logger lacks the request id: %v", inside)
	}
}

// TestBodyIdleTimeout: a client that stops sending its body mid-way gets
// cut after the body idle timeout instead of holding the handler forever.
func TestBodyIdleTimeout(t *testing.T) {
	logs := &logBuf{}
	var panics atomicCounter
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	})
	srv := httptest.NewServer(&accessLog{log: zerolog.New(logs), next: h, panics: &panics.Int64, bodyIdle: 300 * time.Millisecond})
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	select {
	case err := <-readErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("stalled body: read error %v, want a timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stalled body still held after 20s")
	}

	// A slow but moving body is fine, and the connection stays usable.
	go func() {
		for {
			select {
			case <-readErr:
			case <-time.After(30 * time.Second):
				return
			}
		}
	}()
	c2, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
	time.Sleep(100 * time.Millisecond) // a pause shorter than the idle timeout, by design
	fmt.Fprintf(c2, "cd")
	br := bufio.NewReader(c2)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("slow body: %d", resp.StatusCode)
	}
	ev := logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	if ev["bytes_in"] != float64(4) {
		t.Errorf("bytes_in %v, want 4", ev["bytes_in"])
	}
}

func TestShutdownClosesStore(t *testing.T) {
	ts := startServer(t, nil)
	if resp, _ := ts.do(t, "GET", "/healthz", nil); resp.StatusCode != 200 {
		t.Fatal("not serving")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
		ts.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if err := ts.store.Ready(context.Background()); err == nil {
		t.Error("store still ready after Shutdown")
	}
	// A second Shutdown (the cleanup's) is harmless.
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

type atomicCounter struct{ atomic.Int64 }

// TestExpectContinue: a request with "Expect: 100-continue" refused
// before its body is read (here, by authentication) gets its answer at
// once, and one that is accepted gets its 100 Continue (litmus http 2).
func TestExpectContinue(t *testing.T) {
	ts := startServer(t, nil)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	c, br := dial()
	fmt.Fprintf(c, "PUT /exchange/alice/Inbox/x.EML HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to an unauthenticated Expect: 100-continue: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}

	c, br = dial()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+testPassword))
	msg := "Subject: hi\r\n\r\nhello\r\n"
	fmt.Fprintf(c, "PUT /exchange/alice/Inbox/hi.EML HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", auth, len(msg))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim response %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n') // the blank line after the interim status
	io.WriteString(c, msg)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("PUT after 100 Continue: %d, want 201", resp.StatusCode)
	}
	ev := ts.logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	if ev["bytes_in"] != float64(len(msg)) || ev["status"] != float64(201) {
		t.Errorf("log: %v", ev)
	}
}
