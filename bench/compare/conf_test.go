package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfTemplates renders both config templates and, when the servers
// are installed, has them check the result (apache2 -t, doveconf -n), so a
// template typo fails here rather than half-way through a benchmark.
func TestConfTemplates(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "htdocs"), 0o755); err != nil {
		t.Fatal(err)
	}
	ap := apacheConf{Dir: dir, LockDir: dir, ModDir: apacheModDir, Port: 18080,
		BulkDir: dir, InboxDir: dir}
	apPath := filepath.Join(dir, "httpd.conf")
	if err := renderTemplate("../conf/httpd.conf.tmpl", apPath, ap); err != nil {
		t.Fatal(err)
	}
	dv := dovecotConf{Dir: dir, MailRoot: dir, IndexDir: dir, ControlDir: dir, HomeDir: dir,
		Port: 10143, UID: os.Getuid(), GID: os.Getgid(),
		InternalUser: "dovecot", InternalGroup: "dovecot", LoginUser: "dovenull", Root: true}
	dvPath := filepath.Join(dir, "dovecot.conf")
	if err := renderTemplate("../conf/dovecot.conf.tmpl", dvPath, dv); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{apPath, dvPath} {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "<no value>") {
			t.Errorf("%s: unfilled template field", p)
		}
		if !strings.Contains(string(b), "127.0.0.1") {
			t.Errorf("%s: not bound to loopback", p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := exec.LookPath("apache2"); err == nil {
		if _, err := os.Stat(filepath.Join(apacheModDir, "mod_dav_fs.so")); err == nil {
			out, err := exec.CommandContext(ctx, "apache2", "-t", "-f", apPath).CombinedOutput()
			if err != nil {
				t.Errorf("apache2 -t: %v\n%s", err, out)
			}
		}
	} else {
		t.Log("apache2 not installed: template rendered but not checked")
	}
	if _, err := exec.LookPath("doveconf"); err == nil {
		if v, err := dovecotVersion(ctx); err == nil && checkDovecotVersion(v) == nil {
			out, err := exec.CommandContext(ctx, "doveconf", "-n", "-c", dvPath).CombinedOutput()
			if err != nil {
				t.Errorf("doveconf -n: %v\n%s", err, out)
			}
		}
	} else {
		t.Log("dovecot not installed: template rendered but not checked")
	}
}
