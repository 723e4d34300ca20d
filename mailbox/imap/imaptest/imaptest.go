// Package imaptest starts a throwaway Dovecot (Debian package
// dovecot-imapd) on 127.0.0.1 for tests and benchmarks of the IMAP
// backend, with the approach of bench/compare/dovecot.go: a generated
// configuration (dovecot.conf.tmpl, embedded), nothing read from
// /etc/dovecot. Any user name logs in with Dovecot.Password and starts
// with an empty mailbox, so each test can use fresh names.
package imaptest

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed dovecot.conf.tmpl
var confTemplate string

// testPassword is every user's password.
const testPassword = "test-secret"

// Required reports whether a missing Dovecot must fail tests instead of
// skipping them (CI=true).
func Required() bool { return os.Getenv("CI") == "true" }

// greets reports whether addr sends an IMAP greeting.
func greets(ctx context.Context, addr string) bool {
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// MailRoot is the directory holding each user's Maildir
// (<MailRoot>/<user>/Maildir), for tests that place a corpus there.
func (d *Dovecot) MailRoot() string { return d.mailRoot }

// MailUID returns the uid and gid Dovecot accesses mail as (files put
// under MailRoot must belong to them when running as root).
func (d *Dovecot) MailUID() (int, int) { return d.uid, d.gid }

// Dovecot is a running throwaway server.
type Dovecot struct {
	// Addr is the IMAP listener, 127.0.0.1:port.
	Addr string
	// Password is every user's password (static passdb): any user name
	// logs in, and gets an empty mailbox on first login.
	Password string
	dir      string
	mailRoot string
	uid, gid int
	cmd      *exec.Cmd
	exited   chan struct{}
}

type dovecotConf struct {
	Dir, MailRoot                      string
	Port, UID, GID                     int
	InternalUser, InternalGroup, Login string
	LoginUser                          string
	Root                               bool
	Password                           string
}

// startupWait bounds Dovecot's start: it listens within ~100 ms.
const startupWait = 10 * time.Second

// Start renders the configuration into a new temporary directory and
// starts "dovecot -F" on a free loopback port, waiting (at most
// startupWait) for its greeting. It fails when dovecot is not installed
// or is not 2.3 (2.4 renamed most settings).
func Start() (*Dovecot, error) {
	if _, err := exec.LookPath("dovecot"); err != nil {
		return nil, fmt.Errorf("dovecot not on PATH")
	}
	out, err := exec.Command("dovecot", "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("dovecot --version: %w", err)
	}
	if !strings.HasPrefix(string(out), "2.3.") {
		return nil, fmt.Errorf("dovecot %s: testdata/dovecot.conf.tmpl is written for 2.3", strings.TrimSpace(string(out)))
	}
	dir, err := os.MkdirTemp("", "davmail-imap-test-")
	if err != nil {
		return nil, err
	}
	// The mail user (nobody when root) must traverse the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	c := dovecotConf{Dir: dir, MailRoot: filepath.Join(dir, "mail"), Root: os.Geteuid() == 0, Password: testPassword}
	mailUser := "nobody"
	if c.Root {
		c.InternalUser, c.InternalGroup, c.LoginUser = "dovecot", "dovecot", "dovenull"
	} else {
		me, err := user.Current()
		if err != nil {
			return nil, err
		}
		g, err := user.LookupGroupId(me.Gid)
		if err != nil {
			return nil, err
		}
		mailUser = me.Username
		c.InternalUser, c.InternalGroup, c.LoginUser = me.Username, g.Name, me.Username
	}
	u, err := user.Lookup(mailUser)
	if err != nil {
		return nil, err
	}
	c.UID, _ = strconv.Atoi(u.Uid)
	c.GID, _ = strconv.Atoi(u.Gid)
	if err := os.MkdirAll(c.MailRoot, 0o755); err != nil {
		return nil, err
	}
	if c.Root {
		if err := os.Chown(c.MailRoot, c.UID, c.GID); err != nil {
			return nil, err
		}
	}
	tmpl, err := template.New("dovecot.conf").Parse(confTemplate)
	if err != nil {
		return nil, err
	}
	const attempts = 3 // the free port may be taken before Dovecot binds it
	var lastErr error
	for i := 0; i < attempts; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		c.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		confPath := filepath.Join(dir, "dovecot.conf")
		f, err := os.Create(confPath)
		if err != nil {
			return nil, err
		}
		if err := tmpl.Execute(f, c); err != nil {
			f.Close()
			return nil, err
		}
		f.Close()
		cmd := exec.Command("dovecot", "-F", "-c", confPath)
		logf, err := os.Create(filepath.Join(dir, "stdout.log"))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		logf.Close()
		d := &Dovecot{uid: c.UID, gid: c.GID, Password: testPassword, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), dir: dir, mailRoot: c.MailRoot, cmd: cmd, exited: make(chan struct{})}
		go func() { cmd.Wait(); close(d.exited) }()
		if err := d.waitReady(); err != nil {
			d.kill()
			lg, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			so, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			lastErr = fmt.Errorf("dovecot did not start: %v\n%s%s", err, lg, so)
			continue
		}
		return d, nil
	}
	return nil, lastErr
}

// waitReady polls the port until Dovecot greets, bounded in time.
func (d *Dovecot) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startupWait)
	defer cancel()
	for i := 0; i < 200; i++ { // 200 × 50 ms = the 10 s above
		select {
		case <-d.exited:
			return fmt.Errorf("dovecot exited")
		default:
		}
		if greets(ctx, d.Addr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no greeting on %s", d.Addr)
}

// kill stops the process group started above (dovecot -F and its
// children), waiting for it.
func (d *Dovecot) kill() {
	if d == nil || d.cmd.Process == nil {
		return
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// Stop stops Dovecot and removes its directory.
func (d *Dovecot) Stop() {
	if d == nil {
		return
	}
	d.kill()
	os.RemoveAll(d.dir)
}
