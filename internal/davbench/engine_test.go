package davbench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/davbench/davbenchtest"
	"github.com/rs/zerolog"
)

// testUsers are the two mailboxes of the load test.
var testUsers = map[string]string{"alice": "alice pass:1", "bob": "bob-pass,2"}

func userList() []User {
	return []User{{"alice", testUsers["alice"]}, {"bob", testUsers["bob"]}}
}

// envDuration reads a duration from the environment (for a longer run by
// hand: DAVBENCH_DURATION=20s go test -run TestLoad -v ./internal/davbench/).
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 10*time.Minute { // 10 min: a test stays bounded
		t.Fatalf("%s=%q: want a duration up to 10m", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > maxClients {
		t.Fatalf("%s=%q: want 1 to %d", name, v, maxClients)
	}
	return n
}

// TestLoad runs the whole benchmark against a real server: 8 clients on
// two users for 5 seconds, with the server's default fair share
// (DAVBENCH_USER_RATE sets the server's user-rate, to see past it).
func TestLoad(t *testing.T) {
	var mod func(*config.Config)
	if v := os.Getenv("DAVBENCH_USER_RATE"); v != "" {
		rate, err := strconv.Atoi(v)
		if err != nil || rate <= 0 {
			t.Fatalf("DAVBENCH_USER_RATE=%q: want a positive integer", v)
		}
		mod = func(c *config.Config) { c.UserRate = rate }
	}
	srv := davbenchtest.Start(t, testUsers, mod)
	cfg := Config{
		URL:          srv.URL,
		Users:        userList(),
		Clients:      envInt(t, "DAVBENCH_CLIENTS", 8),
		Duration:     envDuration(t, "DAVBENCH_DURATION", 5*time.Second),
		Seed:         1,
		SharedFolder: "Inbox",
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	// The whole run (setup, load, check, cleanup) is bounded: the load's
	// duration plus three minutes, more than a throttled check needs.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, log)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())

	for _, op := range opNames {
		o, ok := res.OpByName(op)
		if !ok || o.OK == 0 {
			t.Errorf("%s: %+v: no successful operation of this kind", op, o)
		}
		if o.OK > 0 && (o.P50Ms <= 0 || o.P99Ms < o.P50Ms || o.OpsPerSec <= 0) {
			t.Errorf("%s: implausible figures %+v", op, o)
		}
		if o.Count != o.OK+o.Throttled+o.Errors {
			t.Errorf("%s: count %d != ok %d + throttled %d + errors %d", op, o.Count, o.OK, o.Throttled, o.Errors)
		}
	}
	if len(res.Check.Issues) != 0 || !res.Passed {
		t.Errorf("inconsistencies: %v", res.Check.Issues)
	}
	if res.Unexpected5xx != 0 || srv.Unexpected5xx() != 0 {
		t.Errorf("unexpected 5xx: %d seen by the clients, %d logged by the server", res.Unexpected5xx, srv.Unexpected5xx())
	}
	if res.Check.Messages == 0 || res.Check.Moved == 0 || res.Check.Read == 0 {
		t.Errorf("the check verified too little: %+v", res.Check)
	}
	if res.Cleanup != "" {
		t.Errorf("cleanup: %s", res.Cleanup)
	}
	for _, want := range append(opNames[:], "op", "ops/s", "p50 ms", "p99 ms", "total", "consistency: OK", "unexpected 5xx: 0", "PASS") {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	// The scratch folders are gone.
	for name, pw := range testUsers {
		body := propfindRoot(t, srv.URL, name, pw)
		if strings.Contains(body, "davbench-") {
			t.Errorf("%s's mailbox still has scratch folders:\n%s", name, body)
		}
	}
}

func propfindRoot(t *testing.T, base, user, pw string) string {
	t.Helper()
	r, err := http.NewRequest("PROPFIND", base+"/exchange/"+user+"/", strings.NewReader(propfindBody))
	if err != nil {
		t.Fatal(err)
	}
	r.SetBasicAuth(user, pw)
	r.Header.Set("Depth", "1")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND of %s's root: %d %s", user, resp.StatusCode, b)
	}
	return string(b)
}

// raw sends one request as the client's user, behind the model's back.
func raw(t *testing.T, c *client, method, path string, body []byte, hdr ...string) int {
	t.Helper()
	rep, _, err := c.send(context.Background(), req{method: method, path: path, body: body, hdr: hdr})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return rep.status
}

// TestCheckFindsPlanted builds a known state through the client's own
// operations, checks that the checker finds it consistent, then changes
// the server behind the model's back in six ways and checks that each is
// reported.
func TestCheckFindsPlanted(t *testing.T) {
	srv := davbenchtest.Start(t, map[string]string{"alice": testUsers["alice"]}, nil)
	cfg, err := Config{URL: srv.URL, Users: userList()[:1], Clients: 1, Seed: 7}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	u, err := CheckURL(context.Background(), cfg.URL, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(cfg, u, zerolog.New(zerolog.NewTestWriter(t)), "plant")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // bounded; it takes well under a second
	defer cancel()
	if err := e.setup(ctx); err != nil {
		t.Fatal(err)
	}
	c := e.clients[0]
	for range 8 {
		c.put(ctx, ctx)
	}
	c.move(ctx, ctx)
	c.proppatch(ctx, ctx)
	c.lock(ctx, ctx)
	if len(c.msgs) != 8 {
		t.Fatalf("%d messages, want 8", len(c.msgs))
	}
	for _, m := range c.msgs {
		if m.doubt != sure {
			t.Fatalf("%s in doubt", m.name)
		}
	}
	if res := c.check(ctx); len(c.issues) != 0 || res.Messages != 8 || res.Read != 8 {
		t.Fatalf("before planting: %+v, issues %v", res, c.issues)
	}

	ms := c.msgs
	// 0: deleted.
	if st := raw(t, c, "DELETE", c.msgPath(ms[0]), nil); st != http.StatusOK {
		t.Fatalf("DELETE: %d", st)
	}
	// 1: one byte of the body changed, same name and headers.
	got, _, err := c.send(ctx, req{method: "GET", path: c.msgPath(ms[1]), hdr: translateF})
	if err != nil || got.status != http.StatusOK {
		t.Fatalf("GET: %v %d", err, got.status)
	}
	altered := bytes.Clone(got.body)
	altered[len(altered)-3] ^= 1
	if st := raw(t, c, "PUT", c.msgPath(ms[1]), altered, "Content-Type", "message/rfc822"); st != http.StatusOK {
		t.Fatalf("PUT over: %d", st)
	}
	// 2: read flag flipped.
	if st := raw(t, c, "PROPPATCH", c.msgPath(ms[2]), readPatchBody(!ms[2].read), xmlHeaders...); st != http.StatusMultiStatus {
		t.Fatalf("PROPPATCH: %d", st)
	}
	// 3: copied into the other folder.
	if st := raw(t, c, "COPY", c.msgPath(ms[3]), nil, "Destination", c.scratch[1-ms[3].folder]+ms[3].name); st != http.StatusCreated {
		t.Fatalf("COPY: %d", st)
	}
	// 4: moved into the other folder.
	if st := raw(t, c, "MOVE", c.msgPath(ms[4]), nil, "Destination", c.scratch[1-ms[4].folder]+ms[4].name); st != http.StatusCreated {
		t.Fatalf("MOVE: %d", st)
	}
	// 5: a stranger in a scratch folder.
	_, stray := buildMessage(c.rng, "stray", 0, 1, "alice", time.Now())
	if st := raw(t, c, "PUT", c.scratch[0]+"stray.EML", stray, "Content-Type", "message/rfc822"); st != http.StatusCreated {
		t.Fatalf("PUT stray: %d", st)
	}

	c.issues = nil
	c.check(ctx)
	want := map[string]string{
		ms[0].name:  "missing",
		ms[1].name:  "corrupt",
		ms[2].name:  "read-flag",
		ms[3].name:  "duplicate",
		ms[4].name:  "misplaced",
		"stray.EML": "unexpected",
	}
	found := map[string]bool{}
	for _, is := range c.issues {
		t.Logf("found: %s", is)
		k := is.Name
		if k == "" && is.Kind == "duplicate" && strings.Contains(is.Detail, ms[3].msgID) {
			k = ms[3].name // the Message-ID count names no single item
		}
		if want[k] != is.Kind {
			t.Errorf("unexpected issue %s", is)
			continue
		}
		found[k] = true
	}
	for name, kind := range want {
		if !found[name] {
			t.Errorf("the check missed the %s message %s", kind, name)
		}
	}
	for _, m := range ms[5:] {
		if found[m.name] {
			t.Errorf("untouched message %s reported", m.name)
		}
	}
	if cl := e.cleanup(ctx); cl != "" {
		t.Errorf("cleanup: %s", cl)
	}
}

// lossy loses answers of writes: some requests reach the server and the
// answer is dropped (the write happened, the client never hears), some
// never leave. It is how a timeout or a broken connection looks.
type lossy struct {
	next http.RoundTripper
	mu   sync.Mutex
	rng  *rand.Rand
	lost int
}

var errLost = errors.New("answer lost (test)")

func (l *lossy) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case "PUT", "MOVE", "PROPPATCH", "LOCK":
	default:
		return l.next.RoundTrip(r)
	}
	l.mu.Lock()
	n := l.rng.IntN(8)
	if n < 3 {
		l.lost++
	}
	l.mu.Unlock()
	switch {
	case n == 0: // never sent
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errLost
	case n < 3: // done, answer dropped
		resp, err := l.next.RoundTrip(r)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, errLost
	}
	return l.next.RoundTrip(r)
}

// TestInDoubt loses three writes in eight during the load: the model must
// accept either outcome of those (no false alarm), still check the rest,
// and the cleanup must release the locks of lost LOCK answers.
func TestInDoubt(t *testing.T) {
	srv := davbenchtest.Start(t, testUsers, nil)
	cfg, err := Config{URL: srv.URL, Users: userList(), Clients: 4, Duration: 2 * time.Second, Seed: 5}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	u, err := CheckURL(context.Background(), cfg.URL, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(cfg, u, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // bounded; ~3 s in practice
	defer cancel()
	if err := e.setup(ctx); err != nil {
		t.Fatal(err)
	}
	real := e.hc.Transport
	l := &lossy{next: real, rng: rand.New(rand.NewPCG(9, 9))}
	e.hc.Transport = l
	e.load(ctx)
	e.hc.Transport = real
	res := e.finish(ctx)
	var table bytes.Buffer
	res.WriteTable(&table)
	t.Logf("%d answers lost\n%s", l.lost, table.String())
	if !res.Passed || len(res.Check.Issues) != 0 {
		t.Errorf("false alarms: %v", res.Check.Issues)
	}
	if res.Check.InDoubt == 0 || res.Check.Messages == 0 || res.Check.Moved == 0 {
		t.Errorf("check: %+v; want messages in doubt and sure ones", res.Check)
	}
	if net := res.Total.ErrorsByStatus["net"]; net == 0 {
		t.Errorf("no transport errors counted (lost %d)", l.lost)
	}
	if res.Cleanup != "" {
		t.Errorf("cleanup: %s", res.Cleanup)
	}
}
