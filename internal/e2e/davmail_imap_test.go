//go:build unix

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
)

// TestIMAPDavMail is TestDavMail on the IMAP backend (issue 8): the same
// steps (runDavMailSteps), with DavMail 6.0.1 in front of `davmail serve
// --imap-upstream` in front of a throwaway Dovecot (startIMAPRig) serving
// the mkcorpus corpus. The gateway relays to the shipped Postfix, which
// delivers into the Maildirs Dovecot serves, as Dovecot's mail user:
// main.cf's site settings virtual_mailbox_base and virtual_uid_maps /
// virtual_gid_maps set the way deploy/postfix/main.cf says a site with
// Dovecot sets them. Every step applies to both backends; the on-disk
// checks (LIST against the Maildir++ folders, folder operations, the
// delivered file) look at Dovecot's Maildir.
func TestIMAPDavMail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM, Dovecot and Postfix: not in -short")
	}
	runDavMailSteps(t, startIMAPDavMailRig(t))
}

// startIMAPDavMailRig starts Postfix, the IMAP rig (Dovecot over the
// corpus, the gateway with --imap-upstream relaying to Postfix), points
// Postfix's deliveries at Dovecot's Maildirs, and starts DavMail in front
// of the gateway.
//
// Postfix starts first because the gateway's --relay names its address,
// and startIMAPRig starts Dovecot and the gateway together; so Postfix
// starts delivering into an empty placeholder root and is re-pointed at
// Dovecot's mail root (repointPostfix) before anything is sent.
func startIMAPDavMailRig(t *testing.T) *davmailRig {
	t.Helper()
	java := davmailJava(t)
	// Not t.TempDir: startPostfix gives the root to the virtual uid, and
	// its daemons must traverse the parents.
	placeholder, err := os.MkdirTemp("", "davmail-e2e-imap-davmail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(placeholder) })
	pf := startPostfix(t, placeholder, testUsers)
	r := startIMAPRig(t, nil, func(c *config.Config) {
		c.Relay, c.RelayTLS, c.MailDomain = pf.Addr, "none", pf.Domain
	})
	uid, gid := r.dovecot.MailUID()
	repointPostfix(t, pf, r.dovecot.MailRoot(), uid, gid)
	dm := startDavMail(t, java, r.ts.URL+"/exchange/", t.TempDir())
	return &davmailRig{
		ts: r.ts, mailRoot: r.dovecot.MailRoot(), manifest: r.manifest,
		deliveryUID: uid, pf: pf, dm: dm,
	}
}

// repointPostfix changes a running startPostfix's site settings so that
// virtual(8) delivers into <mailRoot>/<user>/Maildir as uid:gid (the
// settings deploy/postfix/main.cf lists for a site: virtual_mailbox_base,
// virtual_uid_maps, virtual_gid_maps), and reloads it, waiting until
// master logs the reload.
func repointPostfix(t *testing.T, pf *postfixServer, mailRoot string, uid, gid int) {
	t.Helper()
	postconf := sbinTool(t, "postconf", "postfix")
	postfix := sbinTool(t, "postfix", "postfix")
	etc := pf.ConfigDir
	pc := func(args ...string) string {
		t.Helper()
		r := runTool(t, toolOpts{Timeout: 30 * time.Second}, postconf, append([]string{"-c", etc}, args...)...)
		if r.Err != nil {
			t.Fatalf("postconf -c %s %s: %v\n%s%s", etc, strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	if d := pc("-h", "mydomain"); d != pf.Domain {
		t.Fatalf("%s is not the running Postfix's configuration (mydomain %q, want %q)", etc, d, pf.Domain)
	}
	// virtual(8) refuses to deliver as a uid under virtual_minimum_uid
	// ("mail system configuration error"): say so here rather than see a
	// deferred message later.
	if min, err := strconv.Atoi(pc("-h", "virtual_minimum_uid")); err != nil || uid < min {
		t.Fatalf("Dovecot's mail uid %d is under main.cf's virtual_minimum_uid %d (%v)", uid, min, err)
	}
	before := strings.Count(tailFile(pf.Log, 1<<20), "reload -- version") // the log is a few KiB
	pc("-e",
		"virtual_mailbox_base="+mailRoot,
		fmt.Sprintf("virtual_uid_maps=static:%d", uid),
		fmt.Sprintf("virtual_gid_maps=static:%d", gid),
	)
	if r := runTool(t, toolOpts{Timeout: 30 * time.Second}, postfix, "-c", etc, "reload"); r.Err != nil {
		t.Fatalf("postfix reload: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	// master logs "reload -- version V, configuration DIR" once it has
	// read main.cf again; delivery agents started after that use it.
	// 30 s: it takes milliseconds; a loaded CI runner is slower.
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(tailFile(pf.Log, 1<<20), "reload -- version") <= before {
		if !time.Now().Before(deadline) {
			t.Fatalf("Postfix did not log its reload within 30s:\n%s", tailFile(pf.Log, 16<<10))
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}
