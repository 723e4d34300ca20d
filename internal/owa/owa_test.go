package owa

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// fixture is a Handler with a users file holding alice, and a recorder
// of LoginFailed calls.
type fixture struct {
	h        *Handler
	sessions *auth.Sessions
	mu       sync.Mutex
	failed   []string // users passed to LoginFailed
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := auth.AddUser(path, "alice", "alice-pw", "", auth.Cost(bcrypt.MinCost)); err != nil {
		t.Fatal(err)
	}
	users, err := auth.NewUsers(path, auth.Options{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sessions: auth.NewSessions(auth.SessionOptions{Users: users})}
	f.h, err = New(Options{
		Sessions: f.sessions,
		LoginFailed: func(r *http.Request, user string, err error) bool {
			f.mu.Lock()
			f.failed = append(f.failed, user)
			f.mu.Unlock()
			return true
		},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func request(method, target string, body io.Reader, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r = r.WithContext(reqlog.With(r.Context(), &reqlog.Entry{ID: "test", Log: zerolog.Nop()}))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without Sessions succeeded")
	}
	f := newFixture(t)
	if _, err := New(Options{Sessions: f.sessions, LoginFailed: f.h.loginFailed, Prefix: "exchange"}); err == nil {
		t.Error("New with a bad prefix succeeded")
	}
}

func TestSafeDestination(t *testing.T) {
	const def = "http://mail.example.com/exchange/"
	for raw, want := range map[string]string{
		"":                                    def,
		"/exchange/":                          "http://mail.example.com/exchange/",
		"/exchange/alice/Inbox/?Cmd=contents": "http://mail.example.com/exchange/alice/Inbox/?Cmd=contents",
		"/exchange/alice/a%20b/":              "http://mail.example.com/exchange/alice/a%20b/",
		"http://mail.example.com/exchange/":   "http://mail.example.com/exchange/",
		"HTTP://MAIL.example.com/exchange/":   "http://MAIL.example.com/exchange/",
		"https://mail.example.com/exchange/":  "https://mail.example.com/exchange/", // TLS proxy in front
		"http://mail.example.com:8080/x":      "http://mail.example.com:8080/x",
		"http://mail.example.com":             "http://mail.example.com/",
		"http://mail.example.com/a#frag":      "http://mail.example.com/a",
		// Open-redirect attempts and junk.
		"http://evil.example/exchange/":            def,
		"//evil.example/exchange/":                 def,
		"///evil.example/":                         def,
		`/\evil.example/`:                          def,
		`\\evil.example\`:                          def,
		"http://mail.example.com@evil.example/":    def,
		"http://user:pw@mail.example.com/":         def,
		"https://evil.example/?u=mail.example.com": def,
		"javascript:alert(1)":                      def,
		"data:text/html,x":                         def,
		"ftp://mail.example.com/":                  def,
		"exchange/":                                def,
		"/\t/evil.example/":                        def,
		"/ex change/":                              def,
		"/exchange/\r\nSet-Cookie: x=1":            def,
		"/exchange/ä":                              def,
		"http://mail.example.com//evil.example/":   def,
		"/" + strings.Repeat("a", maxDestination):  def,
		"http://[::1]/":                            def,
		"mailto:alice@mail.example.com":            def,
	} {
		r := httptest.NewRequest("GET", "http://mail.example.com/x", nil)
		if got := safeDestination(r, raw, "/exchange/"); got != want {
			t.Errorf("safeDestination(%q) = %q, want %q", raw, got, want)
		}
	}
	// The request's scheme and host build the default and path-only URLs.
	r := httptest.NewRequest("GET", "https://[2001:db8::1]:8443/x", nil)
	r.TLS = &tls.ConnectionState{}
	if got := safeDestination(r, "/exchange/", "/exchange/"); got != "https://[2001:db8::1]:8443/exchange/" {
		t.Errorf("IPv6 TLS: %q", got)
	}
	if got := safeDestination(r, "http://[2001:db8::1]/y", "/exchange/"); got != "http://[2001:db8::1]/y" {
		t.Errorf("IPv6 same host: %q", got)
	}
}

func FuzzSafeDestination(f *testing.F) {
	for _, s := range []string{"/exchange/", "http://mail.example.com/exchange/", "//evil", `/\evil`, "http://a@b/", "https://mail.example.com:1/?q#f", "%2F%2Fevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "http://mail.example.com/x", nil)
		got := safeDestination(r, raw, "/exchange/")
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("result %q does not parse: %v", got, err)
		}
		if u.Hostname() != "mail.example.com" && !strings.EqualFold(u.Hostname(), "mail.example.com") {
			t.Fatalf("safeDestination(%q) = %q: another host", raw, got)
		}
		if u.User != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("safeDestination(%q) = %q", raw, got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("safeDestination(%q) = %q: byte %#x", raw, got, c)
			}
		}
		if !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
			t.Fatalf("safeDestination(%q) = %q: path %q", raw, got, u.Path)
		}
	})
}

func TestLogonURL(t *testing.T) {
	r := httptest.NewRequest("GET", "http://127.0.0.1:8080/exchange/alice/?Cmd=galfind&AN=alice", nil)
	got := LogonURL("/exchange/")(r)
	want := "http://127.0.0.1:8080/exchweb/bin/auth/owalogon.asp?url=" +
		url.QueryEscape("http://127.0.0.1:8080/exchange/alice/?Cmd=galfind&AN=alice") + "&reason=0"
	if got != want {
		t.Errorf("LogonURL = %q\nwant %q", got, want)
	}
	r = httptest.NewRequest("GET", "http://h/exchange/"+strings.Repeat("x", maxDestination), nil)
	if got := LogonURL("/exchange/")(r); got != "http://h"+LogonPath+"?url=http%3A%2F%2Fh%2Fexchange%2F&reason=0" {
		t.Errorf("long URL: %q", got)
	}
}

var (
	formRE  = regexp.MustCompile(`(?i)<form\b[^>]*>`)
	inputRE = regexp.MustCompile(`(?i)<input\b[^>]*>`)
	attrRE  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// inputs returns the <input> elements of page as attribute maps.
func inputs(page string) []map[string]string {
	var out []map[string]string
	for _, tag := range inputRE.FindAllString(page, -1) {
		m := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(tag, -1) {
			m[a[1]] = a[2]
		}
		out = append(out, m)
	}
	return out
}

func TestLogonPage(t *testing.T) {
	f := newFixture(t)
	dest := "http://mail.example.com/exchange/"
	w := serve(f.h.Logon(), request("GET", "http://mail.example.com"+LogonPath+"?url="+url.QueryEscape(dest)+"&reason=0", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("logon page: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, h := range []string{"Cache-Control", "X-Frame-Options", "Content-Security-Policy"} {
		if w.Header().Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	page := w.Body.String()
	forms := formRE.FindAllString(page, -1)
	if len(forms) != 1 {
		t.Fatalf("%d forms, want exactly 1 (DavMail takes the only form)", len(forms))
	}
	for _, want := range []string{`name="logonForm"`, `method="POST"`, `action="` + AuthPath + `"`} {
		if !strings.Contains(forms[0], want) {
			t.Errorf("form %s lacks %s", forms[0], want)
		}
	}
	hidden := map[string]string{}
	userFields, passFields := 0, 0
	davmailUser := map[string]bool{"username": true, "txtusername": true, "userid": true, "SafeWordUser": true, "user_name": true, "login": true, "UserName": true}
	davmailPass := map[string]bool{"password": true, "txtUserPass": true, "pw": true, "basicPassword": true, "passwd": true, "Password": true}
	for _, in := range inputs(page) {
		if in["type"] == "hidden" {
			hidden[in["name"]] = in["value"]
		}
		if davmailUser[in["name"]] {
			userFields++
		}
		if davmailPass[in["name"]] {
			passFields++
		}
		if in["name"] == "addr" || in["name"] == "otc" || in["name"] == "passcode" {
			t.Errorf("input %q makes DavMail take another path", in["name"])
		}
		// Every visible field has a label (accessibility).
		if in["type"] == "text" || in["type"] == "password" || in["type"] == "radio" {
			if in["id"] == "" || !strings.Contains(page, `<label for="`+in["id"]+`"`) {
				t.Errorf("input %v has no label", in)
			}
		}
	}
	if userFields != 1 || passFields != 1 {
		t.Errorf("%d user and %d password fields, want 1 and 1", userFields, passFields)
	}
	wantHidden := map[string]string{"destination": dest, "flags": "0", "forcedownlevel": "0", "isUtf8": "1"}
	if len(hidden) != len(wantHidden) {
		t.Errorf("hidden inputs %v, want %v", hidden, wantHidden)
	}
	for k, v := range wantHidden {
		if hidden[k] != v {
			t.Errorf("hidden %s = %q, want %q", k, hidden[k], v)
		}
	}
	if !strings.Contains(page, `name="trusted" value="4" checked`) || !strings.Contains(page, `name="trusted" value="0"`) {
		t.Error("trusted radio buttons missing")
	}
	if strings.Contains(page, "role=\"alert\"") {
		t.Error("error shown without reason=2")
	}

	// reason=2 shows the error; a foreign url is replaced; the 2007 name
	// posts to the 2007 target; "destination" is read too.
	w = serve(f.h.Logon(), request("GET", "http://mail.example.com"+Logon2007Path+"?url=http://evil.example/&reason=2", nil))
	page = w.Body.String()
	if !strings.Contains(page, `role="alert"`) || !strings.Contains(page, `aria-describedby="logon-error"`) {
		t.Error("reason=2 shows no error")
	}
	if !strings.Contains(page, `value="http://mail.example.com/exchange/"`) || strings.Contains(page, "evil") {
		t.Error("foreign url not replaced")
	}
	if !strings.Contains(page, `action="`+Auth2007Path+`"`) {
		t.Error("2007 logon page does not post to " + Auth2007Path)
	}
	w = serve(f.h.Logon(), request("GET", "http://mail.example.com"+LogonPath+"?destination=%2Fexchange%2Falice%2F", nil))
	if !strings.Contains(w.Body.String(), `value="http://mail.example.com/exchange/alice/"`) {
		t.Error("destination parameter not used")
	}
	// An HTML-special destination is escaped, not injected.
	w = serve(f.h.Logon(), request("GET", "http://mail.example.com"+LogonPath+"?url="+url.QueryEscape(`/x?a="><script>`), nil))
	if strings.Contains(w.Body.String(), "<script>") {
		t.Error("destination injected into the page")
	}

	if w := serve(f.h.Logon(), request("HEAD", "http://mail.example.com"+LogonPath, nil)); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := serve(f.h.Logon(), request("POST", "http://mail.example.com"+LogonPath, nil)); w.Code != 405 || w.Header().Get("Allow") == "" {
		t.Errorf("POST to the form page: %d", w.Code)
	}
}

// post sends a login form.
func (f *fixture) post(form url.Values, hdr ...string) *httptest.ResponseRecorder {
	r := request("POST", "http://mail.example.com"+AuthPath, strings.NewReader(form.Encode()),
		append([]string{"Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"}, hdr...)...)
	return serve(f.h.Auth(), r)
}

func cookies(w *httptest.ResponseRecorder) map[string]*http.Cookie {
	m := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		m[c.Name] = c
	}
	return m
}

func TestAuthPost(t *testing.T) {
	f := newFixture(t)
	dest := "http://mail.example.com/exchange/"

	// Wrong password: back to the logon page with reason=2, no cookie,
	// the failure recorded.
	w := f.post(url.Values{"destination": {dest}, "username": {"alice"}, "password": {"nope"}, "trusted": {"4"}, "flags": {"4"}})
	wantLoc := "http://mail.example.com" + LogonPath + "?url=" + url.QueryEscape(dest) + "&reason=2"
	if w.Code != 302 || w.Header().Get("Location") != wantLoc {
		t.Fatalf("wrong password: %d Location %q, want %q", w.Code, w.Header().Get("Location"), wantLoc)
	}
	if len(cookies(w)) != 0 || f.sessions.Len() != 0 {
		t.Error("wrong password got a session")
	}
	if len(f.failed) != 1 || f.failed[0] != "alice" {
		t.Errorf("LoginFailed calls %q", f.failed)
	}

	// Right password, as DavMail posts it (hidden fields of the form,
	// then username/password/trusted/flags, and Cookie: PBack=0), with
	// DOMAIN\user.
	form := url.Values{
		"destination": {dest}, "forcedownlevel": {"0"}, "isUtf8": {"1"},
		"username": {`EXAMPLE\alice`}, "password": {"alice-pw"}, "trusted": {"4"}, "flags": {"4"},
	}
	w = f.post(form, "Cookie", "PBack=0")
	if w.Code != 302 || w.Header().Get("Location") != dest {
		t.Fatalf("login: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	c := cookies(w)
	sid, cad := c["sessionid"], c["cadata"]
	if sid == nil || cad == nil || sid.Value != cad.Value {
		t.Fatalf("cookies %v", w.Header().Values("Set-Cookie"))
	}
	for _, ck := range []*http.Cookie{sid, cad} {
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
			t.Errorf("cookie %s: %+v", ck.Name, ck)
		}
		if strings.ContainsAny(ck.Value, `,"; `) {
			t.Errorf("cookie value %q has a separator", ck.Value)
		}
	}
	if user, err := f.sessions.Lookup(sid.Value); err != nil || user != "alice" {
		t.Fatalf("session: %q %v", user, err)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("login redirect is cacheable")
	}

	// Logging in again with the old cookie ends the old session.
	w = f.post(form, "Cookie", "sessionid="+sid.Value)
	newID := cookies(w)["sessionid"].Value
	if _, err := f.sessions.Lookup(sid.Value); err == nil {
		t.Error("old session survived a new login")
	}
	if f.sessions.Len() != 1 || newID == sid.Value {
		t.Errorf("Len %d, new id equal: %v", f.sessions.Len(), newID == sid.Value)
	}

	// Over TLS the cookies are Secure.
	r := request("POST", "https://mail.example.com"+AuthPath, strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	r.TLS = &tls.ConnectionState{}
	w = serve(f.h.Auth(), r)
	if c := cookies(w)["sessionid"]; c == nil || !c.Secure {
		t.Errorf("TLS login cookie not Secure: %v", w.Header().Values("Set-Cookie"))
	}

	// A foreign destination is replaced by the mailbox root.
	form.Set("destination", "https://evil.example/")
	if w := f.post(form); w.Header().Get("Location") != dest {
		t.Errorf("foreign destination: Location %q", w.Header().Get("Location"))
	}

	// Credentials in the query string are ignored.
	r = request("POST", "http://mail.example.com"+AuthPath+"?username=alice&password=alice-pw", strings.NewReader(""), "Content-Type", "application/x-www-form-urlencoded")
	if w := serve(f.h.Auth(), r); len(cookies(w)) != 0 || !strings.Contains(w.Header().Get("Location"), "reason=2") {
		t.Errorf("query credentials: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestAuthPostRefusals(t *testing.T) {
	f := newFixture(t)
	good := url.Values{"username": {"alice"}, "password": {"alice-pw"}}

	// Cross-origin browser posts (login CSRF).
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
		{"Origin", "null"},
	} {
		w := f.post(good, hdr...)
		if w.Code != http.StatusForbidden || len(cookies(w)) != 0 {
			t.Errorf("%v: %d, cookies %v", hdr, w.Code, w.Header().Values("Set-Cookie"))
		}
	}
	// Same-origin browser posts pass.
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "same-origin"},
		{"Origin", "http://mail.example.com"},
	} {
		if w := f.post(good, hdr...); w.Code != 302 || len(cookies(w)) != 2 {
			t.Errorf("%v: %d", hdr, w.Code)
		}
	}

	// Oversized body.
	big := url.Values{"username": {"alice"}, "password": {"alice-pw"}, "junk": {strings.Repeat("x", maxFormBytes)}}
	if w := f.post(big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d", w.Code)
	}
	// Broken encoding.
	r := request("POST", "http://mail.example.com"+AuthPath, strings.NewReader("username=%zz"), "Content-Type", "application/x-www-form-urlencoded")
	if w := serve(f.h.Auth(), r); w.Code != http.StatusBadRequest {
		t.Errorf("bad form encoding: %d", w.Code)
	}
	// GET of the POST target shows the form; other methods are refused.
	w := serve(f.h.Auth(), request("GET", "http://mail.example.com"+AuthPath, nil))
	if w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "http://mail.example.com"+LogonPath+"?") {
		t.Errorf("GET %s: %d %q", AuthPath, w.Code, w.Header().Get("Location"))
	}
	if w := serve(f.h.Auth(), request("PUT", "http://mail.example.com"+AuthPath, nil)); w.Code != 405 {
		t.Errorf("PUT: %d", w.Code)
	}
	// A client gone while the failure is delayed gets nothing written.
	f.h.loginFailed = func(*http.Request, string, error) bool { return false }
	if w := f.post(url.Values{"username": {"alice"}, "password": {"x"}}); w.Header().Get("Location") != "" {
		t.Errorf("answer written for a gone client: %d", w.Code)
	}
}

func TestLogoff(t *testing.T) {
	f := newFixture(t)
	w := f.post(url.Values{"username": {"alice"}, "password": {"alice-pw"}})
	id := cookies(w)["sessionid"].Value

	w = serve(f.h.Logoff(), request("GET", "http://mail.example.com"+LogoffPath, nil, "Cookie", "sessionid="+id, "Cookie", "cadata="+id))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "logged off") {
		t.Fatalf("logoff: %d %q", w.Code, w.Body.String())
	}
	if _, err := f.sessions.Lookup(id); err == nil {
		t.Error("session alive after logoff")
	}
	c := cookies(w)
	if c["sessionid"] == nil || c["sessionid"].MaxAge >= 0 || c["cadata"] == nil || c["cadata"].MaxAge >= 0 {
		t.Errorf("cookies not expired: %v", w.Header().Values("Set-Cookie"))
	}
	if !strings.Contains(w.Body.String(), `href="http://mail.example.com`+LogonPath) {
		t.Error("no link back to the logon page")
	}
	// Without a session it is still a logged-off page.
	if w := serve(f.h.Logoff(), request("GET", "http://mail.example.com"+LogoffPath, nil)); w.Code != 200 {
		t.Errorf("logoff without a session: %d", w.Code)
	}
	if w := serve(f.h.Logoff(), request("DELETE", "http://mail.example.com"+LogoffPath, nil)); w.Code != 405 {
		t.Errorf("DELETE: %d", w.Code)
	}
}

func TestStartPage(t *testing.T) {
	f := newFixture(t)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") })
	h := f.h.StartPage(next)
	as := func(r *http.Request, user string) *http.Request {
		reqlog.From(r.Context()).User = user
		return r
	}
	for _, c := range []struct{ target, user, base string }{
		{"http://127.0.0.1:8080/exchange/", "alice", "http://127.0.0.1:8080/exchange/alice/"},
		{"http://127.0.0.1:8080/exchange", "alice", "http://127.0.0.1:8080/exchange/alice/"},
		{"http://mail.example.com/exchange/", "bob+test@example.com", "http://mail.example.com/exchange/bob+test@example.com/"},
	} {
		w := serve(h, as(request("GET", c.target, nil), c.user))
		if w.Code != 200 || w.Header().Get("MS-WebStorage") != msWebStorage {
			t.Fatalf("%s: %d", c.target, w.Code)
		}
		// DavMail's reading (getMailpathFromWelcomePage): the first line
		// whose lower-case form holds `<base href="`, the text up to the
		// next quote.
		found := false
		for _, line := range strings.Split(w.Body.String(), "\n") {
			lower := strings.ToLower(line)
			i := strings.Index(lower, `<base href="`)
			if i < 0 {
				continue
			}
			if line != `<BASE href="`+c.base+`">` {
				t.Errorf("BASE line %q, want exactly %q", line, `<BASE href="`+c.base+`">`)
			}
			rest := line[i+len(`<base href="`):]
			if got := rest[:strings.IndexByte(rest, '"')]; got != c.base {
				t.Errorf("DavMail would read %q, want %q", got, c.base)
			}
			found = true
			break
		}
		if !found {
			t.Errorf("no BASE line:\n%s", w.Body.String())
		}
	}
	// HTTPS from the TLS state.
	r := as(request("GET", "https://mail.example.com/exchange/", nil), "alice")
	r.TLS = &tls.ConnectionState{}
	if w := serve(h, r); !strings.Contains(w.Body.String(), "\n"+`<BASE href="https://mail.example.com/exchange/alice/">`+"\n") {
		t.Errorf("TLS start page:\n%s", w.Body.String())
	}
	// Passed on: Translate: f, other paths, other methods.
	for _, r := range []*http.Request{
		request("GET", "http://h/exchange/", nil, "Translate", "f"),
		request("GET", "http://h/exchange/alice/", nil),
		request("PROPFIND", "http://h/exchange/", nil),
	} {
		if w := serve(h, as(r, "alice")); w.Body.String() != "next" {
			t.Errorf("%s %s %v: not passed on", r.Method, r.URL, r.Header)
		}
	}
	if w := serve(h, as(request("HEAD", "http://h/exchange/", nil), "alice")); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d %d bytes", w.Code, w.Body.Len())
	}
	if w := serve(h, request("GET", "http://h/exchange/", nil)); w.Code != 401 {
		t.Errorf("unauthenticated start page: %d", w.Code)
	}
}
