//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
)

// davmailBinary builds cmd/davmail into dir and returns its path.
func davmailBinary(t *testing.T, dir string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "davmail")
	// Three minutes: a cold build of the module on a loaded CI runner.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", exe, "./cmd/davmail")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building davmail: %v\n%s", err, out)
	}
	return exe
}

// proc is one run of the real binary.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startBinary runs `davmail serve` on 127.0.0.1:0 over data and waits for
// its "listening" event and readiness.
func startBinary(t *testing.T, exe, data, maildir, users string) *proc {
	t.Helper()
	// Info level: the "listening" event carries the address; the reader
	// below passes only errors and 5xx answers on to the test log.
	cmd := exec.Command(exe, "serve", "--listen", "127.0.0.1:0", "--data", data,
		"--maildir-root", maildir, "--users", users, "--log-format", "json", "--log-level", "info")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20) // a log line is < 4 KiB
		for sc.Scan() {
			var ev struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
				Level   string `json:"level"`
				Status  int    `json:"status"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				if ev.Message == "listening" && ev.Addr != "" {
					select {
					case addr <- ev.Addr:
					default:
					}
				}
				if ev.Level == "error" || ev.Status >= 500 {
					t.Logf("server: %s", sc.Bytes())
				}
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatal("davmail exited before listening")
	case <-time.After(30 * time.Second): // opening the index of a big mailbox
		p.kill()
		t.Fatal("davmail did not listen within 30s")
	}
	waitReady(t, &testServer{URL: p.url})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// crashModel is what the client was told: each acknowledged message's
// location, and the one operation in flight when the server died.
type crashModel struct {
	mu      sync.Mutex
	at      map[string]string // resource key → URL path acknowledged
	pending map[string]string // resource key → the other possible path (in-flight op)
	content map[string]string // resource key → the X-Crash-Id of its content
	sent    map[string][sha256.Size]byte
	acked   int
}

// newBody makes the content of message id and remembers its digest.
func (m *crashModel) newBody(id string, size int) []byte {
	b := body(id, size)
	m.mu.Lock()
	m.sent[id] = sha256.Sum256(b)
	m.mu.Unlock()
	return b
}

// body is the content of message id, size bytes (at least its header).
func body(id string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: crash@example.org\r\nSubject: crash %s\r\nX-Crash-Id: %s\r\n\r\n", id, id)
	line := []byte(strings.Repeat(id+" ", 10) + "\r\n")
	for b.Len() < size {
		b.Write(line)
	}
	return b.Bytes()
}

// idOf reads X-Crash-Id from message bytes.
func idOf(msg []byte) string {
	i := bytes.Index(msg, []byte("X-Crash-Id: "))
	if i < 0 {
		return ""
	}
	rest := msg[i+len("X-Crash-Id: "):]
	if j := bytes.IndexByte(rest, '\r'); j >= 0 {
		return string(rest[:j])
	}
	return ""
}

// TestCrashSafety runs the real binary, kills it with SIGKILL in the
// middle of a large PUT, of MOVEs, of COPYs and of folder renames (every
// one of them updates the index), restarts it and checks that every
// acknowledged message is there, complete, and that nothing half-written
// is visible: every listed message GETs whole and equals what was sent.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary: not in -short")
	}
	tmp := t.TempDir()
	exe := davmailBinary(t, tmp)
	data, maildir, users := filepath.Join(tmp, "data"), filepath.Join(tmp, "maildir"), filepath.Join(tmp, "users")
	pass := randomPassword(t)
	if err := auth.AddUser(users, "alice", pass, auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	m := &crashModel{at: map[string]string{}, pending: map[string]string{}, content: map[string]string{}, sent: map[string][sha256.Size]byte{}}
	hc := &http.Client{Timeout: 30 * time.Second}
	var base string
	do := func(method, p string, body io.Reader, hdr ...string) (int, error) {
		req, err := http.NewRequest(method, base+p, body)
		if err != nil {
			return 0, err
		}
		req.SetBasicAuth("alice", pass)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	const root = "/exchange/alice/"
	next := 0
	newID := func() string { next++; return fmt.Sprintf("m%04d", next) }
	// put stores a message and records it when acknowledged.
	put := func(folder string, size int) error {
		id := newID()
		p := root + folder + id + ".EML"
		msg := m.newBody(id, size)
		m.mu.Lock()
		m.pending[id], m.content[id] = p, id
		m.mu.Unlock()
		code, err := do(http.MethodPut, p, bytes.NewReader(msg), "Content-Type", "message/rfc822")
		m.mu.Lock()
		defer m.mu.Unlock()
		if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
			delete(m.pending, id)
			m.at[id], m.acked = p, m.acked+1
			return nil
		}
		return fmt.Errorf("PUT %s: %d %v", p, code, err)
	}
	// move moves (or with copy, copies under a new id's name) one message.
	move := func(id, to string) error {
		m.mu.Lock()
		from := m.at[id]
		dst := root + to + id + ".EML"
		m.pending[id] = dst
		m.mu.Unlock()
		code, err := do("MOVE", from, nil, "Destination", base+dst, "Overwrite", "F")
		m.mu.Lock()
		defer m.mu.Unlock()
		if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
			delete(m.pending, id)
			m.at[id], m.acked = dst, m.acked+1
			return nil
		}
		return fmt.Errorf("MOVE %s: %d %v", from, code, err)
	}
	copyMsg := func(id, to string) error {
		m.mu.Lock()
		from := m.at[id]
		m.mu.Unlock()
		cid := newID() + "-copy-of-" + id
		dst := root + to + cid + ".EML"
		m.mu.Lock()
		m.pending[cid], m.content[cid] = dst, m.content[id]
		m.mu.Unlock()
		code, err := do("COPY", from, nil, "Destination", base+dst, "Overwrite", "F")
		m.mu.Lock()
		defer m.mu.Unlock()
		if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
			delete(m.pending, cid)
			m.at[cid], m.acked = dst, m.acked+1
			return nil
		}
		return fmt.Errorf("COPY %s: %d %v", from, code, err)
	}
	// renameFolder moves a collection; every message in it moves along.
	renameFolder := func(from, to string) error {
		m.mu.Lock()
		moved := map[string]string{}
		for id, p := range m.at {
			if strings.HasPrefix(p, root+from) {
				moved[id] = root + to + strings.TrimPrefix(p, root+from)
				m.pending[id] = moved[id]
			}
		}
		m.mu.Unlock()
		code, err := do("MOVE", root+from, nil, "Destination", base+root+to, "Overwrite", "F")
		m.mu.Lock()
		defer m.mu.Unlock()
		if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
			for id, p := range moved {
				delete(m.pending, id)
				m.at[id] = p
			}
			m.acked++
			return nil
		}
		return fmt.Errorf("MOVE %s: %d %v", from, code, err)
	}

	// Each round: start, prepare, run one kind of operation in a loop
	// while a timer kills the server, restart (in the next round or the
	// final check), verify.
	type round struct {
		name string
		run  func(stop <-chan struct{}) (int, error)
		kill time.Duration // when to kill after the loop starts
	}
	idsIn := func(folder string) []string {
		m.mu.Lock()
		defer m.mu.Unlock()
		var out []string
		for id, p := range m.at {
			if path.Dir(p) == root+strings.TrimSuffix(folder, "/") && m.pending[id] == "" {
				out = append(out, id)
			}
		}
		return out
	}
	stopped := func(stop <-chan struct{}) bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	rounds := []round{
		{"PUT of a 24 MiB message", func(stop <-chan struct{}) (int, error) {
			// A slow upload: the kill lands while its body is streaming.
			id := newID()
			p := root + "Inbox/" + id + ".EML"
			msg := m.newBody(id, 24<<20)
			m.mu.Lock()
			m.pending[id], m.content[id] = p, id
			m.mu.Unlock()
			pr, pw := io.Pipe()
			go func() {
				for off := 0; off < len(msg); off += 256 << 10 {
					if stopped(stop) {
						break
					}
					if _, err := pw.Write(msg[off:min(off+256<<10, len(msg))]); err != nil {
						break
					}
					time.Sleep(20 * time.Millisecond) // ~12 MiB/s: two seconds for the whole body
				}
				pw.Close()
			}()
			code, err := do(http.MethodPut, p, pr, "Content-Type", "message/rfc822")
			if err == nil && code == http.StatusCreated {
				m.mu.Lock()
				delete(m.pending, id)
				m.at[id], m.acked = p, m.acked+1
				m.mu.Unlock()
				return 1, nil // finished before the kill: still checked after restart
			}
			return 0, nil
		}, 700 * time.Millisecond},
		{"MOVE", func(stop <-chan struct{}) (int, error) {
			n := 0
			for i := 0; i < 2000 && !stopped(stop); i++ {
				from, to := "Inbox/", "A/"
				if i%2 == 1 {
					from, to = to, from
				}
				ids := idsIn(from)
				if len(ids) == 0 {
					continue
				}
				if err := move(ids[0], to); err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}, 500 * time.Millisecond},
		{"COPY", func(stop <-chan struct{}) (int, error) {
			n := 0
			for i := 0; i < 2000 && !stopped(stop); i++ {
				ids := idsIn("A/")
				if len(ids) == 0 {
					ids = idsIn("Inbox/")
				}
				if len(ids) == 0 {
					return n, fmt.Errorf("no message to copy")
				}
				if err := copyMsg(ids[i%len(ids)], "B/"); err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}, 500 * time.Millisecond},
		{"folder rename", func(stop <-chan struct{}) (int, error) {
			n := 0
			for i := 0; i < 2000 && !stopped(stop); i++ {
				from, to := "B/", "C/"
				if i%2 == 1 {
					from, to = to, from
				}
				if err := renameFolder(from, to); err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}, 500 * time.Millisecond},
	}

	for i, rd := range rounds {
		p := startBinary(t, exe, data, maildir, users)
		base = p.url
		if i == 0 {
			for _, f := range []string{"A/", "B/"} {
				if code, err := do("MKCOL", root+f, nil); err != nil || code != http.StatusCreated {
					p.kill()
					t.Fatalf("MKCOL %s: %d %v", f, code, err)
				}
			}
			for j := range 30 {
				if err := put("Inbox/", 2000+j*97); err != nil {
					p.kill()
					t.Fatal(err)
				}
			}
		}
		// The kill runs once, from the timer or after the round,
		// whichever comes first, on this round's process (p is
		// reassigned below while a late timer may still run).
		stop := make(chan struct{})
		var once sync.Once
		cur := p
		kill := func() { once.Do(func() { close(stop); cur.kill() }) }
		timer := time.AfterFunc(rd.kill, kill)
		start := time.Now()
		n, err := rd.run(stop)
		timer.Stop()
		kill()
		if err != nil && time.Since(start) < rd.kill {
			// An operation failed before the kill: a real error.
			t.Fatalf("%s: %v", rd.name, err)
		}
		m.mu.Lock()
		t.Logf("round %q: %d operations acknowledged, %d in flight at the kill after %v", rd.name, n, len(m.pending), time.Since(start).Round(time.Millisecond))
		m.mu.Unlock()
		// Restart and check before the next round builds on the state.
		p = startBinary(t, exe, data, maildir, users)
		base = p.url
		verifyCrash(t, m, base, pass)
		p.kill()
		if t.Failed() {
			return
		}
	}
}

// verifyCrash lists every folder of alice, GETs every message and checks
// it against the model; it then settles the operations that were in
// flight (the state found becomes the model).
func verifyCrash(t *testing.T, m *crashModel, base, pass string) {
	t.Helper()
	u, _ := url.Parse(base)
	c := &davClient{base: u, user: "alice", pass: pass, hc: &http.Client{Timeout: time.Minute}}
	st, folders := c.propfind(t, "/exchange/alice/", "1")
	if st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND root after restart: %d", st)
	}
	listed := map[string]string{} // URL path → X-Crash-Id of its content
	for _, f := range folders {
		if !f.isCollection() || f.Path == "/exchange/alice/" {
			continue
		}
		st, items := c.propfind(t, f.Href, "1")
		if st != http.StatusMultiStatus {
			t.Errorf("PROPFIND %s: %d", f.Path, st)
			continue
		}
		for _, it := range items {
			if it.isCollection() {
				continue
			}
			code, msg := c.getBytes(t, it.Href)
			if code != http.StatusOK {
				t.Errorf("listed %s but GET answers %d", it.Path, code)
				continue
			}
			id := idOf(msg)
			m.mu.Lock()
			want, ok := m.sent[id]
			m.mu.Unlock()
			if !ok || sha256.Sum256(msg) != want {
				t.Errorf("%s: half-written or altered message (%d bytes, X-Crash-Id %q)", it.Path, len(msg), id)
				continue
			}
			listed[it.Path] = id
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	allowed := map[string]bool{}
	lost := 0
	for key, p := range m.at {
		allowed[p] = true
		alt := m.pending[key]
		switch {
		case listed[p] == m.content[key] && listed[alt] == m.content[key] && alt != "":
			t.Errorf("%s is both at %s and at %s: the operation in flight was half done", key, p, alt)
		case listed[p] == m.content[key], alt != "" && listed[alt] == m.content[key]:
		default:
			lost++
			t.Errorf("acknowledged %s at %s is missing after restart", key, p)
		}
	}
	// The write in flight at the kill may have landed, complete, in its
	// destination folder. Its name may differ: the name is kept in the
	// index, and a crash between the file's rename into cur/ and the
	// index commit leaves a file that the rescan names from its subject.
	inFlight := map[string]string{} // folder + content id → resource key
	for key, p := range m.pending {
		allowed[p] = true
		inFlight[path.Dir(p)+"\x00"+m.content[key]] = key
	}
	for p, id := range listed {
		if allowed[p] {
			continue
		}
		if key, ok := inFlight[path.Dir(p)+"\x00"+id]; ok {
			t.Logf("the write in flight (%s) landed whole at %s, under a name from its subject instead of %s", key, p, m.pending[key])
			m.pending[key] = p
			continue
		}
		t.Errorf("%s is listed but no acknowledged or attempted write put it there (duplicated?)", p)
	}
	// Settle: what the restart shows is the truth from now on.
	for key, alt := range m.pending {
		if _, ok := listed[alt]; ok {
			m.at[key] = alt
		}
		delete(m.pending, key)
	}
	t.Logf("after restart: %d messages listed, each complete and as sent; %d acknowledged writes so far, %d lost", len(listed), m.acked, lost)
}
