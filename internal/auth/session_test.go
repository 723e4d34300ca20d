package auth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
)

// sessionFixture is a users file with alice and bob and a session table
// on the fixture's clock.
func sessionFixture(t *testing.T, opts SessionOptions) (*fixture, *Sessions) {
	t.Helper()
	f := newFixture(t, Options{})
	f.add(t, "alice", "alice-pw", "")
	f.add(t, "bob", "bob-pw", "")
	f.tick(t)
	opts.Users = f.users
	opts.Now = f.clock.Now
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	return f, NewSessions(opts)
}

func login(t *testing.T, s *Sessions, user, pw string) string {
	t.Helper()
	id, err := s.Login(context.Background(), user, pw)
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	return id
}

func wantUser(t *testing.T, s *Sessions, id, user string) {
	t.Helper()
	got, err := s.Lookup(id)
	if err != nil || got != user {
		t.Fatalf("Lookup = %q, %v; want %q", got, err, user)
	}
}

func wantStale(t *testing.T, s *Sessions, id string, want error) {
	t.Helper()
	got, err := s.Lookup(id)
	if !errors.Is(err, ErrSessionStale) || got != "" {
		t.Fatalf("Lookup = %q, %v; want a stale session", got, err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("Lookup error %v, want %v", err, want)
	}
}

func TestSessionLifecycle(t *testing.T) {
	f, s := sessionFixture(t, SessionOptions{})

	id := login(t, s, "alice", "alice-pw")
	if !validSessionID(id) {
		t.Fatalf("id %q is not 32 lower-case hex digits", id)
	}
	if strings.ContainsAny(id, `,;" `) {
		t.Fatalf("id %q holds a cookie separator", id)
	}
	if id2 := login(t, s, "alice", "alice-pw"); id2 == id {
		t.Fatal("two logins got the same id")
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
	wantUser(t, s, id, "alice")

	// Wrong passwords and unknown users create nothing.
	for _, c := range [][2]string{{"alice", "wrong"}, {"nobody", "alice-pw"}, {"alice", ""}} {
		if _, err := s.Login(context.Background(), c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Login(%q, %q): %v, want ErrBadCredentials", c[0], c[1], err)
		}
	}
	if s.Len() != 2 {
		t.Errorf("Len after failed logins = %d, want 2", s.Len())
	}

	// Unknown and malformed ids.
	wantStale(t, s, strings.Repeat("0", sessionIDLen), errSessionUnknown)
	wantStale(t, s, "not-an-id", errSessionUnknown)
	wantStale(t, s, strings.ToUpper(id), errSessionUnknown) // Lookup takes ids as issued

	// Use keeps the session alive past the idle timeout.
	for range 4 {
		f.clock.Add(DefaultSessionIdle - time.Minute)
		wantUser(t, s, id, "alice")
	}
	// Logout.
	if user, ok := s.Logout(id); !ok || user != "alice" {
		t.Errorf("Logout = %q, %v", user, ok)
	}
	if _, ok := s.Logout(id); ok {
		t.Error("second Logout found the session")
	}
	wantStale(t, s, id, errSessionUnknown)
	if s.Len() != 1 {
		t.Errorf("Len after logout = %d, want 1", s.Len())
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	f, s := sessionFixture(t, SessionOptions{IdleTimeout: 10 * time.Minute})
	id := login(t, s, "alice", "alice-pw")
	f.clock.Add(10*time.Minute - time.Second)
	wantUser(t, s, id, "alice") // refreshed here
	f.clock.Add(10*time.Minute - time.Second)
	wantUser(t, s, id, "alice")
	f.clock.Add(10 * time.Minute)
	wantStale(t, s, id, errSessionIdle)
	if s.Len() != 0 {
		t.Errorf("expired session kept: Len = %d", s.Len())
	}
	wantStale(t, s, id, errSessionUnknown)
}

func TestSessionAbsoluteLifetime(t *testing.T) {
	f, s := sessionFixture(t, SessionOptions{IdleTimeout: time.Hour, Lifetime: 3 * time.Hour})
	id := login(t, s, "alice", "alice-pw")
	// Used every 50 minutes, it never idles out but still ends at 3 h.
	for elapsed := time.Duration(0); elapsed+50*time.Minute < 3*time.Hour; elapsed += 50 * time.Minute {
		f.clock.Add(50 * time.Minute)
		wantUser(t, s, id, "alice")
	}
	f.clock.Add(50 * time.Minute)
	wantStale(t, s, id, errSessionLifetime)
}

func TestSessionPasswordChangeRevokes(t *testing.T) {
	f, s := sessionFixture(t, SessionOptions{})
	alice := login(t, s, "alice", "alice-pw")
	bob := login(t, s, "bob", "bob-pw")

	f.add(t, "alice", "new-pw", "", Replace())
	f.tick(t)
	wantStale(t, s, alice, errSessionRevoked)
	wantUser(t, s, bob, "bob") // others are untouched
	if _, err := s.Login(context.Background(), "alice", "alice-pw"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after the change: %v", err)
	}
	alice = login(t, s, "alice", "new-pw")
	wantUser(t, s, alice, "alice")

	// Removing the user ends the sessions too.
	if err := DelUser(f.path, "bob"); err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	wantStale(t, s, bob, errSessionRevoked)
	wantUser(t, s, alice, "alice")
}

func TestSessionInvalidateUser(t *testing.T) {
	_, s := sessionFixture(t, SessionOptions{})
	a1 := login(t, s, "alice", "alice-pw")
	a2 := login(t, s, "alice", "alice-pw")
	b := login(t, s, "bob", "bob-pw")
	if n := s.InvalidateUser("alice"); n != 2 {
		t.Errorf("InvalidateUser = %d, want 2", n)
	}
	wantStale(t, s, a1, nil)
	wantStale(t, s, a2, nil)
	wantUser(t, s, b, "bob")
	if n := s.InvalidateUser("alice"); n != 0 {
		t.Errorf("second InvalidateUser = %d", n)
	}
	if s.Len() != 1 || len(s.byUser) != 1 {
		t.Errorf("Len = %d, users = %d; want 1, 1", s.Len(), len(s.byUser))
	}
}

func TestSessionCaps(t *testing.T) {
	f, s := sessionFixture(t, SessionOptions{MaxSessions: 5, MaxPerUser: 3})

	// Per user: the 4th login of alice ends her least recently used one.
	a := make([]string, 3)
	for i := range a {
		a[i] = login(t, s, "alice", "alice-pw")
		f.clock.Add(time.Second)
	}
	wantUser(t, s, a[0], "alice") // a[0] is now the most recently used
	f.clock.Add(time.Second)
	a3 := login(t, s, "alice", "alice-pw")
	wantStale(t, s, a[1], errSessionUnknown)
	for _, id := range []string{a[0], a[2], a3} {
		wantUser(t, s, id, "alice")
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}

	// Global: bob's logins fill the table; then the least recently used
	// session of anyone goes.
	b1 := login(t, s, "bob", "bob-pw")
	f.clock.Add(time.Second)
	b2 := login(t, s, "bob", "bob-pw")
	f.clock.Add(time.Second)
	if s.Len() != 5 {
		t.Fatalf("Len = %d, want 5", s.Len())
	}
	// LRU order now: a[0], a[2], a3 (touched above in that order), b1, b2.
	b3 := login(t, s, "bob", "bob-pw")
	if s.Len() != 5 {
		t.Errorf("Len over the cap = %d, want 5", s.Len())
	}
	wantStale(t, s, a[0], errSessionUnknown)
	for id, user := range map[string]string{a[2]: "alice", a3: "alice", b1: "bob", b2: "bob", b3: "bob"} {
		wantUser(t, s, id, user)
	}

	// Idle sessions are swept at login before any live one is evicted.
	f.clock.Add(DefaultSessionIdle + time.Second)
	b4 := login(t, s, "bob", "bob-pw")
	if s.Len() != 1 || len(s.byUser) != 1 {
		t.Errorf("after sweep: Len = %d, users = %d; want 1, 1", s.Len(), len(s.byUser))
	}
	wantUser(t, s, b4, "bob")
}

// TestSessionPerUserCapOne covers the corner where evicting the user's
// only session empties their list.
func TestSessionPerUserCapOne(t *testing.T) {
	_, s := sessionFixture(t, SessionOptions{MaxSessions: 1, MaxPerUser: 1})
	a1 := login(t, s, "alice", "alice-pw")
	a2 := login(t, s, "alice", "alice-pw")
	wantStale(t, s, a1, nil)
	wantUser(t, s, a2, "alice")
	b := login(t, s, "bob", "bob-pw")
	wantStale(t, s, a2, nil)
	wantUser(t, s, b, "bob")
	if s.Len() != 1 || len(s.byUser) != 1 || s.byUser["bob"].Len() != 1 {
		t.Errorf("Len = %d, byUser = %v", s.Len(), s.byUser)
	}
}

func TestSessionLoginCancelled(t *testing.T) {
	_, s := sessionFixture(t, SessionOptions{})
	// Fill the bcrypt slots so that Login has to wait, then cancel.
	for range cap(s.users.bcryptSem) {
		s.users.bcryptSem <- struct{}{}
	}
	defer func() {
		for range cap(s.users.bcryptSem) {
			<-s.users.bcryptSem
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Login(ctx, "alice", "alice-pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Login with a cancelled context: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d", s.Len())
	}
}

func TestSessionIDs(t *testing.T) {
	id1 := "0123456789abcdef0123456789abcdef"
	id2 := "fedcba9876543210fedcba9876543210"
	for _, c := range []struct {
		name    string
		headers []string
		want    []string
	}{
		{"none", nil, nil},
		{"plain", []string{"sessionid=" + id1}, []string{id1}},
		{"cadata only", []string{"cadata=" + id1}, []string{id1}},
		{"both, same id", []string{"sessionid=" + id1 + "; cadata=" + id1}, []string{id1}},
		{"cadata listed after sessionid", []string{"cadata=" + id2 + "; sessionid=" + id1}, []string{id1, id2}},
		{"other cookies around", []string{"PBack=0; sessionid=" + id1 + "; lang=en"}, []string{id1}},
		{"several headers", []string{"PBack=0", "sessionid=" + id1, "cadata=" + id2}, []string{id1, id2}},
		// RFC 2109 as commons-httpclient 3 sends it, one header per cookie.
		{"rfc2109", []string{`$Version=1; sessionid="` + id1 + `"; $Path="/"`, `$Version=1; cadata="` + id1 + `"; $Path="/"`}, []string{id1}},
		{"rfc2109 unquoted", []string{"$Version=0; sessionid=" + id1 + "; $Path=/"}, []string{id1}},
		// DavMail 5.5.1 split of Exchange's "sessionid=<guid>,0x409"
		// (§0.3 #10): two headers, the second without a name.
		{"5.5.1 split", []string{"$Version=0; sessionid=" + id1 + "; $Path=/", "$Version=0; 0x409; $Path=/"}, []string{id1}},
		{"unsplit comma form", []string{"sessionid=" + id1 + ",0x409"}, []string{id1}},
		{"comma separated (RFC 2109)", []string{"sessionid=" + id1 + ", cadata=" + id2}, []string{id1, id2}},
		{"upper-case hex", []string{"sessionid=" + strings.ToUpper(id1)}, []string{id1}},
		{"spaces and tabs", []string{" \tsessionid = \t" + id1 + " ;"}, []string{id1}},
		{"foreign sessionid (Django)", []string{"sessionid=k2j4h5g6f7d8s9a0zxcvbnmlkjhgfdsa"}, nil},
		{"wrong length", []string{"sessionid=" + id1 + "00"}, nil},
		{"empty value", []string{"sessionid=; cadata="}, nil},
		{"name case matters", []string{"SessionID=" + id1}, nil},
		{"cadata prefix names are Exchange 2007's, not ours", []string{"cadataKey=" + id1}, nil},
		{"duplicates", []string{"sessionid=" + id1, "sessionid=" + id1, "sessionid=" + id1}, []string{id1}},
		{"quote only on one side", []string{`sessionid="` + id1}, nil},
	} {
		h := http.Header{}
		for _, v := range c.headers {
			h.Add("Cookie", v)
		}
		got := SessionIDs(h)
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: SessionIDs(%q) = %q, want %q", c.name, c.headers, got, c.want)
		}
	}

	// Caps: at most maxSessionCandidates ids, and pairs past
	// maxCookiePairs are not looked at.
	h := http.Header{}
	for i := range 10 {
		h.Add("Cookie", "sessionid="+strings.Repeat(string("0123456789"[i]), sessionIDLen))
	}
	if got := SessionIDs(h); len(got) != maxSessionCandidates {
		t.Errorf("%d candidates, want %d", len(got), maxSessionCandidates)
	}
	h = http.Header{"Cookie": {strings.Repeat("x=1; ", maxCookiePairs) + "sessionid=" + id1}}
	if got := SessionIDs(h); len(got) != 0 {
		t.Errorf("cookie past the pair cap was read: %q", got)
	}
}

func FuzzSessionIDs(f *testing.F) {
	id := "0123456789abcdef0123456789abcdef"
	f.Add("sessionid=" + id)
	f.Add(`$Version="1"; sessionid="` + id + `"; $Path="/"`)
	f.Add("sessionid=" + id + ",0x409\n$Version=0; 0x409; $Path=/")
	f.Add("cadata=" + id + "; sessionid=" + id)
	f.Add(";;,,==\n\n\"\"")
	f.Add("sessionid=\"\"")
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{}
		for _, line := range strings.Split(s, "\n") {
			h.Add("Cookie", line)
		}
		got := SessionIDs(h)
		if len(got) > maxSessionCandidates {
			t.Fatalf("%d candidates", len(got))
		}
		seen := map[string]bool{}
		for _, g := range got {
			if !validSessionID(g) {
				t.Fatalf("invalid id %q returned", g)
			}
			if seen[g] {
				t.Fatalf("duplicate %q", g)
			}
			seen[g] = true
			// Every id returned appears in the input (case-insensitively).
			if !strings.Contains(strings.ToLower(s), g) {
				t.Fatalf("id %q not in the input", g)
			}
		}
		// Every pair visited has a name without separators or "$".
		parseCookies(h.Values("Cookie"), func(name, value string) {
			if name == "" || name[0] == '$' || strings.ContainsAny(name+value, ";,") {
				t.Fatalf("bad pair %q=%q", name, value)
			}
		})
	})
}

func TestNormalizeLogin(t *testing.T) {
	for in, want := range map[string]string{
		"alice":               "alice",
		" alice ":             "alice",
		`EXAMPLE\alice`:       "alice",
		`a\b\alice`:           "alice",
		"alice@example.com":   "alice@example.com",
		`EXAMPLE\`:            "",
		`EXAMPLE\alice@x.org`: "alice@x.org",
	} {
		if got := NormalizeLogin(in); got != want {
			t.Errorf("NormalizeLogin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionCookies(t *testing.T) {
	w := httptest.NewRecorder()
	id := "0123456789abcdef0123456789abcdef"
	SetSessionCookies(w, id, true)
	ExpireSessionCookies(w, false)
	got := w.Header().Values("Set-Cookie")
	want := []string{
		"sessionid=" + id + "; Path=/; HttpOnly; Secure; SameSite=Lax",
		"cadata=" + id + "; Path=/; HttpOnly; Secure; SameSite=Lax",
		"sessionid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0; HttpOnly; SameSite=Lax",
		"cadata=; Path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0; HttpOnly; SameSite=Lax",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Set-Cookie:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A client's jar reads the id back unchanged.
	r := &http.Request{Header: http.Header{"Cookie": {"sessionid=" + id}}}
	if c, err := r.Cookie("sessionid"); err != nil || c.Value != id {
		t.Errorf("round trip: %v %v", c, err)
	}
}

// TestAuthTable drives the middleware through every cell of the auth
// table (exchange-webdav.md §2.2) with the real session authenticator.
func TestAuthTable(t *testing.T) {
	f, s := sessionFixture(t, SessionOptions{})
	live := login(t, s, "alice", "alice-pw")
	stale := login(t, s, "bob", "bob-pw")
	s.Logout(stale)

	sl := &sleeps{}
	var logs bytes.Buffer
	forms := &FormsOptions{Prefix: "/exchange/", LogonURL: func(r *http.Request) string {
		return "http://logon.example/owalogon.asp?url=" + r.URL.Path
	}}
	mw := NewBasic(f.users, zerolog.New(&logs), BasicOptions{Before: []Authenticator{s}, Forms: forms, Sleep: sl.sleep})
	plain := NewBasic(f.users, zerolog.New(&logs), BasicOptions{Before: []Authenticator{s}, Sleep: sl.sleep})
	h := func(b *Basic) http.Handler {
		return b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "user="+reqlog.User(r.Context()))
		}))
	}
	type cred int
	const (
		none cred = iota
		basicOK
		basicBad
		cookieOK
		cookieStale
		staleAndBasic // a stale cookie along with good Basic credentials
	)
	do := func(b *Basic, method, path string, c cred, hdr ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, nil)
		r = r.WithContext(reqlog.With(r.Context(), &reqlog.Entry{ID: "t", Log: zerolog.New(&logs)}))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		switch c {
		case basicOK:
			r.Header.Set("Authorization", basicHeader("alice", "alice-pw"))
		case basicBad:
			r.Header.Set("Authorization", basicHeader("alice", "nope"))
		case cookieOK:
			r.Header.Add("Cookie", "$Version=1; sessionid=\""+live+"\"; $Path=\"/\"")
		case cookieStale:
			r.Header.Add("Cookie", "sessionid="+stale)
			r.Header.Add("Cookie", "cadata="+stale)
		case staleAndBasic:
			r.Header.Set("Cookie", "sessionid="+stale)
			r.Header.Set("Authorization", basicHeader("alice", "alice-pw"))
		}
		w := httptest.NewRecorder()
		h(b).ServeHTTP(w, r)
		return w
	}
	expectServed := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != 200 || w.Body.String() != "user=alice" {
			t.Errorf("want served as alice, got %d %q", w.Code, w.Body.String())
		}
	}
	expectLogon := func(w *httptest.ResponseRecorder, path string) {
		t.Helper()
		if w.Code != http.StatusFound || w.Header().Get("Location") != "http://logon.example/owalogon.asp?url="+path {
			t.Errorf("want 302 to the logon page, got %d Location %q", w.Code, w.Header().Get("Location"))
		}
		if w.Header().Get("WWW-Authenticate") != "" {
			t.Error("redirect carries a Basic challenge")
		}
	}
	expect401 := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("want 401 Basic, got %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	expect440 := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != StatusLoginTimeout {
			t.Errorf("want 440, got %d", w.Code)
		}
		if w.Header().Get("WWW-Authenticate") != "" {
			t.Error("440 carries a Basic challenge")
		}
	}
	expectExpired := func(w *httptest.ResponseRecorder) {
		t.Helper()
		sc := strings.Join(w.Header().Values("Set-Cookie"), "\n")
		if !strings.Contains(sc, "sessionid=; ") || !strings.Contains(sc, "cadata=; ") || !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("stale cookies not expired: %q", sc)
		}
	}
	noDelay := func(what string, n int) {
		t.Helper()
		if len(sl.d) != n {
			t.Errorf("%s: delayed (%v)", what, sl.d)
		}
	}

	// Row 1: GET/HEAD under /exchange without Translate: f.
	for _, m := range []string{"GET", "HEAD"} {
		for _, p := range []string{"/exchange/", "/exchange", "/exchange/alice/Inbox/"} {
			expectLogon(do(mw, m, p, none), p)
			w := do(mw, m, p, cookieStale)
			expectLogon(w, p)
			expectExpired(w)
			expectServed(do(mw, m, p, basicOK))
			expectServed(do(mw, m, p, cookieOK))
			expectServed(do(mw, m, p, staleAndBasic))
		}
	}
	noDelay("row 1", 0)
	expect401(do(mw, "GET", "/exchange/", basicBad))
	if sl.last() <= 0 {
		t.Error("wrong Basic password on a GET was not delayed")
	}
	n := len(sl.d)

	// Row 2: everything else.
	for _, c := range []struct{ method, path, translate string }{
		{"PROPFIND", "/exchange/alice/", ""},
		{"SEARCH", "/exchange/alice/Inbox/", ""},
		{"GET", "/exchange/alice/Inbox/1.EML", "f"},
		{"GET", "/exchange/alice/Inbox/1.EML", " F "},
		{"PROPFIND", "/public/", ""},
		{"GET", "/public/", ""},
		{"GET", "/exchangeX/", ""},
		{"POST", "/exchange/alice/##DavMailSubmissionURI##/", ""},
	} {
		hdr := []string{}
		if c.translate != "" {
			hdr = append(hdr, "Translate", c.translate)
		}
		expect401(do(mw, c.method, c.path, none, hdr...))
		w := do(mw, c.method, c.path, cookieStale, hdr...)
		expect440(w)
		expectExpired(w)
		expectServed(do(mw, c.method, c.path, basicOK, hdr...))
		expectServed(do(mw, c.method, c.path, cookieOK, hdr...))
		expectServed(do(mw, c.method, c.path, staleAndBasic, hdr...))
	}
	noDelay("row 2", n)
	expect401(do(mw, "PROPFIND", "/exchange/alice/", basicBad))
	if len(sl.d) != n+1 {
		t.Error("wrong Basic password on PROPFIND was not delayed")
	}

	// Without Forms: plain Basic, but a stale session is still a 440.
	expect401(do(plain, "GET", "/exchange/", none))
	expect440(do(plain, "GET", "/exchange/", cookieStale))
	expect440(do(plain, "PROPFIND", "/exchange/alice/", cookieStale))
	expectServed(do(plain, "PROPFIND", "/exchange/alice/", cookieOK))

	// The session ids never reach the logs.
	for _, id := range []string{live, stale} {
		if strings.Contains(logs.String(), id) {
			t.Errorf("log holds a session id:\n%s", logs.String())
		}
	}
}

func TestLoginFailedSkipsGoneClients(t *testing.T) {
	f := newFixture(t, Options{})
	sl := &sleeps{}
	b := NewBasic(f.users, zerolog.Nop(), BasicOptions{Sleep: sl.sleep})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
	if b.LoginFailed(r, "alice", ErrBadCredentials) {
		t.Error("LoginFailed for a gone client reported true")
	}
	if u, a := b.Throttle().Len(); u != 0 || a != 0 || len(sl.d) != 0 {
		t.Errorf("gone client counted: %d %d %v", u, a, sl.d)
	}
	r = httptest.NewRequest("POST", "/", nil)
	if !b.LoginFailed(r, "alice", ErrBadCredentials) || sl.last() != DefaultFailDelay {
		t.Errorf("LoginFailed: delays %v", sl.d)
	}
}
