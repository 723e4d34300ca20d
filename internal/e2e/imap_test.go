package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox/imap"
	"github.com/davmail/davmail/mailbox/imap/imaptest"
)

// TestIMAPBackend drives the WebDAV handler over the IMAP backend and
// pass-through login against a real Dovecot: a wrong password is 401
// after asking upstream, a right one lists, stores, reads, moves and
// deletes mail that another IMAP client then sees. This is the wiring
// `davmail serve --imap-upstream` uses (docs/imap-backend.md), minus the
// server's other middleware.
func TestIMAPBackend(t *testing.T) {
	d, err := imaptest.Start()
	if err != nil {
		if imaptest.Required() {
			t.Fatalf("Dovecot is required under CI=true (apt-get install dovecot-imapd): %v", err)
		}
		t.Skipf("Dovecot not available (%v); install dovecot-imapd", err)
	}
	defer d.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	log := zerolog.New(zerolog.NewTestWriter(t))

	dialer := &imap.Dialer{Addr: d.Addr, TLS: imap.TLSNone}
	up, err := auth.NewUpstream(auth.UpstreamOptions{
		Login: func(ctx context.Context, u, p string) (bool, error) {
			err := dialer.Login(ctx, u, p)
			if errors.Is(err, imap.ErrLoginFailed) {
				return false, nil
			}
			return err == nil, err
		},
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := imap.New(imap.Options{Dialer: dialer, IndexDir: t.TempDir(), Credentials: up, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dh, err := dav.New(dav.Config{Store: store, Logger: log, Prefix: "/exchange/"})
	if err != nil {
		t.Fatal(err)
	}
	// Upstream handles every Basic header before Basic's users file is
	// consulted, so no users file exists (nil).
	basic := auth.NewBasic(nil, log, auth.BasicOptions{Before: []auth.Authenticator{up}, Sleep: func(context.Context, time.Duration) {}})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(reqlog.With(r.Context(), &reqlog.Entry{Log: log}))
		basic.Wrap(dh).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(method, path, pw string, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.SetBasicAuth("carol", pw)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("PROPFIND", "/exchange/carol/", "wrong", "", map[string]string{"Depth": "1"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	pw := d.Password
	raw := "From: a@example.org\r\nTo: carol@example.org\r\nSubject: over imap\r\n\r\nhello through Dovecot\r\n"
	if code, body := do("PUT", "/exchange/carol/Inbox/first.EML", pw, raw, nil); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, body := do("GET", "/exchange/carol/Inbox/first.EML", pw, "", nil); code != http.StatusOK || body != raw {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, body := do("PROPFIND", "/exchange/carol/Inbox/", pw, "", map[string]string{"Depth": "1"}); code != http.StatusMultiStatus || !strings.Contains(body, "first.EML") {
		t.Fatalf("PROPFIND: %d %s", code, body)
	}
	if code, body := do("MKCOL", "/exchange/carol/Archive/", pw, "", nil); code != http.StatusCreated {
		t.Fatalf("MKCOL: %d %s", code, body)
	}
	if code, body := do("MOVE", "/exchange/carol/Inbox/first.EML", pw, "", map[string]string{"Destination": srv.URL + "/exchange/carol/Archive/first.EML"}); code != http.StatusCreated {
		t.Fatalf("MOVE: %d %s", code, body)
	}
	// Another IMAP client sees the message where the gateway put it.
	other := &imap.Dialer{Addr: d.Addr}
	if err := other.Login(ctx, "carol", pw); err != nil {
		t.Fatal(err)
	}
	if code, body := do("GET", "/exchange/carol/Archive/first.EML", pw, "", nil); code != http.StatusOK || body != raw {
		t.Fatalf("GET after MOVE: %d %q", code, body)
	}
	if code, _ := do("DELETE", "/exchange/carol/Archive/first.EML", pw, "", nil); code != http.StatusNoContent && code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	if code, _ := do("GET", "/exchange/carol/Archive/first.EML", pw, "", nil); code != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %d, want 404", code)
	}
	if _, ok := up.Password("carol"); !ok {
		t.Error("the store could not have logged in: no password held")
	}
}
