package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/metrics"
)

// scrape fetches a Prometheus text exposition and returns each sample as
// "name{labels}" → value.
func scrape(t *testing.T, url string, hdr ...string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsWorkload runs a scripted workload and checks that every
// figure it should move moved by exactly the amount expected.
func TestMetricsWorkload(t *testing.T) {
	var queueDir string
	relay := startRelay(t)
	ts := startServer(t, func(c *config.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.MaxMessageSize = 1 << 10 // 1 KiB: the 2 KiB PUT below is refused
		c.Relay, c.RelayTLS = relay.addr, "none"
		queueDir = filepath.Join(c.Data, "queue")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mdone := make(chan error, 1)
	go func() { mdone <- ts.ServeMetrics(ln) }()
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
		if err := <-mdone; err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	})
	if _, err := os.Stat(queueDir); err != nil {
		t.Fatalf("queue not opened: %v", err)
	}

	before := scrape(t, metricsURL)
	basic := func(user, pw string) []string {
		return []string{"Authorization", "Basic " + basicToken(user, pw)}
	}
	alice := basic("alice", testPassword)

	// The workload.
	for range 3 {
		if resp, _ := ts.do(t, "GET", "/healthz", nil); resp.StatusCode != 200 {
			t.Fatalf("healthz %d", resp.StatusCode)
		}
	}
	for range 2 { // no credentials: 401
		if resp, _ := ts.do(t, "PROPFIND", "/exchange/alice/", nil, "Depth", "0"); resp.StatusCode != 401 {
			t.Fatalf("unauthenticated PROPFIND %d", resp.StatusCode)
		}
	}
	msg := "Subject: metrics\r\nFrom: a@b\r\n\r\nhello\r\n"
	resp, _ := ts.do(t, "PUT", "/exchange/alice/Inbox/metrics.EML", strings.NewReader(msg), alice...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %d", resp.StatusCode)
	}
	resp, body := ts.do(t, "GET", "/exchange/alice/Inbox/metrics.EML", nil, alice...)
	if resp.StatusCode != 200 || body != msg {
		t.Fatalf("GET %d %q", resp.StatusCode, body)
	}
	big := strings.Repeat("x", 2<<10)
	resp, _ = ts.do(t, "PUT", "/exchange/alice/Inbox/big.EML", strings.NewReader(big), alice...)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized PUT %d", resp.StatusCode)
	}
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	resp, _ = ts.do(t, "LOCK", "/exchange/alice/Inbox/metrics.EML", strings.NewReader(lockBody), append(alice, "Timeout", "Second-600")...)
	if resp.StatusCode != 200 {
		t.Fatalf("LOCK %d", resp.StatusCode)
	}
	resp, _ = ts.do(t, "FROBNICATE", "/exchange/alice/", nil, alice...)
	frobStatus := resp.StatusCode
	// One wrong password: the throttle remembers the user and the address.
	if resp, _ := ts.do(t, "PROPFIND", "/exchange/alice/", nil, basic("alice", "wrong")...); resp.StatusCode != 401 {
		t.Fatalf("wrong password %d", resp.StatusCode)
	}
	// A forms-login session.
	owaLogin(t, ts)
	// A message sent through the queue and the relay.
	sub := "To: bob@example.net\r\nSubject: sent\r\n\r\nhi\r\n"
	resp, _ = ts.do(t, "PUT", "/exchange/alice/%23%23DavMailSubmissionURI%23%23/", strings.NewReader(sub), append(alice, "Content-Type", "message/rfc822")...)
	if resp.StatusCode != 200 {
		t.Fatalf("submission %d", resp.StatusCode)
	}
	relay.wait(t, 1)

	// The relay has the message; the queue counts it once the relay's
	// reply is processed: poll the figure with a deadline.
	var after map[string]float64
	delivered := `davmail_queue_recipients_total{outcome="delivered"}`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = scrape(t, metricsURL)
		if after[delivered]-before[delivered] >= 1 || time.Now().After(deadline) {
			break
		}
	}
	delta := func(key string) float64 { return after[key] - before[key] }
	for _, c := range []struct {
		key  string
		want float64
	}{
		{`davmail_http_requests_total{method="GET",status="200"}`, 4},
		{`davmail_http_requests_total{method="PROPFIND",status="401"}`, 3},
		{`davmail_http_requests_total{method="PUT",status="201"}`, 1},
		{`davmail_http_requests_total{method="PUT",status="200"}`, 1},
		{delivered, 1},
		{`davmail_http_requests_total{method="PUT",status="413"}`, 1},
		{`davmail_http_requests_total{method="LOCK",status="200"}`, 1},
		{fmt.Sprintf(`davmail_http_requests_total{method="OTHER",status="%d"}`, frobStatus), 1},
		{`davmail_http_request_duration_seconds_count{method="GET"}`, 4},
		{`davmail_http_request_duration_seconds_count{method="PROPFIND"}`, 3},
		// The oversized PUT is refused on its Content-Length, before a
		// byte of its body is read.
		{`davmail_http_request_bytes_total{method="PUT"}`, float64(len(msg) + len(sub))},
		{`davmail_http_response_bytes_total{method="GET"}`, float64(3*len("ok\n") + len(msg))},
		{`davmail_limit_refusals_total{limit="max-message-size"}`, 1},
		{`davmail_dav_locks`, 1},
		{`davmail_sessions`, 1},
		{`davmail_login_throttle_entries{table="users"}`, 1},
		{`davmail_login_throttle_entries{table="addresses"}`, 1},
	} {
		if d := delta(c.key); d != c.want {
			t.Errorf("%s moved by %v, want %v (before %v, after %v)", c.key, d, c.want, before[c.key], after[c.key])
		}
	}
	// Absolute figures.
	if after[`davmail_users`] != 1 {
		t.Errorf("users %v, want 1", after[`davmail_users`])
	}
	if after[`davmail_index_bytes`] <= 0 || after[`davmail_index_files`] < 1 {
		t.Errorf("index %v bytes in %v files, want an index for alice", after[`davmail_index_bytes`], after[`davmail_index_files`])
	}
	if after[`davmail_limits_entries{table="users"}`] < 1 || after[`davmail_limits_entries{table="addresses"}`] < 1 {
		t.Errorf("limiter tables: users %v, addresses %v; want alice and 127.0.0.1 tracked",
			after[`davmail_limits_entries{table="users"}`], after[`davmail_limits_entries{table="addresses"}`])
	}
	if after[`davmail_index_folder_scans_total`] < 1 {
		t.Errorf("index_folder_scans_total %v, want the scans of alice's first listing", after[`davmail_index_folder_scans_total`])
	}
	if after[`davmail_mailboxes_open`] < 1 {
		t.Errorf("mailboxes_open %v", after[`davmail_mailboxes_open`])
	}
	if after[`davmail_index_messages_in_memory`] < 1 {
		t.Errorf("index_messages_in_memory %v, want alice's messages", after[`davmail_index_messages_in_memory`])
	}
	if _, ok := after[`davmail_queue_messages`]; !ok {
		t.Error("no queue length with a relay configured")
	}
	if after[`davmail_http_requests_in_flight`] != 0 {
		t.Errorf("requests in flight %v after the workload", after[`davmail_http_requests_in_flight`])
	}
	if after[`davmail_panics_total`] != 0 {
		t.Errorf("panics %v", after[`davmail_panics_total`])
	}
	for _, k := range []string{`go_goroutines`, `davmail_process_resident_memory_bytes`, `davmail_start_time_seconds`} {
		if _, ok := after[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
}

func basicToken(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
}

// TestMetricsThrottled: 429 and 503 answers are counted as throttled.
func TestMetricsThrottled(t *testing.T) {
	ts := startServer(t, nil)
	m := ts.Metrics()
	for _, code := range []int{429, 503, 503, 500} {
		m.Started()
		m.Done(metrics.Request{Method: "GET", Status: code})
	}
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	got := scrape(t, hs.URL)
	if got[`davmail_http_throttled_total{status="429"}`] != 1 || got[`davmail_http_throttled_total{status="503"}`] != 2 {
		t.Errorf("throttled: 429=%v 503=%v", got[`davmail_http_throttled_total{status="429"}`], got[`davmail_http_throttled_total{status="503"}`])
	}
	if _, ok := got[`davmail_http_throttled_total{status="500"}`]; ok {
		t.Error("a 500 counted as throttled")
	}
}

// TestMetricsOnMainListener: without metrics-listen, /metrics is for
// admins only.
func TestMetricsOnMainListener(t *testing.T) {
	ts := startServer(t, nil)
	if resp, _ := ts.do(t, "GET", "/metrics", nil); resp.StatusCode != 401 {
		t.Errorf("no credentials: %d, want 401", resp.StatusCode)
	}
	if resp, _ := ts.do(t, "GET", "/metrics", nil, "Authorization", "Basic "+basicToken("alice", testPassword)); resp.StatusCode != 403 {
		t.Errorf("non-admin: %d, want 403", resp.StatusCode)
	}
	if err := auth.AddUser(ts.cfg.Users, "root", "admin pw", auth.RoleAdmin, auth.Cost(4)); err != nil {
		t.Fatal(err)
	}
	if err := ts.users.Reload(); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, ts.url+"/metrics", "Authorization", "Basic "+basicToken("root", "admin pw"))
	if got[`davmail_users`] != 2 {
		t.Errorf("admin scrape: users %v, want 2", got[`davmail_users`])
	}
	// With metrics-listen the main listener has no /metrics at all.
	other := startServer(t, func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" })
	if resp, _ := other.do(t, "GET", "/metrics", nil, "Authorization", "Basic "+basicToken("alice", testPassword)); resp.StatusCode != 404 {
		t.Errorf("metrics-listen set: /metrics on the main listener %d, want 404", resp.StatusCode)
	}
}
