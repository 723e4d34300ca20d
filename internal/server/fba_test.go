package server

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// fbaClient is a browser-like client: a cookie jar, and redirects not
// followed (each step is checked).
type fbaClient struct {
	t   *testing.T
	ts  *testServer
	jar *cookiejar.Jar
	c   *http.Client
}

func newFBAClient(t *testing.T, ts *testServer) *fbaClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fbaClient{t: t, ts: ts, jar: jar, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *fbaClient) do(method, target string, body io.Reader, hdr ...string) (*http.Response, string) {
	c.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = c.ts.url + target
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(b)
}

func (c *fbaClient) cookie(name string) string {
	u, _ := url.Parse(c.ts.url + "/")
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

const propfindDisplayname = `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>`

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// TestFormsLogin walks the Exchange 2003 forms-based login the way DavMail
// 6 does it (exchange-webdav.md §2.2, §7.1), through the real server.
func TestFormsLogin(t *testing.T) {
	ts := startServer(t, nil)
	c := newFBAClient(t, ts)
	mailbox := ts.url + "/exchange/"

	// 1. checkConfig / FBA probe: GET /exchange/ without credentials is a
	// redirect to the logon page carrying the original URL.
	resp, _ := c.do("GET", "/exchange/", nil)
	logon := ts.url + "/exchweb/bin/auth/owalogon.asp?url=" + url.QueryEscape(mailbox) + "&reason=0"
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != logon {
		t.Fatalf("unauthenticated GET /exchange/: %d Location %q, want 302 %q", resp.StatusCode, resp.Header.Get("Location"), logon)
	}

	// 2. The logon page: one form whose hidden fields DavMail copies.
	resp, page := c.do("GET", logon, nil)
	if resp.StatusCode != 200 || strings.Count(page, "<form") != 1 || !strings.Contains(page, `action="/exchweb/bin/auth/owaauth.dll"`) {
		t.Fatalf("logon page: %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("destination") != mailbox {
		t.Fatalf("hidden destination %q, want %q", form.Get("destination"), mailbox)
	}
	form.Set("username", "alice")
	form.Set("trusted", "4")
	form.Set("flags", "4")
	post := func(pw string) (*http.Response, string) {
		t.Helper()
		form.Set("password", pw)
		return c.do("POST", "/exchweb/bin/auth/owaauth.dll", strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded; charset=UTF-8", "Cookie", "PBack=0")
	}

	// 3. A wrong password goes back to the logon page with reason=2 (what
	// DavMail checks), after the throttle's delay, and sets no session.
	resp, _ = post("wrong password")
	want := ts.url + "/exchweb/bin/auth/owalogon.asp?url=" + url.QueryEscape(mailbox) + "&reason=2"
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("wrong password: %d Location %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if c.cookie("sessionid") != "" || ts.Sessions().Len() != 0 {
		t.Fatal("wrong password got a session")
	}
	if u, a := ts.Throttle().Len(); u != 1 || a != 1 {
		t.Errorf("throttle tracks %d users, %d addresses; want 1, 1", u, a)
	}

	// 4. The right password: both cookies, and 302 to the destination.
	resp, _ = post(testPassword)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != mailbox {
		t.Fatalf("login: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sid, cad := c.cookie("sessionid"), c.cookie("cadata")
	if sid == "" || cad != sid {
		t.Fatalf("cookies sessionid=%q cadata=%q; Set-Cookie %q", sid, cad, resp.Header.Values("Set-Cookie"))
	}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || !strings.Contains(sc, "Path=/") {
			t.Errorf("Set-Cookie %q", sc)
		}
	}
	if ts.Sessions().Len() != 1 {
		t.Errorf("Sessions().Len() = %d", ts.Sessions().Len())
	}

	// 5. The start page, with the BASE line on one line exactly.
	resp, page = c.do("GET", "/exchange/", nil)
	base := `<BASE href="` + ts.url + `/exchange/alice/">`
	if resp.StatusCode != 200 || !strings.Contains(page, "\n"+base+"\n") {
		t.Fatalf("start page: %d, want a line %q:\n%s", resp.StatusCode, base, page)
	}
	ev := ts.logs.requestEvent(t, resp.Header.Get("X-Request-Id"))
	if ev["user"] != "alice" {
		t.Errorf("start page logged as user %v", ev["user"])
	}

	// 6. WebDAV with the cookie: the mailbox root and the public probe.
	resp, _ = c.do("PROPFIND", "/exchange/alice/", strings.NewReader(propfindDisplayname), "Depth", "0", "Content-Type", "text/xml")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND with the session cookie: %d", resp.StatusCode)
	}
	resp, body := c.do("PROPFIND", "/public/", strings.NewReader(propfindDisplayname), "Depth", "0", "Content-Type", "text/xml")
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(body, "<a:displayname>Public Folders</a:displayname>") ||
		!strings.Contains(body, "<a:href>"+ts.url+"/public/</a:href>") {
		t.Fatalf("PROPFIND /public/: %d\n%s", resp.StatusCode, body)
	}
	// Without any credentials /public/ is a Basic 401 (row 2).
	resp, _ = ts.do(t, "PROPFIND", "/public/", nil, "Depth", "0")
	if resp.StatusCode != 401 {
		t.Errorf("PROPFIND /public/ without credentials: %d", resp.StatusCode)
	}

	// 7. DavMail 5.5.1's cookie headers: one per cookie, RFC 2109.
	req, _ := http.NewRequest("PROPFIND", ts.url+"/exchange/alice/", strings.NewReader(propfindDisplayname))
	req.Header.Set("Depth", "0")
	req.Header.Add("Cookie", `$Version=0; sessionid=`+sid+`; $Path=/`)
	req.Header.Add("Cookie", `$Version=0; 0x409; $Path=/`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		t.Errorf("PROPFIND with split RFC 2109 cookies: %d", resp.StatusCode)
	}

	// 8. A stale cookie: 440 for WebDAV, the logon page for a GET, and
	// the cookies expired either way.
	stale := strings.Repeat("0", 32)
	resp, _ = ts.do(t, "PROPFIND", "/exchange/alice/", strings.NewReader(propfindDisplayname), "Depth", "0", "Cookie", "sessionid="+stale)
	if resp.StatusCode != 440 {
		t.Errorf("PROPFIND with a stale cookie: %d, want 440", resp.StatusCode)
	}
	if sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); !strings.Contains(sc, "sessionid=;") || !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("440 does not expire the cookies: %q", sc)
	}
	req, _ = http.NewRequest("GET", ts.url+"/exchange/", nil)
	req.Header.Set("Cookie", "sessionid="+stale)
	resp, err = http.DefaultTransport.RoundTrip(req) // no jar, no redirect following
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != logon {
		t.Errorf("GET with a stale cookie: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// 9. Log off: the old cookie stops working.
	resp, page = c.do("GET", "/exchweb/bin/auth/owalogoff.dll", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "logged off") {
		t.Fatalf("logoff: %d", resp.StatusCode)
	}
	if c.cookie("sessionid") != "" || c.cookie("cadata") != "" {
		t.Error("jar still holds the session cookies after logoff")
	}
	resp, _ = ts.do(t, "PROPFIND", "/exchange/alice/", strings.NewReader(propfindDisplayname), "Depth", "0", "Cookie", "sessionid="+sid+"; cadata="+sid)
	if resp.StatusCode != 440 {
		t.Errorf("PROPFIND with the logged-off cookie: %d, want 440", resp.StatusCode)
	}
	if ts.Sessions().Len() != 0 {
		t.Errorf("Sessions().Len() = %d after logoff", ts.Sessions().Len())
	}

	// 10. Basic still works without cookies, and a Basic client's first
	// WebDAV request still gets the 401 challenge.
	req, _ = http.NewRequest("PROPFIND", ts.url+"/exchange/alice/", strings.NewReader(propfindDisplayname))
	req.SetBasicAuth("alice", testPassword)
	req.Header.Set("Depth", "0")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		t.Errorf("Basic PROPFIND: %d", resp.StatusCode)
	}
	resp, _ = ts.do(t, "PROPFIND", "/exchange/alice/", nil, "Depth", "0")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("PROPFIND without credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// And the start page answers Basic too (the auth table's middle column).
	req, _ = http.NewRequest("GET", ts.url+"/exchange/", nil)
	req.SetBasicAuth("alice", testPassword)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), base) {
		t.Errorf("start page with Basic: %d", resp.StatusCode)
	}

	// Secrets never reach the logs.
	logs := ts.logs.String()
	for _, secret := range []string{testPassword, "wrong password", sid} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if n := len(ts.logs.events(t, "logged on")); n != 1 {
		t.Errorf("%d 'logged on' events, want 1", n)
	}
}

// TestFormsLoginOWA2007Names checks the Exchange 2007 form and POST
// target (§2.3), which DavMail falls back to.
func TestFormsLoginOWA2007Names(t *testing.T) {
	ts := startServer(t, nil)
	c := newFBAClient(t, ts)
	resp, page := c.do("GET", "/owa/auth/logon.aspx?url="+url.QueryEscape(ts.url+"/exchange/")+"&reason=0", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/owa/auth/owaauth.dll"`) {
		t.Fatalf("logon.aspx: %d", resp.StatusCode)
	}
	form := url.Values{"destination": {ts.url + "/exchange/"}, "username": {"alice"}, "password": {testPassword}}
	resp, _ = c.do("POST", "/owa/auth/owaauth.dll", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusFound || c.cookie("sessionid") == "" {
		t.Fatalf("POST /owa/auth/owaauth.dll: %d", resp.StatusCode)
	}
	resp, _ = c.do("PROPFIND", "/exchange/alice/", strings.NewReader(propfindDisplayname), "Depth", "0")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Errorf("PROPFIND after 2007 login: %d", resp.StatusCode)
	}
}
