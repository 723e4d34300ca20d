package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
)

// TestReadyzStoreUnreachable: /readyz fails while the Maildir root is
// gone (an unmounted volume) and recovers when it is back; /healthz stays
// up throughout, since the process itself is fine.
func TestReadyzStoreUnreachable(t *testing.T) {
	ts := startServer(t, nil)
	if resp, body := ts.do(t, "GET", "/readyz", nil); resp.StatusCode != 200 {
		t.Fatalf("/readyz at start: %d %q", resp.StatusCode, body)
	}
	root := ts.cfg.MaildirRoot
	if err := os.Rename(root, root+".away"); err != nil {
		t.Fatal(err)
	}
	resp, body := ts.do(t, "GET", "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || body != "not ready\n" {
		t.Errorf("/readyz without the store: %d %q, want 503", resp.StatusCode, body)
	}
	if len(ts.logs.events(t, "store not ready")) == 0 {
		t.Error("the failed readiness check was not logged")
	}
	if resp, _ := ts.do(t, "GET", "/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz without the store: %d, want 200", resp.StatusCode)
	}
	if err := os.Rename(root+".away", root); err != nil {
		t.Fatal(err)
	}
	if resp, body := ts.do(t, "GET", "/readyz", nil); resp.StatusCode != 200 {
		t.Errorf("/readyz with the store back: %d %q", resp.StatusCode, body)
	}
	// The index directory unwritable (here: replaced by a file) is not
	// ready either.
	idx := ts.cfg.IndexDir()
	if err := os.Rename(idx, idx+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idx, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if resp, _ := ts.do(t, "GET", "/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz without the index dir: %d, want 503", resp.StatusCode)
	}
	os.Remove(idx)
	os.Rename(idx+".away", idx)
}

// bigMessage puts a sparse message of size bytes (headers, then NULs) in
// alice's INBOX: a large download that costs no disk and no time to make.
func bigMessage(t *testing.T, cfg config.Config, size int64) {
	t.Helper()
	cur := filepath.Join(cfg.MaildirRoot, "alice", "Maildir", "cur")
	for _, d := range []string{cur, filepath.Join(filepath.Dir(cur), "new"), filepath.Join(filepath.Dir(cur), "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(cur, "1700000000.M1P1Q1.test:2,S"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, "From: a@example.org\r\nSubject: Big\r\nContent-Type: application/octet-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownCutsAtDeadline: a download that does not finish within the
// grace is cut, Shutdown reports the deadline, and the store is closed
// anyway. While draining, /readyz says 503.
func TestShutdownCutsAtDeadline(t *testing.T) {
	const size = 64 << 20 // far more than the socket buffers hold
	ts := startServer(t, func(c *config.Config) { c.MaxMessageSize, c.MaxResponseSize = size, size })
	bigMessage(t, ts.cfg, size)
	req, _ := http.NewRequest("GET", ts.url+"/exchange/alice/Inbox/Big.EML", nil)
	req.SetBasicAuth("alice", testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The client stalls. Shutdown with a short grace.
	errc := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	go func() { errc <- ts.Shutdown(ctx) }()
	// Draining is visible to probes at once.
	deadline := time.Now().Add(5 * time.Second)
	for !ts.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	ts.readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "shutting down\n" {
		t.Errorf("/readyz while draining: %d %q", rec.Code, rec.Body.String())
	}
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after its deadline")
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && 1<<20+n == size {
		t.Errorf("the stalled download completed (%d bytes) despite the cut", 1<<20+n)
	}
	if err := ts.store.Ready(context.Background()); err == nil {
		t.Error("store still open after Shutdown")
	}
	ts.closeErr = nil // checked above; the cleanup's Shutdown would report it again
}

// TestShutdownCompletesDownload: a 200 MB download in flight when
// Shutdown starts is completed, byte for byte, while new connections are
// refused; Shutdown returns without error once it is done.
func TestShutdownCompletesDownload(t *testing.T) {
	const size = 200 << 20 // the figure
	ts := startServer(t, func(c *config.Config) { c.MaxMessageSize, c.MaxResponseSize = size, size })
	bigMessage(t, ts.cfg, size)
	req, _ := http.NewRequest("GET", ts.url+"/exchange/alice/Inbox/Big.EML", nil)
	req.SetBasicAuth("alice", testPassword)
	client := &http.Client{Transport: &http.Transport{}} // its own connection
	resp, err := client.Do(req)
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
	errc := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the grace: far more than 200 MB over loopback takes
	defer cancel()
	go func() { errc <- ts.Shutdown(ctx) }()
	// New connections are refused once the listener is closed.
	refused := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
		r, err := c.Get(ts.url + "/healthz")
		if err != nil {
			refused = true
			break
		}
		r.Body.Close()
	}
	if !refused {
		t.Error("new connections still accepted during shutdown")
	}
	select {
	case err := <-errc:
		t.Fatalf("Shutdown returned (%v) before the download finished", err)
	default:
	}
	rest, err := io.Copy(io.Discard, resp.Body)
	if err != nil || first+rest != size {
		t.Fatalf("download: %d bytes, %v; want %d", first+rest, err, size)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return after the download finished")
	}
}
