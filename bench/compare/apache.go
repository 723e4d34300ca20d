package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"text/template"

	"github.com/rs/zerolog"
)

// apacheModDir is where Debian's apache2 package puts its modules.
const apacheModDir = "/usr/lib/apache2/modules"

// apache is a running httpd serving the corpus over mod_dav_fs.
type apache struct {
	proc *proc
	base string // http://127.0.0.1:port
	dir  string
}

type apacheConf struct {
	Dir, LockDir, ModDir string
	Port                 int
	User, Group          string
	BulkDir, InboxDir    string
}

// startApache renders conf/httpd.conf.tmpl into dir and starts
// "apache2 -f … -DFOREGROUND". As root, workers run as runUser.
func startApache(ctx context.Context, log zerolog.Logger, confDir, dir, runUser, bulkDir, inboxDir string) (*apache, error) {
	c := apacheConf{Dir: dir, LockDir: filepath.Join(dir, "lock"), ModDir: apacheModDir,
		BulkDir: bulkDir, InboxDir: inboxDir}
	for _, d := range []string{c.LockDir, filepath.Join(dir, "htdocs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(runUser)
		if err != nil {
			return nil, fmt.Errorf("apache user: %w", err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return nil, err
		}
		c.User, c.Group = u.Username, g.Name
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.LockDir, uid, gid); err != nil {
			return nil, err
		}
	}
	// The port is picked then handed over; retry if another process took it
	// in between (bounded).
	const attempts = 3
	var lastErr error
	var err error
	for i := 0; i < attempts; i++ {
		if c.Port, err = freePort(); err != nil {
			return nil, err
		}
		confPath := filepath.Join(dir, "httpd.conf")
		if err := renderTemplate(filepath.Join(confDir, "httpd.conf.tmpl"), confPath, c); err != nil {
			return nil, err
		}
		cmd := exec.Command("apache2", "-f", confPath, "-DFOREGROUND")
		out, err := os.Create(filepath.Join(dir, "stdout.log"))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = out, out
		p, err := startProc(log, "apache2", cmd)
		out.Close()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", c.Port)
		if err := waitTCP(ctx, addr, p.exited); err != nil {
			p.stop()
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			outLog, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			lastErr = fmt.Errorf("apache2: %w\n%s%s", err, tail(errLog), tail(outLog))
			continue
		}
		log.Info().Str("addr", addr).Msg("apache2 ready")
		return &apache{proc: p, base: "http://" + addr, dir: dir}, nil
	}
	return nil, lastErr
}

func (a *apache) stop() {
	if a != nil {
		a.proc.stop()
	}
}

// renderTemplate executes the text/template file src with data into dst.
func renderTemplate(src, dst string, data any) error {
	tmpl, err := template.ParseFiles(src)
	if err != nil {
		return err
	}
	tmpl.Option("missingkey=error")
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = tmpl.Execute(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// tail returns the last few KiB of a log for an error message.
func tail(b []byte) string {
	const max = 4 << 10 // enough to show the failing lines
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
