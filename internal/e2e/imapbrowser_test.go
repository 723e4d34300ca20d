package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
)

// TestIMAPBrowser is TestBrowser on the IMAP backend: the same corpus
// (startBrowserServer's mkcorpus flags) served by a throwaway Dovecot,
// the gateway in front of it with max-message-size browserMaxMessageSize,
// and the same walk through the web UI in headless Chromium: log in with
// Dovecot's password, open Inbox, open a hostile HTML message (no script
// runs, no remote request), download an attachment and compare it with
// the decoded corpus attachment, open the legacy oversized message and
// read the explanation, the admin page, phone width, log out.
//
// The walk is browserWalk, shared with TestBrowser.
func TestIMAPBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	r := startIMAPRig(t, []string{"-messages", "200", "-large", "0", "-oversize", "2MiB"}, func(c *config.Config) {
		c.MaxMessageSize = browserMaxMessageSize
		// With an upstream the users file only names admins (logins go
		// to Dovecot): make alice one, as startBrowserServer does. The
		// password here is never used.
		if err := auth.AddUser(c.Users, "alice", randomPassword(t), auth.RoleAdmin, auth.Replace()); err != nil {
			t.Fatalf("making alice an admin: %v", err)
		}
	})
	// A subdirectory, so that TestBrowser's screenshots are not replaced.
	shots := filepath.Join(artifactsDir(t), "imap")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// r.ts.Corpus holds the files as Dovecot serves them (imapForm: bare
	// LF as CRLF).
	browserWalk(t, chromium, walkSetup{
		url:      r.ts.URL,
		password: r.ts.Passwords["alice"],
		manifest: readBrowserManifest(t, r.pristine),
		shots:    shots,
		pristine: r.pristine,
		served:   r.ts.Corpus,
	})
}
