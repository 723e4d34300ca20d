package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
)

func TestThrottleGrowsAndIsPerUser(t *testing.T) {
	c := newClock()
	th := NewThrottle(ThrottleOptions{Now: c.Now})
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		// Rotate nothing: same user, same address.
		if d := th.Fail("alice", "192.0.2.1"); d != w {
			t.Errorf("failure %d: delay %v, want %v", i+1, d, w)
		}
	}
	// Another user from another address is not slowed down by alice's.
	if d := th.Fail("bob", "198.51.100.7"); d != 500*time.Millisecond {
		t.Errorf("bob: delay %v, want 500ms", d)
	}
	// The attacker's address is slowed down whatever name it tries.
	if d := th.Fail("carol", "192.0.2.1"); d != 8*time.Second {
		t.Errorf("carol from the attacking address: delay %v, want 8s", d)
	}
	// Alice attacked from a fresh address still gets her own delay.
	if d := th.Fail("alice", "203.0.113.9"); d != 8*time.Second {
		t.Errorf("alice from another address: delay %v, want 8s", d)
	}
	// Decay: after two quiet minutes the level drops by two.
	c.Add(2*DefaultFailDecay + time.Second)
	if d := th.Fail("alice", ""); d != 4*time.Second {
		t.Errorf("after 2 quiet minutes: delay %v, want 4s (8s halved twice, then one failure)", d)
	}
	c.Add(time.Hour)
	if d := th.Fail("alice", ""); d != 500*time.Millisecond {
		t.Errorf("after an hour: delay %v, want 500ms", d)
	}
}

func TestThrottleCap(t *testing.T) {
	c := newClock()
	th := NewThrottle(ThrottleOptions{Now: c.Now, MaxKeys: 3})
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		th.Fail(u, "ip-"+u)
		c.Add(time.Millisecond)
	}
	if u, a := th.Len(); u != 3 || a != 3 {
		t.Errorf("Len = %d users, %d addrs; want 3, 3", u, a)
	}
	// "a" was evicted, so it starts over; "e" was kept.
	if d := th.Fail("a", ""); d != 500*time.Millisecond {
		t.Errorf("evicted a: %v, want 500ms", d)
	}
	if d := th.Fail("e", ""); d != time.Second {
		t.Errorf("kept e: %v, want 1s", d)
	}
}

func basicHeader(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestParseBasic(t *testing.T) {
	good := func(h, user, pw string) {
		t.Helper()
		u, p, ok, err := ParseBasic(h)
		if !ok || err != nil || u != user || p != pw {
			t.Errorf("ParseBasic(%q) = %q, %q, %v, %v; want %q, %q", h, u, p, ok, err, user, pw)
		}
	}
	bad := func(h string) {
		t.Helper()
		if _, _, ok, err := ParseBasic(h); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseBasic(%q): ok=%v err=%v, want ErrMalformed", h, ok, err)
		}
	}
	other := func(h string) {
		t.Helper()
		if _, _, ok, err := ParseBasic(h); ok || err != nil {
			t.Errorf("ParseBasic(%q): ok=%v err=%v, want not Basic", h, ok, err)
		}
	}
	good(basicHeader("alice", "pw"), "alice", "pw")
	good("basic "+base64.StdEncoding.EncodeToString([]byte("a:b")), "a", "b") // RFC 7617 §2: scheme is case-insensitive
	good("BASIC  "+base64.StdEncoding.EncodeToString([]byte("a:b")), "a", "b")
	good(basicHeader("alice", "p:w:d"), "alice", "p:w:d")         // colons in the password
	good(basicHeader("alice", ""), "alice", "")                   // empty password parses (and fails Verify)
	good(basicHeader("jürgen", "pässwörd"), "jürgen", "pässwörd") // UTF-8
	good("Basic "+base64.RawStdEncoding.EncodeToString([]byte("alice:pw")), "alice", "pw")
	good("Basic "+base64.StdEncoding.EncodeToString([]byte("alice:\xe9t\xe9")), "alice", "\xe9t\xe9") // Latin-1 password: bytes kept

	bad("Basic")
	bad("Basic ")
	bad("Basic !!!!")
	bad("Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")))
	bad("Basic " + base64.StdEncoding.EncodeToString([]byte("\xff\xfe:pw")))
	bad("Basic " + strings.Repeat("QUFB", maxBasicToken))

	other("")
	other("Bearer abc")
	other("Digest username=\"a\"")
	other("Basically abc")
}

// sleeps records the delays the middleware asked for.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

func (s *sleeps) last() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return -1
	}
	return s.d[len(s.d)-1]
}

// cookieAuth is a stand-in for the OWA session authenticator.
type cookieAuth struct{}

func (cookieAuth) Authenticate(r *http.Request) (string, bool, error) {
	c, err := r.Cookie("sessionid")
	if err != nil {
		return "", false, nil
	}
	if c.Value == "good" {
		return "bob", true, nil
	}
	return "", false, errors.New("unknown session")
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, Options{})
	f.add(t, "alice", "s3cret-pw", "")
	f.tick(t)
	var logs bytes.Buffer
	sl := &sleeps{}
	mw := NewBasic(f.users, zerolog.New(&logs), BasicOptions{Sleep: sl.sleep, Before: []Authenticator{cookieAuth{}}})

	var seenUser string
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenUser = reqlog.User(r.Context())
		io.WriteString(w, "hello "+seenUser)
	}))
	do := func(mod func(*http.Request), remote string) *httptest.ResponseRecorder {
		t.Helper()
		seenUser = ""
		r := httptest.NewRequest("PROPFIND", "/exchange/alice/", nil)
		r.RemoteAddr = remote
		entry := &reqlog.Entry{ID: "test", Log: zerolog.New(&logs)}
		r = r.WithContext(reqlog.With(r.Context(), entry))
		if mod != nil {
			mod(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	auth := func(user, pw string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", basicHeader(user, pw)) }
	}
	check401 := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", w.Code)
		}
		if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="davmail", charset="UTF-8"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		if seenUser != "" {
			t.Error("handler ran for an unauthenticated request")
		}
	}

	// No credentials: 401, no delay, no failure counted.
	check401(do(nil, "192.0.2.1:1234"))
	if len(sl.d) != 0 {
		t.Errorf("delay for a request without credentials: %v", sl.d)
	}

	// Right password: 200 and the user in the reqlog entry.
	w := do(auth("alice", "s3cret-pw"), "192.0.2.1:1234")
	if w.Code != 200 || w.Body.String() != "hello alice" {
		t.Fatalf("good credentials: %d %q", w.Code, w.Body.String())
	}

	// Wrong password: 401 after a growing delay.
	check401(do(auth("alice", "wrong-pw"), "192.0.2.1:1234"))
	if d := sl.last(); d != 500*time.Millisecond {
		t.Errorf("first failure delay %v, want 500ms", d)
	}
	check401(do(auth("alice", "wrong-pw"), "192.0.2.1:1234"))
	if d := sl.last(); d != time.Second {
		t.Errorf("second failure delay %v, want 1s", d)
	}
	// Success is never delayed, even for a user under attack.
	n := len(sl.d)
	if w := do(auth("alice", "s3cret-pw"), "198.51.100.2:1"); w.Code != 200 {
		t.Errorf("good credentials after failures: %d", w.Code)
	}
	if len(sl.d) != n {
		t.Error("a successful login was delayed")
	}
	// Another user from another address starts at the base delay.
	check401(do(auth("bob", "x"), "198.51.100.2:1"))
	if d := sl.last(); d != 500*time.Millisecond {
		t.Errorf("bob's first failure: %v, want 500ms", d)
	}

	// Malformed header: 401, counted against the address.
	check401(do(func(r *http.Request) { r.Header.Set("Authorization", "Basic %%%") }, "192.0.2.1:1234"))
	if d := sl.last(); d != 2*time.Second {
		t.Errorf("malformed from the failing address: %v, want 2s", d)
	}

	// The cookie authenticator runs first.
	w = do(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sessionid", Value: "good"}) }, "203.0.113.5:9")
	if w.Code != 200 || seenUser != "bob" {
		t.Errorf("session cookie: %d user %q", w.Code, seenUser)
	}
	check401(do(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sessionid", Value: "stale"}) }, "203.0.113.5:9"))

	// Logs name the user and address, never the password.
	out := logs.String()
	if !strings.Contains(out, `"user":"alice"`) || !strings.Contains(out, `"remote":"192.0.2.1"`) {
		t.Errorf("failure log lacks user or remote:\n%s", out)
	}
	for _, secret := range []string{"s3cret-pw", "wrong-pw", base64.StdEncoding.EncodeToString([]byte("alice:wrong-pw"))} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains a secret %q:\n%s", secret, out)
		}
	}
}

func TestClientKey(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:443":                "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:80":    "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:1":         "192.0.2.9",
		"not-an-address":               "not-an-address",
		"@":                            "@",
		"[fe80::1%eth0]:5":             "fe80::/64",
		"127.0.0.1:0":                  "127.0.0.1",
		"[2001:db8::1]:8080":           "2001:db8::/64",
		"[2001:db8:0:1::abcd]:8080":    "2001:db8:0:1::/64",
		"[2001:db8:0:1:0:0:0:1]:65535": "2001:db8:0:1::/64",
	} {
		r := &http.Request{RemoteAddr: remote}
		if got := clientKey(r); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestSleepCtxHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		sleepCtx(ctx, time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sleepCtx ignored a cancelled context")
	}
}

func FuzzParseBasic(f *testing.F) {
	f.Add(basicHeader("alice", "pw"))
	f.Add("basic YTpi")
	f.Add("Basic")
	f.Add("Basic ====")
	f.Add("Bearer x")
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("\xff:\x00")))
	f.Fuzz(func(t *testing.T, h string) {
		user, pw, ok, err := ParseBasic(h)
		if !ok && (err != nil || user != "" || pw != "") {
			t.Fatalf("not Basic but returned %q %q %v", user, pw, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if ok && err == nil {
			if strings.Contains(user, ":") {
				t.Fatalf("user %q contains a colon", user)
			}
			// Round trip: re-encoding must parse to the same values.
			u2, p2, ok2, err2 := ParseBasic(basicHeader(user, pw))
			if !ok2 || err2 != nil || u2 != user || p2 != pw {
				t.Fatalf("round trip of %q %q: %q %q %v %v", user, pw, u2, p2, ok2, err2)
			}
		}
	})
}

func FuzzParseLine(f *testing.F) {
	f.Add("alice:$2a$04$abcdefghijklmnopqrstuu5ZzSLQYqGdR7pQ5I0p3wb7A3kk/HUZK")
	f.Add("# comment")
	f.Add("")
	f.Add("alice:$2y$05$x:admin")
	f.Add(".x:y")
	f.Add("a:b:c:d")
	f.Fuzz(func(t *testing.T, line string) {
		usr, ok, err := parseLine(line)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok {
			if !ValidName(usr.Name) {
				t.Fatalf("accepted invalid name %q", usr.Name)
			}
			if usr.Role != RoleUser && usr.Role != RoleAdmin {
				t.Fatalf("accepted role %q", usr.Role)
			}
			if !strings.HasPrefix(string(usr.hash), "$2") {
				t.Fatalf("accepted hash %q", usr.hash)
			}
		}
		// Whole-file parsing never panics either.
		_, _ = parseUsers("fuzz", strings.NewReader(line+"\n"+line))
	})
}
