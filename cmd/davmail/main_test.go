package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
)

// cli runs the command in-process. "user add" gets the minimum bcrypt
// cost, so the tests do not spend seconds hashing under -race.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if len(args) >= 2 && args[0] == "user" && args[1] == "add" {
		args = append([]string{"user", "add", "--cost", "4"}, args[2:]...)
	}
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, _ := cli(t, "", args...)
		if code != 0 || !strings.Contains(out, "davmail user add") || !strings.Contains(out, "davmail serve") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	code, out, _ := cli(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "davmail ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ = cli(t, "", "help", "user")
	if code != 0 || !strings.Contains(out, "standard input") {
		t.Errorf("help user: %d %q", code, out)
	}
	code, _, errOut := cli(t, "", "frobnicate")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "", "serve", "--help")
	if code != 0 || !strings.Contains(errOut, "--max-message-size") || !strings.Contains(errOut, "DAVMAIL_LISTEN") {
		t.Errorf("serve --help: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "", "serve", "--max-message-size", "lots")
	if code != exitUsage || !strings.Contains(errOut, "max-message-size") {
		t.Errorf("serve with a bad size: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "", "serve", "--no-such-flag")
	if code != exitUsage || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("serve with an unknown flag: %d %q", code, errOut)
	}
}

func TestUserCommands(t *testing.T) {
	users := filepath.Join(t.TempDir(), "sub", "users")

	code, out, errOut := cli(t, "s3cret pw\n", "user", "add", "--users", users, "--role", "admin", "alice")
	if code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("add alice: %d %q %q", code, out, errOut)
	}
	// Flags after the name, CRLF line ending, no final newline.
	if code, _, errOut := cli(t, "bob-pw\r\n", "user", "add", "bob", "--users", users); code != 0 {
		t.Fatalf("add bob: %d %q", code, errOut)
	}
	if code, _, errOut := cli(t, "carol-pw", "user", "add", "--users", users, "carol"); code != 0 {
		t.Fatalf("add carol: %d %q", code, errOut)
	}
	bad := func(wantCode int, wantErr, stdin string, args ...string) {
		t.Helper()
		code, _, errOut := cli(t, stdin, args...)
		if code != wantCode || !strings.Contains(errOut, wantErr) {
			t.Errorf("%v: exit %d %q; want %d containing %q", args, code, errOut, wantCode, wantErr)
		}
	}
	bad(exitError, "already exists", "x\n", "user", "add", "--users", users, "alice")
	bad(exitError, "empty password", "\n", "user", "add", "--users", users, "dave")
	bad(exitError, "empty password", "", "user", "add", "--users", users, "dave")
	bad(exitError, "72 bytes", strings.Repeat("p", 80)+"\n", "user", "add", "--users", users, "dave")
	bad(exitError, "longer than", strings.Repeat("p", 5000), "user", "add", "--users", users, "dave")
	bad(exitUsage, "invalid name", "x\n", "user", "add", "--users", users, ".dave")
	bad(exitUsage, "want one user name", "x\n", "user", "add", "--users", users)
	bad(exitUsage, "want one user name", "x\n", "user", "add", "--users", users, "a", "b")
	bad(exitError, "unknown role", "x\n", "user", "add", "--users", users, "--role", "root", "dave")
	bad(exitError, "no such user", "", "user", "del", "--users", users, "zoe")
	bad(exitUsage, "unknown command", "", "user", "rename")
	bad(exitError, "cost", "x\n", "user", "add", "--users", users, "--cost", "99", "dave")

	code, out, _ = cli(t, "", "user", "list", "--users", users)
	if code != 0 || out != "alice\tadmin\nbob\ncarol\n" {
		t.Errorf("list: %d %q", code, out)
	}

	// --replace changes the password and keeps the role.
	if code, _, errOut := cli(t, "new-pw\n", "user", "add", "--users", users, "--replace", "alice"); code != 0 {
		t.Fatalf("replace: %d %q", code, errOut)
	}
	u, err := auth.LoadUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Verify("alice", "new-pw") || u.Verify("alice", "s3cret pw") {
		t.Error("--replace did not change the password")
	}
	if a, _ := u.Lookup("alice"); !a.Admin() {
		t.Error("--replace dropped the admin role")
	}
	if !u.Verify("bob", "bob-pw") || !u.Verify("carol", "carol-pw") {
		t.Error("bob's or carol's password was read wrongly (line endings)")
	}

	if code, _, errOut := cli(t, "", "user", "del", "--users", users, "bob"); code != 0 {
		t.Fatalf("del: %d %q", code, errOut)
	}
	if _, out, _ := cli(t, "", "user", "list", "--users", users); out != "alice\tadmin\ncarol\n" {
		t.Errorf("list after del: %q", out)
	}

	// The default users file follows DAVMAIL_DATA, as serve's does.
	data := t.TempDir()
	t.Setenv("DAVMAIL_DATA", data)
	if code, _, errOut := cli(t, "pw\n", "user", "add", "erin"); code != 0 {
		t.Fatalf("add with DAVMAIL_DATA: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "users")); err != nil {
		t.Errorf("users file not in DAVMAIL_DATA: %v", err)
	}
}

// proc is the real davmail binary running.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor polls the output until cond holds, with a deadline.
func (p *proc) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := p.output()
		if cond(out) {
			return out
		}
		select {
		case err := <-p.done:
			t.Fatalf("davmail exited (%v) before %s:\n%s", err, what, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60s:\n%s", what, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addr returns the "addr" field of the "listening" log line.
func listenAddr(out string) string {
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "listening" {
			a, _ := m["addr"].(string)
			return a
		}
	}
	return ""
}

func buildBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "davmail")
	cmd := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	// The test's own DAVMAIL_* environment must not leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DAVMAIL_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &syncWriter{p: p}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		br := bufio.NewReader(stdout)
		io.Copy(&syncWriter{p: p}, br)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

type syncWriter struct{ p *proc }

func (w *syncWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit 60s after SIGTERM:\n%s", p.output())
	}
	if !strings.Contains(p.output(), `"message":"stopped"`) {
		t.Errorf("no 'stopped' log line:\n%s", p.output())
	}
}

// TestBinary builds davmail and runs it as a person would on first run:
// the demo account is created and printed, the server answers, SIGTERM
// stops it cleanly, and a second start prints no new account.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	// No arguments at all: the first-run path. The port comes from the
	// environment so that the command line stays empty.
	env := []string{"DAVMAIL_DATA=" + data, "DAVMAIL_LOG_FORMAT=json", "DAVMAIL_LISTEN=127.0.0.1:0"}

	p := start(t, bin, env)
	out := p.waitFor(t, "the demo banner", func(s string) bool { return strings.Contains(s, "password: ") && listenAddr(s) != "" })
	addr := listenAddr(out)
	var password string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "password:" {
			password = f[1]
		}
	}
	if len(password) != 16 {
		t.Fatalf("no 16-character password in the banner:\n%s", out)
	}
	if !strings.Contains(out, "http://"+addr+"/exchange/demo/") {
		t.Errorf("banner lacks the URL http://%s/exchange/demo/:\n%s", addr, out)
	}

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}

	// The demo mailbox is served, legacy message included, to the
	// printed password only.
	propfind := func(user, pw string) (*http.Response, string) {
		req, _ := http.NewRequest("PROPFIND", "http://"+addr+"/exchange/demo/Inbox/", nil)
		req.Header.Set("Depth", "1")
		req.SetBasicAuth(user, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, _ := propfind("demo", "wrong"); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	resp, listing := propfind("demo", password)
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND Inbox: %d", resp.StatusCode)
	}
	for _, want := range []string{"Welcome to davmail", "Legacy scan archive (oversized)"} {
		if !strings.Contains(listing, want) {
			t.Errorf("Inbox listing lacks %q", want)
		}
	}
	p.stop(t)

	// Second start: same data, nothing new printed.
	p2 := start(t, bin, env)
	out2 := p2.waitFor(t, "the listening line", func(s string) bool { return listenAddr(s) != "" })
	if strings.Contains(out2, "password") {
		t.Errorf("second start printed a password:\n%s", out2)
	}
	p2.stop(t)
	u, err := auth.LoadUsers(filepath.Join(data, "users"))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Verify("demo", password) {
		t.Error("second start changed the demo password")
	}
}
