package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// dovecot is a running Dovecot serving IMAP on loopback.
type dovecot struct {
	proc *proc
	addr string
	dir  string
}

type dovecotConf struct {
	Dir, MailRoot, IndexDir, ControlDir, HomeDir string
	Port                                         int
	UID, GID                                     int
	InternalUser, InternalGroup, LoginUser       string
	Root                                         bool
}

// dovecotVersion returns "2.3.19.1" from "2.3.19.1 (9b53102964)".
func dovecotVersion(ctx context.Context) (string, error) {
	out, err := commandOutput(ctx, "dovecot", "--version")
	if err != nil {
		return "", fmt.Errorf("dovecot --version: %w: %s", err, out)
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", fmt.Errorf("dovecot --version: empty output")
	}
	return f[0], nil
}

// checkDovecotVersion refuses versions the template was not written for:
// Dovecot 2.4 renamed most settings (mail_location became mail_driver and
// mail_path, disable_plaintext_auth became auth_allow_cleartext, passdb
// args became named settings).
func checkDovecotVersion(v string) error {
	if !strings.HasPrefix(v, "2.3.") {
		return fmt.Errorf("dovecot %s: bench/conf/dovecot.conf.tmpl is written for Dovecot 2.3 "+
			"(Debian 12); 2.4 needs a new template", v)
	}
	return nil
}

// startDovecot renders conf/dovecot.conf.tmpl into dir with fresh, empty
// index and control directories and starts "dovecot -F". The mail user
// runs as runUser when started as root, else as the invoking user.
func startDovecot(ctx context.Context, log zerolog.Logger, confDir, dir, mailRoot, runUser, mailUser, pass string) (*dovecot, error) {
	c := dovecotConf{
		Dir: dir, MailRoot: mailRoot,
		IndexDir:   filepath.Join(dir, "index"),
		ControlDir: filepath.Join(dir, "control"),
		HomeDir:    filepath.Join(dir, "home"),
		Root:       os.Geteuid() == 0,
	}
	owner := runUser
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
		owner = me.Username
		c.InternalUser, c.InternalGroup, c.LoginUser = me.Username, g.Name, me.Username
	}
	u, err := user.Lookup(owner)
	if err != nil {
		return nil, fmt.Errorf("dovecot mail user: %w", err)
	}
	c.UID, _ = strconv.Atoi(u.Uid)
	c.GID, _ = strconv.Atoi(u.Gid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{c.IndexDir, c.ControlDir, c.HomeDir,
		filepath.Join(c.HomeDir, mailUser)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if c.Root {
			if err := os.Chown(d, c.UID, c.GID); err != nil {
				return nil, err
			}
		}
	}
	// passwd-file: user:{PLAIN}password (Dovecot password schemes). The
	// auth process reads it as default_internal_user: owned by that user,
	// mode 0600.
	pw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pw, []byte(mailUser+":{PLAIN}"+pass+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.Root {
		iu, err := user.Lookup(c.InternalUser)
		if err != nil {
			return nil, err
		}
		iuid, _ := strconv.Atoi(iu.Uid)
		igid, _ := strconv.Atoi(iu.Gid)
		if err := os.Chown(pw, iuid, igid); err != nil {
			return nil, err
		}
	}
	const attempts = 3 // free-port race retries
	var lastErr error
	for i := 0; i < attempts; i++ {
		if c.Port, err = freePort(); err != nil {
			return nil, err
		}
		confPath := filepath.Join(dir, "dovecot.conf")
		if err := renderTemplate(filepath.Join(confDir, "dovecot.conf.tmpl"), confPath, c); err != nil {
			return nil, err
		}
		cmd := exec.Command("dovecot", "-F", "-c", confPath)
		out, err := os.Create(filepath.Join(dir, "stdout.log"))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = out, out
		p, err := startProc(log, "dovecot", cmd)
		out.Close()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", c.Port)
		if err := waitTCP(ctx, addr, p.exited); err != nil {
			p.stop()
			l1, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			l2, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			lastErr = fmt.Errorf("dovecot: %w\n%s%s", err, tail(l1), tail(l2))
			continue
		}
		log.Debug().Str("addr", addr).Msg("dovecot ready")
		return &dovecot{proc: p, addr: addr, dir: dir}, nil
	}
	return nil, lastErr
}

func (d *dovecot) stop() {
	if d != nil {
		d.proc.stop()
	}
}

// logTail returns the end of Dovecot's log, for error reports.
func (d *dovecot) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	return tail(b)
}
