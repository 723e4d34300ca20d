// Package davbenchtest starts a real davmail server in-process, on
// 127.0.0.1 port 0 with a temporary data directory and a users file, for
// the tests of davbench and cmd/davbench. It keeps the server's 5xx
// access-log lines and warnings and prints them when a test fails.
package davbenchtest

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/server"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// Server is a running davmail.
type Server struct {
	// URL is "http://127.0.0.1:port", no slash.
	URL string
	// Data is the server's data directory.
	Data string
	log  *trap
}

// Start runs a server with the given users (name → password) until the
// test ends; mod, if not nil, changes the configuration first.
func Start(t testing.TB, users map[string]string, mod func(*config.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Data = dir
	cfg.MaildirRoot = filepath.Join(dir, "maildir")
	cfg.Users = filepath.Join(dir, "users")
	for _, name := range slices.Sorted(maps.Keys(users)) {
		// MinCost: the test measures the gateway, not bcrypt.
		if err := auth.AddUser(cfg.Users, name, users[name], auth.RoleUser, auth.Cost(bcrypt.MinCost)); err != nil {
			t.Fatalf("adding user %s: %v", name, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = ln.Addr().String()
	if mod != nil {
		mod(&cfg)
	}
	tr := &trap{}
	srv, err := server.New(cfg, zerolog.New(tr).With().Timestamp().Logger())
	if err != nil {
		ln.Close()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		// Ten seconds: every request of these tests ends far sooner.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if n := srv.Panics(); n != 0 {
			t.Errorf("the server recovered %d handler panics", n)
		}
		if t.Failed() {
			for _, l := range tr.kept() {
				t.Logf("server: %s", l)
			}
		}
	})
	return &Server{URL: "http://" + ln.Addr().String(), Data: dir, log: tr}
}

// Unexpected5xx returns how many requests the server answered with a 5xx
// other than the fair share's 503.
func (s *Server) Unexpected5xx() int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.n5xx
}

// trap keeps what a failing test needs from the server's JSON log.
type trap struct {
	mu    sync.Mutex
	n5xx  int
	lines []string
}

// maxKept caps the lines kept: the first ones explain a failure.
const maxKept = 100

func (t *trap) Write(p []byte) (int, error) {
	var ev struct {
		Level  string `json:"level"`
		Status int    `json:"status"`
		Path   string `json:"path"`
	}
	if json.Unmarshal(p, &ev) != nil {
		return len(p), nil
	}
	bad5xx := ev.Status >= 500 && ev.Status != http.StatusServiceUnavailable
	keep := bad5xx || ev.Level == "error" || (ev.Level == "warn" && ev.Status == 0)
	if !keep {
		return len(p), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if bad5xx {
		t.n5xx++
	}
	if len(t.lines) < maxKept {
		t.lines = append(t.lines, strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (t *trap) kept() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lines)
}
