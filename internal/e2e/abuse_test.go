package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/server"
	"github.com/rs/zerolog"
)

// startServerWith is startServer with a hook on the configuration (the
// hostile-input test needs short timeouts): same corpus, users, 5xx trap
// and shutdown checks. Log lines containing known5xx (when not "") bypass
// the 5xx trap: a server bug already reported, whose test skips.
func startServerWith(t *testing.T, known5xx string, tune func(*config.Config)) *testServer {
	t.Helper()
	mk := mkcorpusBinary(t)
	tmp := t.TempDir()
	served := filepath.Join(tmp, "maildir")
	args := append([]string{"-out", served, "-users", strings.Join(testUsers, ",")}, smallCorpus...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, mk, args...).CombinedOutput(); err != nil {
		t.Fatalf("mkcorpus: %v\n%s", err, out)
	}
	corpus := filepath.Join(tmp, "corpus")
	if err := linkTree(served, corpus); err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(tmp, "users")
	pw := map[string]string{}
	for _, u := range testUsers {
		pw[u] = randomPassword(t)
		if err := auth.AddUser(usersFile, u, pw[u], auth.RoleUser); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Listen, cfg.Data, cfg.MaildirRoot, cfg.Users = ln.Addr().String(), filepath.Join(tmp, "data"), served, usersFile
	tune(&cfg)
	trap := &serverErrors{w: zerolog.NewTestWriter(t)}
	var logw io.Writer = trap
	if known5xx != "" {
		logw = bypass{trap: trap, direct: zerolog.NewTestWriter(t), known: known5xx}
	}
	srv, err := server.New(cfg, zerolog.New(logw).With().Timestamp().Logger())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // as startServer
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
		if n := srv.Panics(); n != 0 {
			t.Errorf("the server recovered %d handler panics", n)
		}
		if n, lines := trap.list(); n > 0 {
			t.Errorf("the server answered %d requests with a 5xx:\n%s", n, strings.Join(lines, "\n"))
		}
	})
	ts := &testServer{URL: "http://" + ln.Addr().String(), Corpus: corpus, Passwords: pw}
	waitReady(t, ts)
	return ts
}

// bypass sends log lines containing known straight to the test log, the
// rest through the 5xx trap.
type bypass struct {
	trap   *serverErrors
	direct io.Writer
	known  string
}

func (b bypass) Write(p []byte) (int, error) {
	if strings.Contains(string(p), b.known) {
		return b.direct.Write(p)
	}
	return b.trap.Write(p)
}

// bpropPatchFlood is the seed 001 body: one BPROPPATCH setting n
// properties on one target.
func bpropPatchFlood(n int) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">`)
	b.WriteString(`<D:target><D:href>flood.EML</D:href></D:target><D:set><D:prop>`)
	for range n {
		b.WriteString("<x:a/>")
	}
	b.WriteString(`</D:prop></D:set></D:propertyupdate>`)
	return b.String()
}

// heapSampler records the peak heap in use of this process (the server
// runs in it) until stopped.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(20 * time.Millisecond) // fine enough to see a transient buffer
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 { close(h.stop); <-h.done; return h.peak.Load() }

// percentile returns the p-th percentile (0-100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// TestSeed001 is the seed failure 001: alice sends a 100,000-element
// BPROPPATCH and 20 parallel retries of it, in waves, while bob lists his
// Inbox and downloads messages. The flood must be refused (413 from the
// XML caps, 429 from the limiter) or coalesced, never run N times; bob's
// p99 latency must stay under 200 ms and the heap bounded.
func TestSeed001(t *testing.T) {
	ts := startServer(t, serverOptions{})
	alice, bob := ts.client(t, "alice"), ts.client(t, "bob")
	inbox := folderPath("bob", "INBOX")
	st, entries := bob.propfind(t, inbox, "1")
	if st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND bob's Inbox: %d", st)
	}
	var msgs []string
	for _, e := range entries {
		// Small messages: the 512 KiB attachment one measures the disk,
		// not the fairness.
		if !e.isCollection() && e.Props[propContentLength].Text != "" && len(e.Props[propContentLength].Text) < 6 {
			msgs = append(msgs, e.Href)
		}
	}
	if len(msgs) == 0 {
		t.Fatal("no small message in bob's Inbox")
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	heap := sampleHeap()

	flood := bpropPatchFlood(100000)
	floodURL := folderPath("alice", "INBOX")
	statuses := map[int]int{}
	var smu sync.Mutex
	stopFlood := make(chan struct{})
	var fwg sync.WaitGroup
	const retries = 20
	// The flood: waves of 1 + 20 parallel copies, until bob is done or
	// 60 waves (bounded in count and, through bob's loop, in time).
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		for wave := 0; wave < 60; wave++ {
			select {
			case <-stopFlood:
				return
			default:
			}
			var wg sync.WaitGroup
			for range retries + 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest("BPROPPATCH", alice.resolve(t, floodURL), strings.NewReader(flood))
					req.SetBasicAuth(alice.user, alice.pass)
					req.Header.Set("Content-Type", "text/xml")
					resp, err := alice.hc.Do(req)
					code := -1 // transport error: the server cut the body off, also a refusal
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						code = resp.StatusCode
					}
					smu.Lock()
					statuses[code]++
					smu.Unlock()
				}()
			}
			wg.Wait()
		}
	}()

	// Bob: 240 requests (≥ 200 samples for a p99), alternating a Depth 1
	// listing and a download, bounded to one minute.
	var lat []time.Duration
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < 240 && time.Now().Before(deadline); i++ {
		start := time.Now()
		var code int
		if i%2 == 0 {
			resp := bob.do(t, "PROPFIND", inbox, strings.NewReader(propfindBody), "Depth", "1")
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		} else {
			code = bob.status(t, http.MethodGet, msgs[i%len(msgs)])
		}
		lat = append(lat, time.Since(start))
		if code != http.StatusMultiStatus && code != http.StatusOK {
			t.Errorf("bob's request %d: %d", i, code)
		}
	}
	close(stopFlood)
	fwg.Wait()
	peak := heap.Stop()

	if len(lat) < 200 {
		t.Fatalf("only %d samples in the time box", len(lat))
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	t.Logf("seed 001: bob %d requests, p50 %v, p99 %v, max %v", len(lat), p50, p99, slices.Max(lat))
	t.Logf("seed 001: alice's flood statuses %v", statuses)
	t.Logf("seed 001: heap in use %.1f MiB before, peak %.1f MiB", float64(base)/(1<<20), float64(peak)/(1<<20))
	if p99 > 200*time.Millisecond {
		t.Errorf("bob's p99 latency %v under alice's flood, want < 200ms", p99)
	}
	for code, n := range statuses {
		if code == http.StatusOK || code == http.StatusMultiStatus || code >= 500 {
			t.Errorf("%d flood requests answered %d: the flood must be refused", n, code)
		}
	}
	// 21 copies of a ~600 KiB body in flight at once, plus the server's
	// caches: 256 MiB over the start is far above what a bounded server
	// needs and far below what running the flood would take.
	if growth := int64(peak) - int64(base); growth > 256<<20 {
		t.Errorf("heap grew by %d MiB during the flood", growth>>20)
	}

	// Retries of a request the gateway accepts: 20 identical BPROPPATCHes
	// at once are run once or refused, never 20 times.
	st, aliceInbox := alice.propfind(t, floodURL, "1")
	if st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND alice's Inbox: %d", st)
	}
	var target string
	for _, e := range aliceInbox {
		if !e.isCollection() {
			target = e.Href
			break
		}
	}
	body := `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">` +
		`<D:target><D:href>` + target + `</D:href></D:target><D:set><D:prop><x:retry>1</x:retry></D:prop></D:set></D:propertyupdate>`
	got := map[int]int{}
	var wg sync.WaitGroup
	for range retries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := alice.do(t, "BPROPPATCH", floodURL, strings.NewReader(body), "Content-Type", "text/xml")
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			smu.Lock()
			got[resp.StatusCode]++
			smu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("seed 001: %d identical valid BPROPPATCHes at once: statuses %v", retries, got)
	if got[http.StatusMultiStatus] < 1 || got[http.StatusMultiStatus]+got[http.StatusTooManyRequests] != retries {
		t.Errorf("statuses %v: want at least one 207 and the rest 207 (after the first ended) or 429", got)
	}
}

// rawRequest sends req over a fresh TCP connection and returns the
// status, or 0 and a note when the server closed the connection without
// an answer.
func rawRequest(t *testing.T, addr, req string, timeout time.Duration) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, req); err != nil {
		return 0, "write: " + err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "closed: " + err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, resp.Status
}

// TestHostileInput sends the hostile inputs of the issue, each on its own
// connection, and wants a clear 4xx for each (or, for the slow clients,
// the connection closed by the timeout): never a 2xx, never a 5xx, never
// a panic (startServerWith's cleanup checks both).
func TestHostileInput(t *testing.T) {
	const headerTimeout, idle = time.Second, 2 * time.Second
	ts := startServerWith(t, "", func(c *config.Config) {
		c.ReadHeaderTimeout = headerTimeout
		c.IdleTimeout = idle
	})
	addr := strings.TrimPrefix(ts.URL, "http://")
	authz := "Authorization: Basic " + basicAuth("alice", ts.Passwords["alice"]) + "\r\n"
	req := func(method, path, extra, body string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\nConnection: close\r\n%s\r\n%s",
			method, path, addr, authz, len(body), extra, body)
	}
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` +
		`<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol3;</D:displayname></D:prop></D:propfind>`
	deep := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:">` + strings.Repeat("<D:prop>", 10000) + strings.Repeat("</D:prop>", 10000) + `</D:propfind>`
	var many strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&many, "X-H%d: %s\r\n", i, strings.Repeat("v", 12))
	}
	var ranges strings.Builder
	ranges.WriteString("Range: bytes=")
	for i := range 3000 {
		if i > 0 {
			ranges.WriteString(",")
		}
		fmt.Fprintf(&ranges, "%d-%d", i%7, i%7)
	}
	ranges.WriteString("\r\n")
	_, inbox := ts.client(t, "alice").propfind(t, folderPath("alice", "INBOX"), "1")
	var msg string
	for _, e := range inbox {
		if !e.isCollection() {
			msg = e.Href
			break
		}
	}
	if msg == "" {
		t.Fatal("no message in alice's Inbox")
	}

	cases := []struct {
		name, req string
		closeOK   bool // a closed connection is the expected refusal
	}{
		{"XML entity expansion (billion laughs)", req("PROPFIND", "/exchange/alice/", "Depth: 0\r\n", laughs), false},
		{"XML nesting 10,000 deep", req("PROPFIND", "/exchange/alice/", "Depth: 0\r\n", deep), false},
		{"one 100 KiB header", req("PROPFIND", "/exchange/alice/", "X-Big: "+strings.Repeat("a", 100<<10)+"\r\n", ""), false},
		{"4,000 headers", req("PROPFIND", "/exchange/alice/", many.String(), ""), false},
		{"path ..", req("PROPFIND", "/exchange/alice/../bob/", "Depth: 0\r\n", ""), false},
		{"path %2e%2e", req("PROPFIND", "/exchange/alice/%2e%2e/bob/", "Depth: 0\r\n", ""), false},
		{"path %2f", req("GET", "/exchange/alice/Inbox%2f..%2f..%2fbob%2fInbox/", "", ""), false},
		{"path NUL", req("GET", "/exchange/alice/Inbox/a%00.EML", "", ""), false},
		{"path backslash", req("GET", `/exchange/alice/Inbox\..\..\bob\Inbox/`, "", ""), false},
		{"path %5c", req("GET", "/exchange/alice/..%5c..%5cbob/Inbox/", "", ""), false},
		{"path overlong UTF-8", req("GET", "/exchange/alice/%c0%ae%c0%ae/bob/", "", ""), false},
		{"other user's mailbox", req("PROPFIND", "/exchange/bob/", "Depth: 0\r\n", ""), false},
		{"Depth 99999999999", req("PROPFIND", "/exchange/alice/", "Depth: 99999999999\r\n", ""), false},
		{"Depth 2", req("PROPFIND", "/exchange/alice/", "Depth: 2\r\n", ""), false},
		{"3,000 overlapping ranges", req("GET", msg, ranges.String(), ""), false},
		{"Content-Length over max-message-size", fmt.Sprintf("PUT /exchange/alice/Inbox/big.EML HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n", addr, authz, int64(1)<<40), false},
	}
	type row struct {
		name   string
		status int
		note   string
	}
	var table []row
	for _, tc := range cases {
		code, note := rawRequest(t, addr, tc.req, 10*time.Second)
		table = append(table, row{tc.name, code, note})
		if code < 400 || code >= 500 {
			t.Errorf("%s: %d %s, want a 4xx", tc.name, code, note)
		}
	}

	// Slowloris, headers: one header byte every 200 ms never completes
	// the header; the server must drop the connection after
	// read-header-timeout.
	table = append(table, slowHeaders(t, addr, headerTimeout))
	var out strings.Builder
	fmt.Fprintf(&out, "\n%-40s %6s  %s\n", "case", "status", "")
	for _, r := range table {
		fmt.Fprintf(&out, "%-40s %6d  %s\n", r.name, r.status, r.note)
	}
	t.Log(out.String())
}

// slowHeaders trickles a request header and reports when the server
// closed the connection.
func slowHeaders(t *testing.T, addr string, timeout time.Duration) (r struct {
	name   string
	status int
	note   string
}) {
	t.Helper()
	r.name = "slowloris: headers at 5 bytes/s"
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "PROPFIND /exchange/alice/ HTTP/1.1\r\nHost: x\r\n")
	limit := start.Add(timeout + 5*time.Second) // generous margin for a loaded CI runner
	for time.Now().Before(limit) {
		if _, err := c.Write([]byte("X")); err != nil {
			break
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [512]byte
		n, err := c.Read(b[:])
		if n > 0 {
			r.status, r.note = statusOfBytes(b[:n]), fmt.Sprintf("answered, closed after %v", time.Since(start).Round(10*time.Millisecond))
			if r.status < 400 || r.status >= 500 {
				t.Errorf("slow headers answered %d, want a 4xx or a closed connection", r.status)
			}
			return r
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			r.note = fmt.Sprintf("closed after %v", time.Since(start).Round(10*time.Millisecond))
			return r
		}
	}
	t.Errorf("slow headers: the connection is still open after %v (read-header-timeout %v)", time.Since(start), timeout)
	r.note = "still open"
	return r
}

// TestSlowBody: a PUT whose body stalls after 10 of 1,000 bytes must
// fail after the body idle timeout with a 4xx (408), or a closed
// connection, never hold it open or answer 5xx. (It found two bugs: the
// access log cleared the read deadline on the timeout error, so the
// drain of the unread body blocked forever; and dav answered the
// store's i/o timeout with 500.)
func TestSlowBody(t *testing.T) {
	const idle = 2 * time.Second
	ts := startServerWith(t, "/exchange/alice/Inbox/slow.EML", func(c *config.Config) { c.IdleTimeout = idle })
	addr := strings.TrimPrefix(ts.URL, "http://")
	authz := "Authorization: Basic " + basicAuth("alice", ts.Passwords["alice"]) + "\r\n"
	r := slowBody(t, addr, authz, idle)
	t.Logf("%s: status %d, %s", r.name, r.status, r.note)
}

// slowBody starts a PUT and stalls its body.
func slowBody(t *testing.T, addr, authz string, idle time.Duration) (r struct {
	name   string
	status int
	note   string
}) {
	t.Helper()
	r.name = "slowloris: body stalls after 10 bytes"
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "PUT /exchange/alice/Inbox/slow.EML HTTP/1.1\r\nHost: x\r\n%sContent-Length: 1000\r\n\r\nSubject: x", authz)
	c.SetReadDeadline(start.Add(idle + 10*time.Second)) // margin for a loaded runner
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("slow body: no answer and still open after %v (idle timeout %v)", time.Since(start), idle)
		}
		r.note = fmt.Sprintf("closed after %v", time.Since(start).Round(10*time.Millisecond))
		return r
	}
	resp.Body.Close()
	r.status, r.note = resp.StatusCode, fmt.Sprintf("%s after %v", resp.Status, time.Since(start).Round(10*time.Millisecond))
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("slow body: %s, want a 4xx or a closed connection", resp.Status)
	}
	return r
}

// statusOfBytes reads the status code of a response's first line.
func statusOfBytes(b []byte) int {
	var code int
	fmt.Sscanf(string(b), "HTTP/1.1 %d", &code)
	return code
}

// basicAuth is the Basic credentials value.
func basicAuth(user, pass string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
