package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
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
)

// testUsers are the mailbox owners of every e2e corpus.
var testUsers = []string{"alice", "bob"}

// serverOptions tune startServer.
type serverOptions struct {
	// CorpusArgs are extra mkcorpus flags (after -out and -users). Nil
	// means smallCorpus.
	CorpusArgs []string
	// Users are the mailbox owners; nil means testUsers.
	Users []string
	// Admins get the admin role in the users file.
	Admins []string
	// Configure, if set, changes the configuration before the server
	// starts (limits, relay, ...).
	Configure func(*config.Config)
}

// smallCorpus is enough for the client tests, which need a realistic
// mailbox to list but spend their time on their own files: 40 messages per
// user, one 512 KiB attachment each, and the malformed catalog in alice's
// INBOX. It generates in well under a second.
var smallCorpus = []string{"-messages", "40", "-large", "1", "-large-size", "512KiB"}

// fullCorpus is mkcorpus's default: 200 messages per user, two 8 MiB
// attachments each (~130 MiB on disk in all), the malformed catalog. It is
// empty but not nil: no extra flags.
var fullCorpus = []string{}

// testServer is a running davmail with its corpus.
type testServer struct {
	// URL is the server's base URL, "http://127.0.0.1:port", no slash.
	URL string
	// Corpus is the pristine mkcorpus output (users' Maildirs and
	// manifest.jsonl): hard links to the files the server was given, at
	// the paths the manifest names.
	Corpus string
	// Passwords maps each user in testUsers to their random password.
	Passwords map[string]string
}

// startServer generates a corpus into a temporary directory, writes a
// users file for alice and bob (opts.Users) with random passwords, and
// starts the server on 127.0.0.1:0 as cmd/davmail would. The server is
// shut down when the test ends.
func startServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	tmp := t.TempDir()
	served, corpus := makeCorpus(t, tmp, opts)
	return launchServer(t, tmp, served, corpus, opts)
}

// makeCorpus runs mkcorpus into dir/maildir (the tree the server is
// given) and hard-links it to dir/corpus.
func makeCorpus(t *testing.T, dir string, opts serverOptions) (served, corpus string) {
	t.Helper()
	mk := mkcorpusBinary(t)
	served = filepath.Join(dir, "maildir")
	args := opts.CorpusArgs
	if args == nil {
		args = smallCorpus
	}
	users := opts.Users
	if users == nil {
		users = testUsers
	}
	args = append([]string{"-out", served, "-users", strings.Join(users, ",")}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, mk, args...).CombinedOutput(); err != nil {
		t.Fatalf("mkcorpus %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// The server may move files (new/ to cur/, flag changes rename them):
	// the tests read the ground truth through hard links made before it
	// starts, where the manifest's paths stay valid.
	corpus = filepath.Join(dir, "corpus")
	if err := linkTree(served, corpus); err != nil {
		t.Fatalf("linking the corpus: %v", err)
	}
	return served, corpus
}

// launchServer starts the server over the Maildir root served (corpus is
// its pristine copy), with data and users file under base.
func launchServer(t *testing.T, base, served, corpus string, opts serverOptions) *testServer {
	t.Helper()
	users := opts.Users
	if users == nil {
		users = testUsers
	}
	usersFile := filepath.Join(base, "users")
	pw := make(map[string]string, len(users))
	for _, u := range users {
		pw[u] = randomPassword(t)
		role := auth.RoleUser
		if slices.Contains(opts.Admins, u) {
			role = auth.RoleAdmin
		}
		if err := auth.AddUser(usersFile, u, pw[u], role); err != nil {
			t.Fatalf("adding user %s: %v", u, err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Listen = ln.Addr().String()
	cfg.Data = filepath.Join(base, "data")
	cfg.MaildirRoot = served
	cfg.Users = usersFile
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	trap := &serverErrors{w: zerolog.NewTestWriter(t)}
	log := zerolog.New(trap).With().Timestamp().Logger()
	srv, err := server.New(cfg, log)
	if err != nil {
		ln.Close()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		// Ten seconds: every handler of these tests ends in far less;
		// a shutdown that takes longer is a bug worth failing on.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		// A recovered panic answered some client with a 500: always a
		// bug, even when the client under test did not notice.
		if n := srv.Panics(); n != 0 {
			t.Errorf("the server recovered %d handler panics (see the log above)", n)
		}
		// The clients here are well-behaved, and litmus's odd requests
		// are client mistakes: none of them deserves a 5xx.
		if n, lines := trap.list(); n > 0 {
			t.Errorf("the server answered %d requests with a 5xx:\n%s", n, strings.Join(lines, "\n"))
		}
	})
	ts := &testServer{URL: "http://" + ln.Addr().String(), Corpus: corpus, Passwords: pw}
	// The listener is bound before Serve runs, so connections queue
	// rather than fail; still, wait until the server answers before
	// handing it to an external client whose retries we do not control.
	waitReady(t, ts)
	return ts
}

// waitReady polls /readyz until the server answers 200, with a deadline
// (no sleeps for readiness).
func waitReady(t *testing.T, ts *testServer) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	// 30 s: New opens the store synchronously; this covers an index
	// that finishes warming in the background on a slow CI runner.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(ts.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s not ready after 30s: %v", ts.URL, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not a readiness sleep
	}
}

// serverErrors passes the server's log to the test and keeps the access
// log lines of 5xx answers (but /readyz's 503, which waitReady polls).
type serverErrors struct {
	w     io.Writer
	mu    sync.Mutex
	n     int      // 5xx answers seen
	lines []string // the first maxTrapped of them
}

// maxTrapped caps the 5xx lines kept; the count is what matters.
const maxTrapped = 50

func (s *serverErrors) Write(p []byte) (int, error) {
	var ev struct {
		Status int    `json:"status"`
		Path   string `json:"path"`
	}
	if json.Unmarshal(p, &ev) == nil && ev.Status >= 500 && ev.Path != "/readyz" {
		s.mu.Lock()
		s.n++
		if len(s.lines) < maxTrapped {
			s.lines = append(s.lines, strings.TrimSpace(clip(p, 1000)))
		}
		s.mu.Unlock()
	}
	return s.w.Write(p)
}

func (s *serverErrors) list() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, slices.Clone(s.lines)
}

// linkTree recreates the directory tree src at dst with hard links to its
// files.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		return os.Link(p, to)
	})
}

func randomPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12) // 96 bits, printed as 24 hex digits
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// manifestEntry is one line of mkcorpus's manifest.jsonl: the ground
// truth for one message.
type manifestEntry struct {
	User      string `json:"user"`
	Folder    string `json:"folder"` // IMAP name, "/"-separated: "INBOX", "Archive/2024"
	File      string `json:"file"`   // relative to the corpus directory
	Kind      string `json:"kind"`
	Size      int64  `json:"size"`
	MessageID string `json:"message_id"`
	Subject   string `json:"subject"`
	Flags     string `json:"flags"`
	Malformed string `json:"malformed"`
}

// seen reports whether the message has the Maildir S (seen) flag.
func (e manifestEntry) seen() bool { return strings.Contains(e.Flags, "S") }

// readManifest reads the corpus manifest.
func readManifest(t *testing.T, corpus string) []manifestEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifestEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // a manifest line is < 2 KiB
	for sc.Scan() {
		var e manifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest line %d: %v", len(out)+1, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("empty manifest")
	}
	return out
}

// entriesIn returns the manifest entries of one user's folder.
func entriesIn(m []manifestEntry, user, folder string) []manifestEntry {
	var out []manifestEntry
	for _, e := range m {
		if e.User == user && e.Folder == folder {
			out = append(out, e)
		}
	}
	return out
}
