//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// postfixServer is a running Postfix (Debian's postfix package) with the
// configuration shipped in deploy/postfix.
type postfixServer struct {
	// Addr is the SMTP listener, "127.0.0.1:port".
	Addr string
	// Domain is mydomain from the shipped main.cf: the domain whose
	// users it delivers, which the gateway's --mail-domain must equal.
	Domain string
	// Log is the file Postfix logs to (maillog_file, standard output).
	Log string
	// ConfigDir holds its main.cf (postfix -c, postconf -c).
	ConfigDir string
}

// postfixUID is the owner of the delivered files: main.cf's
// virtual_uid_maps and virtual_gid_maps (static:5000). The test keeps the
// shipped value and gives the recipients' Maildirs to it.
const postfixUID = 5000

// TestPostfixShippedConfig checks what deploy/postfix promises, with
// Debian's postfix: mail for a listed user of the domain is delivered into
// <root>/<user>/Maildir/new as the virtual uid (user+tag too), an unknown
// user of the domain is refused at RCPT (550), and any other domain is
// refused (554): nothing is relayed outward.
func TestPostfixShippedConfig(t *testing.T) {
	root, err := os.MkdirTemp("", "davmail-e2e-postfix-mail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// bob has no Maildir yet: virtual(8) creates it on first delivery.
	pf := startPostfix(t, root, []string{"bob"})
	conn, err := net.DialTimeout("tcp", pf.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(time.Minute)) // one short SMTP session
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("e2e.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@"+pf.Domain, nil); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	refused := func(rcpt string, code int) {
		t.Helper()
		err := c.Rcpt(rcpt, nil)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("RCPT TO:<%s>: %v, want %d", rcpt, err, code)
		}
	}
	refused("someone@elsewhere.example", 554) // relay access denied
	refused("carol@"+pf.Domain, 550)          // not in vmailbox
	refused("../bob@"+pf.Domain, 550)         // never a path
	for _, rcpt := range []string{"bob@" + pf.Domain, "bob+tag@" + pf.Domain} {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", rcpt, err)
		}
	}
	msg := mailMessage("alice@"+pf.Domain, "bob@"+pf.Domain, "postfix e2e", "delivered by the shipped main.cf")
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()

	// Two recipients, one mailbox: two files in bob's new/. 30 s:
	// delivery takes milliseconds once queued.
	newDir := filepath.Join(root, "bob", "Maildir", "new")
	var files []os.DirEntry
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		files, _ = os.ReadDir(newDir)
		if len(files) >= 2 {
			break
		}
	}
	if len(files) != 2 {
		t.Fatalf("%s holds %d files, want 2 (bob and bob+tag)", newDir, len(files))
	}
	for _, f := range files {
		p := filepath.Join(newDir, f.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(messageID(msg))) || !bytes.Contains(b, []byte("(Postfix)")) {
			t.Errorf("%s is not the message sent, received by Postfix:\n%s", p, clip(b, 2000))
		}
		if uid, _ := fileUID(p); uid != postfixUID {
			t.Errorf("%s belongs to uid %d, want the virtual uid %d", p, uid, postfixUID)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "carol")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused recipient got a directory: %v", err)
	}
}

// startPostfix runs deploy/postfix/main.cf and master.cf with Debian's
// postfix in the foreground, delivering users' mail into
// <mailRoot>/<user>/Maildir. Only what a test machine must change is
// overridden, with postconf -e and -F: the listener (127.0.0.1 and a free port
// instead of *:25), queue_directory, data_directory and
// virtual_mailbox_base; the vmailbox table (site data, not shipped) lists
// users. Postfix is stopped when the test ends.
//
// Postfix must start as root (master binds, then drops to the postfix
// user); without root the test skips, or fails when CI=true.
func startPostfix(t *testing.T, mailRoot string, users []string) *postfixServer {
	t.Helper()
	pf := sbinTool(t, "postfix", "postfix")
	postconf := sbinTool(t, "postconf", "postfix")
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatal("Postfix needs root to start, but CI=true and the tests do not run as root")
		}
		t.Skip("Postfix needs root to start: run the test as root")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parents are 0700, and Postfix's daemons (user
	// postfix) must reach the queue and data directories.
	dir, err := os.MkdirTemp("", "davmail-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	etc := filepath.Join(dir, "etc")
	queue := filepath.Join(dir, "spool") // must exist and belong to root
	for _, d := range []string{dir, etc, queue} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"main.cf", "master.cf"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "postfix", f))
		if err != nil {
			t.Fatalf("the shipped Postfix configuration: %v", err)
		}
		if err := os.WriteFile(filepath.Join(etc, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	pc := func(args ...string) string {
		t.Helper()
		r := runTool(t, toolOpts{Timeout: 30 * time.Second}, postconf, append([]string{"-c", etc}, args...)...)
		if r.Err != nil {
			t.Fatalf("postconf %s: %v\n%s%s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	domain := pc("-h", "mydomain")
	if domain == "" {
		t.Fatal("the shipped main.cf sets no mydomain")
	}
	addr := freeLoopbackAddr(t)
	// data_directory is left to Postfix to create: it must belong to
	// the postfix user.
	pc("-e",
		"queue_directory="+queue,
		"data_directory="+filepath.Join(dir, "data"),
		"virtual_mailbox_base="+mailRoot,
		"inet_interfaces=127.0.0.1",
	)
	// The shipped smtp/inet service keeps every field but its address.
	pc("-F", "-e", "smtp/inet/service="+addr)
	if svc := pc("-M", addr+"/inet"); !strings.Contains(svc, "smtpd") {
		t.Fatalf("master.cf after the override has no smtpd on %s:\n%s", addr, pc("-M"))
	}
	var vm strings.Builder
	for _, u := range users {
		fmt.Fprintf(&vm, "%s@%s %s/Maildir/\n", u, domain, u)
	}
	if err := os.WriteFile(filepath.Join(etc, "vmailbox"), []byte(vm.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// virtual(8) writes as virtual_uid_maps' uid: the root belongs to it
	// (as deploy/mta's Dockerfile sets up /var/mail/vhosts), and so do
	// the users' Maildirs that exist already.
	if err := os.Chmod(mailRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mailRoot, postfixUID, postfixUID); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		err := chownTree(filepath.Join(mailRoot, u), postfixUID, postfixUID)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}

	logPath := filepath.Join(dir, "postfix.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// The foreground run: postfix-script, then master, which makes its
	// own session (so process-group kills do not reach it; Cleanup stops
	// it with postfix stop).
	cmd := exec.Command(pf, "-c", etc, "start-fg")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("postfix start-fg: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	ps := &postfixServer{Addr: addr, Domain: domain, Log: logPath, ConfigDir: etc}
	t.Cleanup(func() {
		stopPostfix(t, pf, etc, queue, cmd, exited)
		if t.Failed() {
			t.Logf("Postfix log (%s):\n%s", logPath, tailFile(logPath, 64<<10))
		}
	})
	// 60 s: master starts in well under a second; a loaded CI runner
	// with a cold page cache may take several.
	if err := waitSMTPGreeting(addr, 60*time.Second, exited); err != nil {
		t.Fatalf("Postfix did not answer on %s: %v\n%s", addr, err, tailFile(logPath, 16<<10))
	}
	return ps
}

// sbinTool is needTool for a daemon's command, which Debian installs in
// /usr/sbin, off the PATH of users other than root.
func sbinTool(t *testing.T, name, debianPkg string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
			return p
		}
	}
	return needTool(t, name, debianPkg)
}

// isExecutable reports whether p is a regular file with an execute bit.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// stopPostfix stops master with postfix stop, then waits for the
// foreground command to end; past the deadline it kills master by the pid
// in its pid file.
func stopPostfix(t *testing.T, pf, etc, queue string, cmd *exec.Cmd, exited <-chan error) {
	t.Helper()
	r := runTool(t, toolOpts{Timeout: 30 * time.Second}, pf, "-c", etc, "stop")
	if r.Err != nil {
		t.Logf("postfix stop: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	// 30 s: master waits for its children, which end at once on SIGTERM.
	select {
	case <-exited:
		return
	case <-time.After(30 * time.Second):
	}
	t.Errorf("Postfix still running 30s after postfix stop: killing it")
	if b, err := os.ReadFile(filepath.Join(queue, "pid", "master.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second): // a killed process is reaped at once
		t.Errorf("postfix start-fg did not exit after SIGKILL")
	}
}

// waitSMTPGreeting dials addr until an SMTP server greets with 220, or
// the deadline passes, or exited reports that the server's process ended.
func waitSMTPGreeting(addr string, within time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the process exited: %v", err)
		default:
		}
		last = smtpGreeting(addr)
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	return fmt.Errorf("no greeting within %v: %w", within, last)
}

// smtpGreeting connects once, reads the greeting and says QUIT.
func smtpGreeting(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a greeting is immediate
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("greeting %q", strings.TrimSpace(line))
	}
	_, err = conn.Write([]byte("QUIT\r\n"))
	return err
}

// freeLoopbackAddr returns "127.0.0.1:port" with a port that was free a
// moment ago, for peers that cannot be handed a listener or asked for
// port 0 and report it back.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// chownTree gives the directory tree at dir to uid:gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// tailFile returns at most the last n bytes of a log file, for a failure
// message.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// fileUID returns the owner of a file.
func fileUID(path string) (int, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return -1, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}
