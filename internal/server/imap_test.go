package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/mailbox/imap"
	"github.com/davmail/davmail/mailbox/imap/imaptest"
)

// TestIMAPUpstream: `davmail serve --imap-upstream` against a real
// Dovecot — Basic and forms login are checked upstream (no users file
// entry needed), the mailbox is Dovecot's, a logoff ends the session,
// and an unreachable upstream is 503, not 401.
func TestIMAPUpstream(t *testing.T) {
	d, err := imaptest.Start()
	if err != nil {
		if imaptest.Required() {
			t.Fatalf("Dovecot is required under CI=true (apt-get install dovecot-imapd): %v", err)
		}
		t.Skipf("Dovecot not available (%v); install dovecot-imapd", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			d.Stop()
		}
	}()
	ts := startServer(t, func(c *config.Config) {
		c.IMAPUpstream, c.IMAPTLS = d.Addr, "none"
		c.IndexMemoryMessages = 4321
	})
	if st, ok := ts.store.(*imap.Store); !ok || st.MaxMessagesInMemory() != 4321 {
		t.Errorf("index-memory-messages 4321 did not reach the IMAP store (%T)", ts.store)
	}
	const user = "carol" // only Dovecot knows her
	basic := "Basic " + basicToken(user, d.Password)

	if resp, _ := ts.do(t, "PROPFIND", "/exchange/"+user+"/", nil, "Depth", "0", "Authorization", "Basic "+basicToken(user, "wrong")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}
	msg := "From: carol@example.org\r\nSubject: through the gateway\r\n\r\nhello\r\n"
	if resp, body := ts.do(t, "PUT", "/exchange/"+user+"/Inbox/m.EML", strings.NewReader(msg), "Authorization", basic); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	resp, body := ts.do(t, "PROPFIND", "/exchange/"+user+"/Inbox/", nil, "Depth", "1", "Authorization", basic)
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(body, "m.EML") {
		t.Fatalf("PROPFIND Inbox: %d\n%s", resp.StatusCode, body)
	}

	// Forms login, the same session as DAV's and the web UI's.
	c := newFBAClient(t, ts)
	form := url.Values{"destination": {ts.url + "/exchange/" + user + "/"}, "username": {user}, "password": {d.Password}, "flags": {"4"}, "trusted": {"4"}}
	if resp, _ := c.do("POST", "/exchweb/bin/auth/owaauth.dll", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusFound || c.cookie("sessionid") == "" {
		t.Fatalf("forms login: %d, session cookie %q", resp.StatusCode, c.cookie("sessionid"))
	}
	if resp, body := c.do("GET", "/exchange/"+user+"/Inbox/m.EML", nil, "Translate", "f"); resp.StatusCode != http.StatusOK || body != msg {
		t.Errorf("GET with the session: %d %q", resp.StatusCode, body)
	}
	if resp, _ := c.do("GET", "/exchweb/bin/auth/owalogoff.dll", nil); resp.StatusCode >= 400 {
		t.Errorf("logoff: %d", resp.StatusCode)
	}
	if ts.Sessions().Len() != 0 {
		t.Errorf("%d sessions after logoff", ts.Sessions().Len())
	}

	// Upstream down: a password not checked before cannot be checked now.
	d.Stop()
	stopped = true
	if resp, _ := ts.do(t, "PROPFIND", "/exchange/dave/", nil, "Depth", "0", "Authorization", "Basic "+basicToken("dave", "some password")); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("login with the upstream down: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
