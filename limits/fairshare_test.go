package limits

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// fakeClock is a settable clock for deterministic windows and buckets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at a time aligned on the default 5 s slot, so the
// slot arithmetic in the tests is exact.
func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000_020, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuf collects the limiter's log events.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// events returns the logged events with the given message.
func (l *logBuf) events(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if ev["message"] == msg {
			out = append(out, ev)
		}
	}
	return out
}

// harness is a limiter in front of a handler on a real server, with the
// layers of internal/server: a reqlog entry per request (the access
// log), Wrap, a stand-in auth that takes the user from X-Test-User, Gate.
type harness struct {
	l     *Limiter
	srv   *httptest.Server
	log   *logBuf
	clock *fakeClock
	// last holds the reqlog entry of each request by X-Test-Id.
	mu   sync.Mutex
	last map[string]*reqlog.Entry
}

func newHarness(t *testing.T, o Options, h http.Handler) *harness {
	t.Helper()
	hs := &harness{log: &logBuf{}, clock: newClock(), last: map[string]*reqlog.Entry{}}
	if o.Now == nil {
		o.Now = hs.clock.Now
	}
	o.Logger = zerolog.New(hs.log)
	hs.l = NewLimiter(o)
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-Test-User"); u != "" {
				reqlog.From(r.Context()).User = u
			}
			next.ServeHTTP(w, r)
		})
	}
	chain := hs.l.Wrap(auth(hs.l.Gate(h)))
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &reqlog.Entry{Log: zerolog.New(hs.log)}
		if id := r.Header.Get("X-Test-Id"); id != "" {
			e.ID = id
			hs.mu.Lock()
			hs.last[id] = e
			hs.mu.Unlock()
		}
		chain.ServeHTTP(w, r.WithContext(reqlog.With(r.Context(), e)))
	}))
	t.Cleanup(hs.srv.Close)
	return hs
}

// result is one response, read whole.
type result struct {
	status int
	retry  string
	body   string
	header http.Header
	err    error
}

// do sends one request as user ("" for none) and reads the answer.
func (hs *harness) do(t *testing.T, method, path, user, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, hs.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	req.Header.Set("User-Agent", "limits-test/1.0")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hs.srv.Client().Do(req)
	if err != nil {
		// Status 0: every caller's status check fails on it, but for the
		// one test whose handler aborts a connection on purpose.
		return result{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), body: string(b), header: resp.Header}
}

// TestTimeBudget: requests that each take 4 s of handler time exhaust a
// 10 s budget on the third; the fourth is refused with 429 and a
// Retry-After computed from the window (the first slot leaves it 48 s
// later), then admitted once that time has passed.
func TestTimeBudget(t *testing.T) {
	var hs *harness
	hs = newHarness(t, Options{User: Quota{Budget: 10 * time.Second}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.clock.Advance(4 * time.Second)
		w.WriteHeader(http.StatusNoContent)
	}))
	for i := range 3 {
		if got := hs.do(t, "GET", "/x", "alice", ""); got.status != http.StatusNoContent {
			t.Fatalf("request %d: %d %s", i+1, got.status, got.body)
		}
	}
	u, ok := hs.l.Usage("alice")
	if !ok || u.Used != 12*time.Second {
		t.Fatalf("usage = %+v, %v; want 12s used", u, ok)
	}
	got := hs.do(t, "GET", "/x", "alice", "", "X-Test-Id", "r4")
	if got.status != http.StatusTooManyRequests || got.retry != "48" {
		t.Fatalf("over budget: %d Retry-After %q %s; want 429 and 48", got.status, got.retry, got.body)
	}
	if !strings.Contains(got.body, "user-time-budget") {
		t.Errorf("body %q does not name the limit", got.body)
	}
	e := hs.last["r4"]
	if e.Limit != "user-time-budget" || e.LimitValue != 10000 || e.LimitSize != 12000 {
		t.Errorf("reqlog entry: limit %q value %d size %d", e.Limit, e.LimitValue, e.LimitSize)
	}
	evs := hs.log.events(t, "throttled")
	if len(evs) != 1 || evs[0]["user"] != "alice" || evs[0]["ua"] != "limits-test/1.0" || evs[0]["remote"] == "" || evs[0]["limit_value"] != float64(10000) {
		t.Errorf("throttled events = %v", evs)
	}
	hs.clock.Advance(47 * time.Second)
	if got := hs.do(t, "GET", "/x", "alice", ""); got.status != http.StatusTooManyRequests {
		t.Errorf("1 s before Retry-After: %d, want 429", got.status)
	}
	hs.clock.Advance(time.Second)
	if got := hs.do(t, "GET", "/x", "alice", ""); got.status != http.StatusNoContent {
		t.Errorf("at Retry-After: %d %s, want 204", got.status, got.body)
	}
	// Another user has a budget of their own.
	if got := hs.do(t, "GET", "/x", "bob", ""); got.status != http.StatusNoContent {
		t.Errorf("bob: %d", got.status)
	}
}

// TestRateBucket: 2 requests/s with a burst of 3.
func TestRateBucket(t *testing.T) {
	hs := newHarness(t, Options{User: Quota{Rate: 2, Burst: 3}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range 3 {
		if got := hs.do(t, "GET", "/", "alice", ""); got.status != 200 {
			t.Fatalf("burst request %d: %d", i, got.status)
		}
	}
	got := hs.do(t, "GET", "/", "alice", "")
	if got.status != http.StatusTooManyRequests || got.retry != "1" || !strings.Contains(got.body, "user-rate") {
		t.Fatalf("past the burst: %d %q %s", got.status, got.retry, got.body)
	}
	hs.clock.Advance(500 * time.Millisecond)
	if got := hs.do(t, "GET", "/", "alice", ""); got.status != 200 {
		t.Fatalf("after refill: %d", got.status)
	}
	if got := hs.do(t, "GET", "/", "alice", ""); got.status != http.StatusTooManyRequests {
		t.Fatalf("bucket empty again: %d", got.status)
	}
}

// blocker is a handler that holds requests until released, counting
// how many started.
type blocker struct {
	mu      sync.Mutex
	started int
	release chan struct{}
	running chan struct{}
}

func newBlocker() *blocker {
	return &blocker{release: make(chan struct{}), running: make(chan struct{}, 100)}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.started++
	b.mu.Unlock()
	b.running <- struct{}{}
	select {
	case <-b.release:
	case <-time.After(10 * time.Second): // a test bug must not hang the run
	}
	io.Copy(io.Discard, r.Body)
	w.WriteHeader(207)
	fmt.Fprintf(w, "<multistatus>%s %s</multistatus>", r.Method, r.URL.Path)
}

func (b *blocker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

// waitRunning waits for n requests to be inside the handler.
func (b *blocker) waitRunning(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.running:
		case <-time.After(5 * time.Second):
			t.Fatalf("requests did not reach the handler")
		}
	}
}

// TestConcurrencyCaps: per user, per address and server-wide.
func TestConcurrencyCaps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    Options
		users  [3]string // the two held requests, then the probe
		status int
		limit  string
	}{
		{"user", Options{User: Quota{Concurrent: 2}}, [3]string{"alice", "alice", "alice"}, 429, "user-max-concurrent"},
		{"ip", Options{IPConcurrent: 2}, [3]string{"alice", "bob", "carol"}, 429, "ip-max-concurrent"},
		{"server", Options{MaxInFlight: 2}, [3]string{"alice", "bob", ""}, 503, "max-in-flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlocker()
			hs := newHarness(t, tc.opt, b)
			var wg sync.WaitGroup
			for _, u := range tc.users[:2] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got := hs.do(t, "GET", "/held", u, ""); got.status != 207 {
						t.Errorf("held request of %s: %d", u, got.status)
					}
				}()
			}
			b.waitRunning(t, 2)
			got := hs.do(t, "GET", "/probe", tc.users[2], "")
			if got.status != tc.status || got.retry == "" || !strings.Contains(got.body, tc.limit) {
				t.Errorf("third request: %d Retry-After %q %s; want %d naming %s", got.status, got.retry, got.body, tc.status, tc.limit)
			}
			if tc.name == "user" {
				// Another user is admitted while alice is at her cap.
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got := hs.do(t, "GET", "/other", "bob", ""); got.status != 207 {
						t.Errorf("another user: %d, want 207", got.status)
					}
				}()
				b.waitRunning(t, 1)
			}
			close(b.release)
			wg.Wait()
			if got := hs.do(t, "GET", "/after", tc.users[2], ""); got.status != 207 {
				t.Errorf("after release: %d %s", got.status, got.body)
			}
			if n := hs.l.InFlight(); n != 0 {
				t.Errorf("in flight after all ended: %d", n)
			}
		})
	}
}

// TestIPRate: the address stage refuses before any user is known.
func TestIPRate(t *testing.T) {
	hs := newHarness(t, Options{IPRate: 1, IPBurst: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 2 {
		if got := hs.do(t, "GET", "/", "", ""); got.status != 200 {
			t.Fatalf("within burst: %d", got.status)
		}
	}
	got := hs.do(t, "GET", "/", "", "")
	if got.status != 429 || !strings.Contains(got.body, "ip-rate") {
		t.Fatalf("past the address burst: %d %s", got.status, got.body)
	}
	if hs.l.IPsLen() != 1 || hs.l.UsersLen() != 0 {
		t.Errorf("tables: %d addresses, %d users; want 1, 0", hs.l.IPsLen(), hs.l.UsersLen())
	}
}

// TestOverrides: a map entry and a func give users their own share;
// zero fields inherit the default.
func TestOverrides(t *testing.T) {
	l := NewLimiter(Options{
		User:      Quota{Budget: time.Minute, Concurrent: 4, Rate: 10, Burst: 20},
		Overrides: map[string]Quota{"batch": {Budget: 10 * time.Minute}},
		Override: func(user string) (Quota, bool) {
			if strings.HasPrefix(user, "svc-") {
				return Quota{Concurrent: -1, Rate: -1}, true
			}
			return Quota{}, false
		},
	})
	for _, tc := range []struct {
		user string
		want Quota
	}{
		{"alice", Quota{Budget: time.Minute, Concurrent: 4, Rate: 10, Burst: 20}},
		{"batch", Quota{Budget: 10 * time.Minute, Concurrent: 4, Rate: 10, Burst: 20}},
		{"svc-sync", Quota{Budget: time.Minute, Concurrent: -1, Rate: -1, Burst: 20}},
	} {
		if got := l.quotaOf(tc.user); got != tc.want {
			t.Errorf("quota of %s = %+v, want %+v", tc.user, got, tc.want)
		}
	}
	// Unlimited concurrency and rate really admit everything.
	st, e := l.checkUser("svc-sync", time.Now())
	if e != nil {
		t.Fatal(e)
	}
	for i := range 100 {
		if _, e := l.checkUser("svc-sync", time.Now()); e != nil {
			t.Fatalf("rate -1 refused request %d: %v", i, e)
		}
		if e := l.takeUser("svc-sync", st); e != nil {
			t.Fatalf("concurrency -1 refused request %d: %v", i, e)
		}
	}
}

// TestTablesBounded: a flood of distinct users and addresses never grows
// the tables past their cap, and busy entries are evicted last.
func TestTablesBounded(t *testing.T) {
	const max = 64
	l := NewLimiter(Options{MaxKeys: max})
	now := time.Now()
	busy, e := l.checkUser("busy", now)
	if e != nil {
		t.Fatal(e)
	}
	if e := l.takeUser("busy", busy); e != nil {
		t.Fatal(e)
	}
	for i := range 10000 {
		if _, e := l.checkUser(fmt.Sprintf("user%d", i), now); e != nil {
			t.Fatal(e)
		}
		st, e := l.admitIP(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
		if e != nil {
			t.Fatal(e)
		}
		l.releaseIP(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), st)
	}
	if n := l.UsersLen(); n > max || n == 0 {
		t.Errorf("users table holds %d, cap %d", n, max)
	}
	if n := l.IPsLen(); n > max || n == 0 {
		t.Errorf("address table holds %d, cap %d", n, max)
	}
	// The busy user's slot is given back on the entry it was taken on,
	// whether or not the table still holds it: no negative counts.
	l.releaseUser("busy", busy)
	if busy.inflight != 0 {
		t.Errorf("busy user's count after release: %d", busy.inflight)
	}
	t.Logf("after 10,000 users and addresses: %d users, %d addresses (cap %d)", l.UsersLen(), l.IPsLen(), max)
}

// TestGateWithoutUser: unauthenticated requests pass Gate untouched.
func TestGateWithoutUser(t *testing.T) {
	hs := newHarness(t, Options{User: Quota{Rate: 1, Burst: 1}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 5 {
		if got := hs.do(t, "GET", "/", "", ""); got.status != 200 {
			t.Fatalf("anonymous: %d", got.status)
		}
	}
}

// TestChargeLate: a user known only after the handler (a route outside
// Gate) is charged by Wrap, and refused on its next gated request.
func TestChargeLate(t *testing.T) {
	clock := newClock()
	l := NewLimiter(Options{Now: clock.Now, User: Quota{Budget: time.Second}})
	login := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(2 * time.Second) // a slow login
		reqlog.From(r.Context()).User = "alice"
	}))
	e := &reqlog.Entry{Log: zerolog.Nop()}
	req := httptest.NewRequest("POST", "/owa/auth.owa", nil).WithContext(reqlog.With(context.Background(), e))
	login.ServeHTTP(httptest.NewRecorder(), req)
	u, ok := l.Usage("alice")
	if !ok || u.Used != 2*time.Second {
		t.Fatalf("usage after login = %+v, %v", u, ok)
	}
	gated := l.Gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	e2 := &reqlog.Entry{User: "alice", Log: zerolog.Nop()}
	rec := httptest.NewRecorder()
	gated.ServeHTTP(rec, httptest.NewRequest("GET", "/exchange/alice/", nil).WithContext(reqlog.With(context.Background(), e2)))
	if rec.Code != 429 || e2.Limit != "user-time-budget" {
		t.Errorf("gated request after an expensive login: %d, limit %q", rec.Code, e2.Limit)
	}
}

// TestWindowRetryAfter checks the window arithmetic alone: charges in
// several slots, and the wait until enough of them have left.
func TestWindowRetryAfter(t *testing.T) {
	slot := 5 * time.Second
	var w window
	base := int64(1000)
	w.add(base, 3*time.Second)   // leaves at slot base+12
	w.add(base+2, 3*time.Second) // leaves at slot base+14
	w.add(base+5, 3*time.Second)
	cur := base + 6
	now := time.Unix(0, cur*int64(slot)+int64(time.Second)) // 1 s into slot cur
	if got := w.sum(cur); got != 9*time.Second {
		t.Fatalf("sum = %v", got)
	}
	// Budget 5 s: two slots must leave (9-3-3 = 3 < 5): slot base+2
	// leaves when base+14 begins, 8 slots after cur began, minus 1 s.
	if got, want := w.retryAfter(cur, 5*time.Second, slot, now), 8*slot-time.Second; got != want {
		t.Errorf("retryAfter = %v, want %v", got, want)
	}
	// Slots older than the window no longer count.
	if got := w.sum(base + 13); got != 6*time.Second {
		t.Errorf("sum a window later = %v, want 6s", got)
	}
}
