package server

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/davmail/davmail/internal/config"
)

func TestForwardedClient(t *testing.T) {
	p := &proxyTrust{trusted: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
	}}
	for _, tc := range []struct {
		name   string
		values []string
		want   string // "" for not ok
	}{
		{"absent", nil, ""},
		{"one hop", []string{"203.0.113.9"}, "203.0.113.9"},
		{"client forges a left entry", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", []string{"203.0.113.9, 10.1.1.1", "10.2.2.2"}, "203.0.113.9"},
		{"all trusted: leftmost", []string{"10.3.3.3, 10.1.1.1"}, "10.3.3.3"},
		{"with ports", []string{"[2001:db9::5]:4711, 10.0.0.1:80"}, "2001:db9::5"},
		{"mapped v4", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"junk in the chain", []string{"203.0.113.9, bogus"}, ""},
		{"junk left of the client is not examined", []string{"bogus, 203.0.113.9"}, "203.0.113.9"},
		{"empty entries", []string{" , ,203.0.113.9,"}, "203.0.113.9"},
	} {
		got, ok := p.forwardedClient(tc.values)
		if (tc.want == "") != !ok || ok && got.String() != tc.want {
			t.Errorf("%s: %v %v, want %q", tc.name, got, ok, tc.want)
		}
	}
	// A long forged list is cut to the last maxForwardedHops entries.
	long := strings.Repeat("10.9.9.9, ", 1000) + "203.0.113.9"
	if got, ok := p.forwardedClient([]string{long}); !ok || got.String() != "203.0.113.9" {
		t.Errorf("long list: %v %v", got, ok)
	}
}

// owaLogin posts the forms login with extra headers and returns the
// response's Set-Cookie lines.
func owaLogin(t *testing.T, ts *testServer, hdr ...string) []string {
	t.Helper()
	form := url.Values{"destination": {ts.url + "/exchange/"}, "username": {"alice"}, "password": {testPassword}, "flags": {"4"}}
	req, err := http.NewRequest("POST", ts.url+"/exchweb/bin/auth/owaauth.dll", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Header.Values("Set-Cookie")) == 0 {
		t.Fatalf("forms login set no cookie: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp.Header.Values("Set-Cookie")
}

func secure(cookies []string) bool {
	for _, c := range cookies {
		if strings.HasPrefix(c, "sessionid=") {
			return strings.Contains(c, "; Secure")
		}
	}
	return false
}

// TestTrustedProxies: X-Forwarded-For and -Proto change the client
// address (access log) and the Secure cookie attribute only when the peer
// is a trusted proxy.
func TestTrustedProxies(t *testing.T) {
	xff := []string{"X-Forwarded-For", "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto", "https"}
	remoteOf := func(ts *testServer, resp *http.Response) string {
		t.Helper()
		r, _ := ts.logs.requestEvent(t, resp.Header.Get("X-Request-Id"))["remote"].(string)
		return r
	}

	trusting := startServer(t, func(c *config.Config) { c.TrustedProxies = "127.0.0.1" })
	resp, _ := trusting.do(t, "GET", "/healthz", nil, xff...)
	if r := remoteOf(trusting, resp); r != "198.51.100.7" {
		t.Errorf("trusted proxy: logged remote %q, want the rightmost untrusted hop 198.51.100.7", r)
	}
	if !secure(owaLogin(t, trusting, xff...)) {
		t.Error("trusted proxy with X-Forwarded-Proto: https: session cookie not Secure")
	}
	if secure(owaLogin(t, trusting)) {
		t.Error("trusted proxy without X-Forwarded-Proto: session cookie Secure over plain HTTP")
	}
	// Trusting the second hop as well reaches the original client.
	deeper := startServer(t, func(c *config.Config) { c.TrustedProxies = "127.0.0.0/8, 198.51.100.0/24" })
	resp, _ = deeper.do(t, "GET", "/healthz", nil, xff...)
	if r := remoteOf(deeper, resp); r != "203.0.113.9" {
		t.Errorf("two trusted hops: logged remote %q, want 203.0.113.9", r)
	}

	// From an untrusted peer the headers are ignored.
	for name, proxies := range map[string]string{"no proxies": "", "other proxies": "10.0.0.0/8"} {
		ts := startServer(t, func(c *config.Config) { c.TrustedProxies = proxies })
		resp, _ := ts.do(t, "GET", "/healthz", nil, xff...)
		if r := remoteOf(ts, resp); !strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("%s: logged remote %q, want the peer 127.0.0.1:port", name, r)
		}
		if secure(owaLogin(t, ts, xff...)) {
			t.Errorf("%s: forged X-Forwarded-Proto made the cookie Secure", name)
		}
	}
}
