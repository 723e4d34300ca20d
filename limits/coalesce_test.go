package limits

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/internal/reqlog"
)

// waitWaiters waits until the flight of the only request in flight has
// n waiters (the duplicates have joined), with a deadline.
func waitWaiters(t *testing.T, l *Limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.co.mu.Lock()
		got := 0
		for _, f := range l.co.m {
			got += f.waiters
		}
		l.co.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d duplicates joined, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

// parallel sends n identical requests at once and returns the results.
func parallel(t *testing.T, hs *harness, n int, method, path, user, body string, hdr ...string) []result {
	t.Helper()
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = hs.do(t, method, path, user, body, hdr...)
		}()
	}
	wg.Wait()
	return out
}

// count tallies statuses.
func count(rs []result) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.status]++
	}
	return m
}

// TestCoalesceShare: 20 parallel identical PROPFINDs run the handler once;
// all 20 get the same 207 body.
func TestCoalesceShare(t *testing.T) {
	b := newBlocker()
	hs := newHarness(t, Options{}, b)
	const n = 20
	body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`
	done := make(chan []result)
	go func() { done <- parallel(t, hs, n, "PROPFIND", "/exchange/alice/Inbox/", "alice", body, "Depth", "1") }()
	b.waitRunning(t, 1)
	waitWaiters(t, hs.l, n-1)
	close(b.release)
	rs := <-done
	if got := b.count(); got != 1 {
		t.Errorf("handler ran %d times for %d identical requests, want 1", got, n)
	}
	coalesced := 0
	for i, r := range rs {
		if r.status != 207 || r.body != "<multistatus>PROPFIND /exchange/alice/Inbox/</multistatus>" {
			t.Errorf("response %d: %d %q", i, r.status, r.body)
		}
		if r.header.Get("X-Davmail-Coalesced") == "1" {
			coalesced++
		}
	}
	if coalesced != n-1 {
		t.Errorf("%d responses marked coalesced, want %d", coalesced, n-1)
	}
	if hs.l.FlightsLen() != 0 {
		t.Errorf("%d flights left", hs.l.FlightsLen())
	}
	t.Logf("%d identical PROPFINDs: handler ran %d time(s), %d shared responses", n, b.count(), coalesced)
}

// TestCoalesceRefuseWrites: 20 parallel identical BPROPPATCHes run the
// handler once; the 19 duplicates get 429 with Retry-After.
func TestCoalesceRefuseWrites(t *testing.T) {
	b := newBlocker()
	hs := newHarness(t, Options{}, b)
	const n = 20
	body := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:target><D:href>a.EML</D:href></D:target><D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>`
	done := make(chan []result)
	go func() { done <- parallel(t, hs, n, "BPROPPATCH", "/exchange/alice/Inbox/", "alice", body) }()
	b.waitRunning(t, 1)
	// The duplicates are refused at once: wait for them while the first
	// is still held, then release it.
	deadline := time.Now().Add(5 * time.Second)
	for len(hs.log.events(t, "throttled")) < n-1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // poll interval
	}
	close(b.release)
	rs := <-done
	c := count(rs)
	if b.count() != 1 || c[207] != 1 || c[429] != n-1 {
		t.Fatalf("handler ran %d times; statuses %v; want 1 run, one 207 and %d 429", b.count(), c, n-1)
	}
	for _, r := range rs {
		if r.status == 429 && (r.retry == "" || !strings.Contains(r.body, "duplicate-in-flight")) {
			t.Errorf("refusal without Retry-After or limit: %q %q", r.retry, r.body)
		}
	}
	// Once the first is done, the same request runs again for real.
	if r := hs.do(t, "BPROPPATCH", "/exchange/alice/Inbox/", "alice", body); r.status != 207 || b.count() != 2 {
		t.Errorf("retry after the first ended: %d, handler runs %d", r.status, b.count())
	}
	t.Logf("%d identical BPROPPATCHes: handler ran once, statuses %v", n, c)
}

// TestCoalesceKeys: requests that differ in user, Depth or body are not
// coalesced; a body over the cap passes through whole.
func TestCoalesceKeys(t *testing.T) {
	b := newBlocker()
	hs := newHarness(t, Options{Coalesce: CoalesceOptions{MaxBody: 64}}, b)
	reqs := []struct {
		user, depth, body string
	}{
		{"alice", "1", "<a/>"},
		{"bob", "1", "<a/>"},
		{"alice", "0", "<a/>"},
		{"alice", "1", "<b/>"},
		{"alice", "1", strings.Repeat("x", 100)}, // over MaxBody
		{"alice", "1", strings.Repeat("x", 100)}, // not keyed: runs too
	}
	var wg sync.WaitGroup
	for _, rq := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := hs.do(t, "PROPFIND", "/p", rq.user, rq.body, "Depth", rq.depth); r.status != 207 {
				t.Errorf("%+v: %d", rq, r.status)
			}
		}()
	}
	b.waitRunning(t, len(reqs))
	close(b.release)
	wg.Wait()
	if b.count() != len(reqs) {
		t.Errorf("handler ran %d times for %d distinct requests", b.count(), len(reqs))
	}
}

// TestCoalesceBodyIntact: the handler reads the exact body, short or
// over the digest cap.
func TestCoalesceBodyIntact(t *testing.T) {
	var got []string
	var mu sync.Mutex
	hs := newHarness(t, Options{Coalesce: CoalesceOptions{MaxBody: 64}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := readAll(r)
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}))
	bodies := []string{"", "<short/>", strings.Repeat("y", 64), strings.Repeat("z", 65), strings.Repeat("w", 100000)}
	for _, body := range bodies {
		hs.do(t, "PROPFIND", "/p", "alice", body)
	}
	if len(got) != len(bodies) {
		t.Fatalf("%d bodies seen", len(got))
	}
	for i := range bodies {
		if got[i] != bodies[i] {
			t.Errorf("body %d: handler read %d bytes, sent %d", i, len(got[i]), len(bodies[i]))
		}
	}
}

func readAll(r *http.Request) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// TestCoalesceLeaderPanics: waiters of a leader that panics are refused,
// not left hanging, and the flight is gone.
func TestCoalesceLeaderPanics(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	hs := newHarness(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		panic(http.ErrAbortHandler)
	}))
	const n = 5
	done := make(chan []result)
	go func() { done <- parallel(t, hs, n, "SEARCH", "/s", "alice", "<q/>") }()
	<-started
	waitWaiters(t, hs.l, n-1)
	close(release)
	select {
	case rs := <-done:
		if c := count(rs); c[429] != n-1 {
			t.Errorf("statuses %v, want %d 429 (and one broken connection)", c, n-1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiters hang after the leader panicked")
	}
	if hs.l.FlightsLen() != 0 {
		t.Errorf("%d flights left", hs.l.FlightsLen())
	}
}

// TestCoalesceTooLargeToShare: a response over MaxShare is not kept; its
// waiters are refused rather than re-run.
func TestCoalesceTooLargeToShare(t *testing.T) {
	b := newBlocker()
	hs := newHarness(t, Options{Coalesce: CoalesceOptions{MaxShare: 10}}, b)
	done := make(chan []result)
	go func() { done <- parallel(t, hs, 3, "PROPFIND", "/big/", "alice", "<a/>") }()
	b.waitRunning(t, 1)
	waitWaiters(t, hs.l, 2)
	close(b.release)
	if c := count(<-done); c[207] != 1 || c[429] != 2 || b.count() != 1 {
		t.Errorf("statuses %v, handler runs %d", c, b.count())
	}
}

// streamer writes its status and a first block, waits for release, then
// writes size bytes in all (a pattern that differs at every offset).
type streamer struct {
	size     int
	wrote    chan struct{}
	release  chan struct{}
	runs     atomic.Int32
	waitLate bool // wait for release after the first block (else before the status)
}

func streamBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.runs.Add(1)
	io.Copy(io.Discard, r.Body)
	body := streamBody(s.size)
	if !s.waitLate {
		<-s.release
	}
	w.WriteHeader(207)
	first := min(len(body), 1000)
	w.Write(body[:first])
	w.(http.Flusher).Flush()
	if s.waitLate {
		close(s.wrote)
		<-s.release
	}
	for rest := body[first:]; len(rest) > 0; {
		n := min(len(rest), 3000) // odd sizes: blocks straddle chunks
		w.Write(rest[:n])
		rest = rest[n:]
	}
}

// TestCoalesceShareSpansChunks: a shared response of several chunks (kept
// in fixed blocks) reaches every duplicate byte for byte.
func TestCoalesceShareSpansChunks(t *testing.T) {
	s := &streamer{size: 3*shareChunk + 123, release: make(chan struct{})}
	hs := newHarness(t, Options{}, s)
	done := make(chan []result)
	go func() {
		done <- parallel(t, hs, 4, "PROPFIND", "/exchange/alice/Inbox/", "alice", "<a/>", "Depth", "1")
	}()
	waitWaiters(t, hs.l, 3)
	close(s.release)
	want := string(streamBody(s.size))
	for i, r := range <-done {
		if r.status != 207 || r.body != want {
			t.Errorf("response %d: %d, %d bytes, equal %v", i, r.status, len(r.body), r.body == want)
		}
	}
	if n := s.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times", n)
	}
}

// TestCoalesceLateDuplicate: when the first response started with nobody
// waiting, nothing is kept; a duplicate arriving then is refused at once
// (429, Retry-After) instead of waiting for a copy that does not exist,
// and once the first is done the same request runs again.
func TestCoalesceLateDuplicate(t *testing.T) {
	s := &streamer{size: 5000, wrote: make(chan struct{}), release: make(chan struct{}), waitLate: true}
	hs := newHarness(t, Options{}, s)
	first := make(chan result)
	go func() { first <- hs.do(t, "PROPFIND", "/exchange/alice/Inbox/", "alice", "<a/>", "Depth", "1") }()
	<-s.wrote
	dup := make(chan result)
	go func() { dup <- hs.do(t, "PROPFIND", "/exchange/alice/Inbox/", "alice", "<a/>", "Depth", "1") }()
	select {
	case r := <-dup:
		if r.status != http.StatusTooManyRequests || r.retry == "" {
			t.Errorf("late duplicate: %d, Retry-After %q; want 429 with Retry-After", r.status, r.retry)
		}
		close(s.release)
	case <-time.After(5 * time.Second): // it would wait MaxWait (a minute)
		t.Error("the late duplicate waits for the first instead of being refused at once")
		close(s.release)
		<-dup
	}
	if r := <-first; r.status != 207 || r.body != string(streamBody(s.size)) {
		t.Errorf("first: %d, %d bytes", r.status, len(r.body))
	}
	s.waitLate = false // the release is closed: the rerun does not block
	if r := hs.do(t, "PROPFIND", "/exchange/alice/Inbox/", "alice", "<a/>", "Depth", "1"); r.status != 207 {
		t.Errorf("rerun after the first finished: %d", r.status)
	}
	if n := s.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (first, rerun)", n)
	}
	if hs.l.FlightsLen() != 0 {
		t.Errorf("%d flights left", hs.l.FlightsLen())
	}
}

// TestCoalesceKeepsNothingAlone: a listing with no duplicate is not
// copied. Bytes allocated per request stay far below the response size
// (before, every response up to MaxShare was copied into a buffer that
// grew by doubling: about twice its size per request).
func TestCoalesceKeepsNothingAlone(t *testing.T) {
	const size = 4 << 20
	body := streamBody(size)
	l := NewLimiter(Options{Logger: zerolog.Nop()})
	h := l.Gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(207)
		for rest := body; len(rest) > 0; rest = rest[min(len(rest), 64<<10):] {
			w.Write(rest[:min(len(rest), 64<<10)])
		}
	}))
	serve := func() {
		req := httptest.NewRequest("PROPFIND", "/exchange/alice/Inbox/", strings.NewReader("<a/>"))
		req = req.WithContext(reqlog.With(req.Context(), &reqlog.Entry{User: "alice", Log: zerolog.Nop()}))
		h.ServeHTTP(discardWriter{header: http.Header{}}, req)
	}
	serve()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 5
	for range n {
		serve()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > size/8 {
		t.Errorf("%d bytes allocated per %d-byte response with no duplicate waiting", per, size)
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// TestCoalesceOverShareRefusesLateJoiners: once the first response has
// grown past MaxShare, a duplicate arriving is refused at once instead of
// waiting for a copy that will not be kept; the one that waited from the
// start is refused at the end, as before.
func TestCoalesceOverShareRefusesLateJoiners(t *testing.T) {
	start, mid, wrote := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	hs := newHarness(t, Options{Coalesce: CoalesceOptions{MaxShare: 500}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		io.Copy(io.Discard, r.Body)
		<-start
		w.WriteHeader(207)
		w.Write(make([]byte, 1000)) // over MaxShare
		w.(http.Flusher).Flush()
		close(wrote)
		<-mid
	}))
	req := func() result { return hs.do(t, "PROPFIND", "/big/", "alice", "<a/>") }
	early := make(chan result, 2)
	go func() { early <- req() }()
	go func() { early <- req() }()
	waitWaiters(t, hs.l, 1)
	close(start)
	<-wrote
	late := make(chan result, 1)
	go func() { late <- req() }()
	select {
	case r := <-late:
		if r.status != http.StatusTooManyRequests || r.retry == "" {
			t.Errorf("late duplicate: %d, Retry-After %q", r.status, r.retry)
		}
	case <-time.After(5 * time.Second): // it would wait for the end
		t.Error("a duplicate of a response already over MaxShare waits instead of being refused")
	}
	close(mid)
	if c := count([]result{<-early, <-early}); c[207] != 1 || c[429] != 1 || runs.Load() != 1 {
		t.Errorf("the first two: statuses %v, handler runs %d", c, runs.Load())
	}
}
