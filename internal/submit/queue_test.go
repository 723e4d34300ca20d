package submit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/davmail/davmail/limits"
)

var alice = Account{User: "alice", Addresses: []string{"alice@example.com", "a.smith@example.org"}}

const simpleMsg = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>, \"Carol, C.\" <carol@example.net>\r\n" +
	"Cc: dave@example.org\r\n" +
	"Bcc: eve@secret.example\r\n" +
	"Subject: hello\r\n" +
	"\r\n" +
	"Body line 1\r\n" +
	"Bcc: this line is body text and stays\r\n"

// submit prepares raw for alice and enqueues it through a spool.
func submit(t *testing.T, q *Queue, raw string) (string, Envelope) {
	t.Helper()
	sp, err := q.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Discard()
	env, err := PrepareRFC822(strings.NewReader(raw), alice, sp)
	if err != nil {
		t.Fatalf("PrepareRFC822: %v", err)
	}
	id, err := q.Enqueue(context.Background(), env, sp)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id, env
}

func TestDeliverBccStripped(t *testing.T) {
	r := newRelay(t, relayOpts{})
	b := &bounces{}
	q := openQueue(t, t.TempDir(), testOptions(r, b))
	_, env := submit(t, q, simpleMsg)

	waitFor(t, 5*time.Second, "delivery", func() bool { return q.Len() == 0 })
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(got))
	}
	m := got[0]
	if m.from != "alice@example.com" {
		t.Errorf("MAIL FROM %q, want alice@example.com", m.from)
	}
	want := []string{"bob@example.net", "carol@example.net", "dave@example.org", "eve@secret.example"}
	if strings.Join(m.rcpts, ",") != strings.Join(want, ",") {
		t.Errorf("RCPT TO %v, want %v", m.rcpts, want)
	}
	hdr, body, _ := strings.Cut(string(m.data), "\r\n\r\n")
	if strings.Contains(strings.ToLower(hdr), "bcc:") || strings.Contains(hdr, "eve@") {
		t.Errorf("Bcc leaked into the header sent:\n%s", hdr)
	}
	if body != "Body line 1\r\nBcc: this line is body text and stays\r\n" {
		t.Errorf("body changed: %q", body)
	}
	for _, f := range []string{"Date: ", "Message-ID: " + env.MessageID, "Subject: hello"} {
		if !strings.Contains(hdr, f) {
			t.Errorf("header lacks %q:\n%s", f, hdr)
		}
	}
	st := q.Stats()
	if st.Delivered != 4 || st.Queued != 0 || st.Bounced != 0 {
		t.Errorf("stats %+v, want 4 delivered, nothing queued or bounced", st)
	}
	if len(b.list()) != 0 {
		t.Errorf("unexpected bounce")
	}
	// Nothing left on disk but the layout.
	ents, _ := os.ReadDir(filepath.Join(q.l.q))
	if len(ents) != 0 {
		t.Errorf("queue directory not empty: %v", ents)
	}
}

func TestRelayDownThenUp(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.setDown(true)
	q := openQueue(t, t.TempDir(), testOptions(r, &bounces{}))
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "deferrals", func() bool { return q.Stats().Deferred >= 8 })
	if q.Len() != 1 || len(r.received()) != 0 {
		t.Fatalf("len %d, relayed %d: want the message still queued", q.Len(), len(r.received()))
	}
	r.setDown(false)
	waitFor(t, 5*time.Second, "delivery", func() bool { return q.Len() == 0 })
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.received(); len(got) != 1 {
		t.Fatalf("relay got %d messages, want exactly 1", len(got))
	}
}

func TestTemporaryThenSuccess(t *testing.T) {
	r := newRelay(t, relayOpts{})
	var tries sync.Map // rcpt → *atomic.Int32
	r.rcpt = func(to string) error {
		v, _ := tries.LoadOrStore(to, new(atomic.Int32))
		if to == "carol@example.net" && v.(*atomic.Int32).Add(1) <= 2 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}
	q := openQueue(t, t.TempDir(), testOptions(r, &bounces{}))
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "delivery", func() bool { return q.Len() == 0 })
	got := r.received()
	for _, rc := range []string{"bob@example.net", "carol@example.net", "dave@example.org", "eve@secret.example"} {
		if n := countRcpt(got, rc); n != 1 {
			t.Errorf("%s got the message %d times, want 1", rc, n)
		}
	}
	if len(got) != 2 {
		t.Errorf("%d transactions with DATA, want 2 (all but carol, then carol after two 451s)", len(got))
	}
	if st := q.Stats(); st.Deferred != 2 || st.Delivered != 4 {
		t.Errorf("stats %+v, want 2 deferred, 4 delivered", st)
	}
}

func TestPermanentFailureBounces(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.rcpt = func(to string) error {
		if strings.HasPrefix(to, "bob@") || strings.HasPrefix(to, "eve@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user " + to}
		}
		return nil
	}
	b := &bounces{}
	q := openQueue(t, t.TempDir(), testOptions(r, b))
	_, env := submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "completion", func() bool { return q.Len() == 0 })

	got := r.received()
	if len(got) != 1 || strings.Join(got[0].rcpts, ",") != "carol@example.net,dave@example.org" {
		t.Fatalf("relayed %+v, want one message to carol and dave", got)
	}
	bl := b.list()
	if len(bl) != 1 || bl[0].user != "alice" {
		t.Fatalf("bounces %d (user %v), want 1 for alice", len(bl), bl)
	}
	// The bounce is a well-formed RFC 3464 report.
	e, err := message.Read(bytes.NewReader(bl[0].msg))
	if err != nil {
		t.Fatalf("bounce does not parse: %v", err)
	}
	ct, params, _ := e.Header.ContentType()
	if ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("bounce Content-Type %s %v", ct, params)
	}
	if got := e.Header.Get("In-Reply-To"); got != env.MessageID {
		t.Errorf("In-Reply-To %q, want %q", got, env.MessageID)
	}
	mr := e.MultipartReader()
	var parts []string
	var bodies []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pct, _, _ := p.Header.ContentType()
		body, _ := io.ReadAll(p.Body)
		parts = append(parts, pct)
		bodies = append(bodies, string(body))
	}
	if strings.Join(parts, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("bounce parts %v", parts)
	}
	for _, want := range []string{"<bob@example.net>: 550 5.1.1 no such user", "<eve@secret.example>: 550 5.1.1"} {
		if !strings.Contains(bodies[0], want) {
			t.Errorf("human part lacks %q:\n%s", want, bodies[0])
		}
	}
	if strings.Contains(bodies[0], "carol") || strings.Contains(bodies[1], "carol") {
		t.Errorf("delivered recipient named in the bounce")
	}
	for _, want := range []string{"Final-Recipient: rfc822; bob@example.net", "Final-Recipient: rfc822; eve@secret.example",
		"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 no such user", "Reporting-MTA: dns; gw.test"} {
		if !strings.Contains(bodies[1], want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, bodies[1])
		}
	}
	if !strings.Contains(bodies[2], "Subject: hello") || strings.Contains(bodies[2], "Body line") {
		t.Errorf("original headers part wrong:\n%s", bodies[2])
	}
	if st := q.Stats(); st.Bounced != 2 || st.Delivered != 2 {
		t.Errorf("stats %+v, want 2 bounced, 2 delivered", st)
	}
}

func TestRestartDelivers(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.setDown(true)
	dir := t.TempDir()
	b := &bounces{}
	q := openQueue(t, dir, testOptions(r, b))
	for i := range 3 {
		submit(t, q, strings.Replace(simpleMsg, "hello", fmt.Sprint("hello ", i), 1))
	}
	waitFor(t, 5*time.Second, "attempts", func() bool { return q.Stats().Deferred >= 4 })
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := q.EnqueueReader(context.Background(), Envelope{From: "alice@example.com", Recipients: []string{"x@y.test"}}, strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}
	r.setDown(false)
	q2 := openQueue(t, dir, testOptions(r, b))
	if q2.Len() != 3 {
		t.Fatalf("reopened queue holds %d items, want 3", q2.Len())
	}
	waitFor(t, 5*time.Second, "delivery after restart", func() bool { return q2.Len() == 0 })
	got := r.received()
	if len(got) != 3 {
		t.Fatalf("relay got %d messages, want 3", len(got))
	}
	seen := map[string]int{}
	for _, m := range got {
		i := bytes.Index(m.data, []byte("Subject: "))
		seen[string(m.data[i:i+16])]++
	}
	for s, n := range seen {
		if n != 1 {
			t.Errorf("%q delivered %d times", s, n)
		}
	}
}

// TestCrashInFlight takes an image of the queue directory while a delivery
// is in progress (what a crash leaves), then opens a new queue on it: the
// message is delivered exactly once.
func TestCrashInFlight(t *testing.T) {
	r := newRelay(t, relayOpts{})
	hold := make(chan struct{})
	r.hold, r.entered = hold, make(chan struct{}, 1)
	r.data = func(relayed) error {
		// The first process "crashes": its transaction never completes.
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection lost"}
	}
	dir := t.TempDir()
	q := openQueue(t, dir, testOptions(r, &bounces{}))
	id, _ := submit(t, q, simpleMsg)
	select {
	case <-r.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery never reached DATA")
	}
	image := t.TempDir()
	copyTree(t, dir, image)
	// The image holds the item marked in flight.
	rb, err := os.ReadFile(filepath.Join(image, "q", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(rb, &rec); err != nil || !rec.InFlight || rec.Attempts != 1 {
		t.Fatalf("record in the crash image: %+v %v; want in flight, attempt 1", rec, err)
	}
	// End the first process (its attempt fails: nothing was relayed).
	r.mu.Lock()
	r.hold, r.data = nil, nil
	r.mu.Unlock()
	close(hold)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(r.received()) != 0 {
		t.Fatalf("the first process delivered")
	}

	q2 := openQueue(t, image, testOptions(r, &bounces{}))
	waitFor(t, 5*time.Second, "delivery after the crash", func() bool { return q2.Len() == 0 })
	if got := r.received(); len(got) != 1 {
		t.Fatalf("relay got %d messages, want exactly 1", len(got))
	}
}

func TestCloseInterruptsDelivery(t *testing.T) {
	r := newRelay(t, relayOpts{})
	hold := make(chan struct{})
	defer close(hold)
	r.hold, r.entered = hold, make(chan struct{}, 1)
	dir := t.TempDir()
	q := openQueue(t, dir, testOptions(r, &bounces{}))
	id, _ := submit(t, q, simpleMsg)
	<-r.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s", d)
	}
	rec, err := q.l.readRecord(id)
	if err != nil || !rec.InFlight {
		t.Fatalf("record after interrupted delivery: %+v, %v; want in flight", rec, err)
	}
}

func TestQueueFull503(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.setDown(true)
	o := testOptions(r, &bounces{})
	o.MaxItems = 2
	q := openQueue(t, t.TempDir(), o)
	submit(t, q, simpleMsg)
	submit(t, q, simpleMsg)
	sp, _ := q.NewSpool()
	defer sp.Discard()
	env, err := PrepareRFC822(strings.NewReader(simpleMsg), alice, sp)
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.Enqueue(context.Background(), env, sp)
	var le *limits.Error
	if !errors.As(err, &le) || !errors.Is(err, limits.ErrBusy) || le.Status != http.StatusServiceUnavailable || le.RetryAfter <= 0 {
		t.Fatalf("third Enqueue = %v, want a 503 limits.Error with Retry-After", err)
	}
	if q.Len() != 2 {
		t.Errorf("len %d, want 2", q.Len())
	}
}

func TestFormatVersion(t *testing.T) {
	r := newRelay(t, relayOpts{})
	o := testOptions(r, &bounces{})

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "FORMAT"), []byte(`{"v":2}`), 0o600)
	if _, err := Open(dir, o, testLog(t)); err == nil || !strings.Contains(err.Error(), "format version 2") {
		t.Errorf("Open of a v2 directory = %v, want a version error", err)
	}

	dir = t.TempDir()
	r.setDown(true)
	q := openQueue(t, dir, o)
	id, _ := submit(t, q, simpleMsg)
	q.Close(context.Background())
	p := filepath.Join(dir, "q", id+".json")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`"v":1`), []byte(`"v":3`), 1), 0o600)
	if _, err := Open(dir, o, testLog(t)); err == nil || !strings.Contains(err.Error(), "format version 3") {
		t.Errorf("Open with a v3 record = %v, want a version error", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("the newer record was touched: %v", err)
	}
}

func TestExpiryBounces(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.setDown(true)
	var clock atomic.Int64
	clock.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	b := &bounces{}
	o := testOptions(r, b)
	o.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	o.MaxAge = 5 * 24 * time.Hour
	o.RetryInitial, o.RetryMax = time.Minute, time.Hour
	q := openQueue(t, t.TempDir(), o)
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "first attempt", func() bool { return q.Stats().Deferred == 4 })
	if len(b.list()) != 0 {
		t.Fatal("bounced before expiry")
	}
	clock.Add(int64(5*24*time.Hour + time.Second))
	q.kick()
	waitFor(t, 5*time.Second, "expiry bounce", func() bool { return len(b.list()) == 1 })
	waitFor(t, 5*time.Second, "removal", func() bool { return q.Len() == 0 })
	msg := string(b.list()[0].msg)
	for _, want := range []string{"Status: 4.4.7", "Final-Recipient: rfc822; eve@secret.example", "not delivered within 120h0m0s (1 attempts)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("expiry bounce lacks %q", want)
		}
	}
	if n := q.Stats().Bounced; n != 4 {
		t.Errorf("bounced %d, want 4", n)
	}
}

func TestNullSenderNeverBounced(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.rcpt = func(string) error { return &smtp.SMTPError{Code: 550, Message: "no"} }
	b := &bounces{}
	q := openQueue(t, t.TempDir(), testOptions(r, b))
	env := Envelope{User: "alice", From: "", Recipients: []string{"x@example.net"}}
	if _, err := q.EnqueueReader(context.Background(), env, strings.NewReader("Subject: a bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "drop", func() bool { return q.Len() == 0 })
	if len(b.list()) != 0 {
		t.Errorf("a null-sender message was bounced")
	}
	if q.Stats().Bounced != 1 {
		t.Errorf("stats %+v", q.Stats())
	}
}

func TestBounceRetried(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.rcpt = func(string) error { return &smtp.SMTPError{Code: 554, Message: "rejected"} }
	b := &bounces{}
	b.fail.Store(2)
	q := openQueue(t, t.TempDir(), testOptions(r, b))
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "bounce stored", func() bool { return q.Len() == 0 })
	if n := len(b.list()); n != 1 {
		t.Fatalf("%d bounces stored, want 1", n)
	}
	if b.fail.Load() != -1 {
		t.Errorf("Bounce called %d times, want 3", 2-b.fail.Load())
	}
	if n := len(r.received()); n != 0 {
		t.Errorf("relayed %d", n)
	}
}

func TestSTARTTLSAuth(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprint("implicit=", implicit), func(t *testing.T) {
			r := newRelay(t, relayOpts{tls: selfSigned(t), implicit: implicit, user: "gw", pass: "s3cret"})
			o := testOptions(r, &bounces{})
			o.TLS, o.InsecureSkipVerify, o.Username, o.Password = TLSStartTLS, true, "gw", "s3cret"
			if implicit {
				o.TLS = TLSImplicit
			}
			var logBuf syncBuffer
			q, err := Open(t.TempDir(), o, zerologTo(&logBuf))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close(context.Background())
			submit(t, q, simpleMsg)
			waitFor(t, 5*time.Second, "delivery", func() bool { return q.Len() == 0 })
			if len(r.received()) != 1 || r.authed.Load() != 1 {
				t.Fatalf("relayed %d, authenticated %d; want 1, 1", len(r.received()), r.authed.Load())
			}
			if strings.Contains(logBuf.String(), "s3cret") {
				t.Errorf("the password is in the log")
			}
		})
	}
	// STARTTLS is required in starttls mode: a relay without it defers.
	r := newRelay(t, relayOpts{})
	o := testOptions(r, &bounces{})
	o.TLS = TLSStartTLS
	q := openQueue(t, t.TempDir(), o)
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "deferral", func() bool { return q.Stats().Deferred >= 4 })
	if len(r.received()) != 0 {
		t.Errorf("sent in clear text although starttls was required")
	}
}

func TestOptionsRefused(t *testing.T) {
	b := &bounces{}
	for _, o := range []Options{
		{Bounce: b.store},
		{Relay: "relay.example", Bounce: b.store},
		{Relay: "relay.example:25"},
		{Relay: "relay.example:25", TLS: "ssl", Bounce: b.store},
		{Relay: "relay.example:25", TLS: TLSNone, Username: "u", Password: "p", Bounce: b.store},
	} {
		if _, err := Open(t.TempDir(), o, testLog(t)); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

// TestManyDomainsBounded is the seed-002 proof: it defers recipients in
// 100,000 distinct domains (10,000 under the race detector or -short), in
// two rounds: the domain map stays at its cap, nothing is lost, and the
// heap does not grow from one round to the next.
func TestManyDomainsBounded(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.rcpt = func(string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 3}, Message: "deferred"}
	}
	o := testOptions(r, &bounces{})
	o.MaxDomains = 100
	o.UnsafeNoSync = true        // durability is not what this test is about
	o.RetryInitial = time.Minute // one attempt per item within the test
	// Many connections at once: each RCPT is a round trip, and on a busy
	// machine round trips wait for the scheduler, not for the CPU.
	o.Workers = 16
	q := openQueue(t, t.TempDir(), o)

	perMsg, msgs := 125, 400 // 50,000 domains per round
	if raceEnabled || testing.Short() {
		msgs = 40 // 5,000 per round
	}
	round := func(n int) {
		for m := range msgs {
			env := Envelope{User: "alice", From: "alice@example.com"}
			for i := range perMsg {
				env.Recipients = append(env.Recipients, fmt.Sprintf("u@d%d-%d-%d.example", n, m, i))
			}
			if _, err := q.EnqueueReader(context.Background(), env, strings.NewReader(simpleMsg)); err != nil {
				t.Fatal(err)
			}
		}
		want := uint64((n + 1) * msgs * perMsg)
		waitFor(t, 120*time.Second, "deferrals", func() bool { return q.Stats().Deferred >= want })
		waitFor(t, 5*time.Second, "idle workers", func() bool { return q.Stats().InFlight == 0 })
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	round(0)
	h1 := heap()
	if d := q.Stats().Domains; d > 100 || d == 0 {
		t.Fatalf("domain states %d after %d domains, want 1..100", d, msgs*perMsg)
	}
	round(1)
	h2 := heap()
	st := q.Stats()
	if st.Domains > 100 {
		t.Fatalf("domain states %d after %d domains, want <= 100", st.Domains, 2*msgs*perMsg)
	}
	if st.Queued != 2*msgs {
		t.Errorf("queued %d, want %d (nothing lost)", st.Queued, 2*msgs)
	}
	t.Logf("heap after round 1: %d KiB, after round 2: %d KiB; stats %+v", h1>>10, h2>>10, st)
	// Round two adds 40 index entries (~100 bytes each) and no domain
	// state. An unbounded map would add ~150 bytes per domain (measured),
	// 720 KiB for 5,000 domains; 128 KiB leaves room for noise (seen: 13).
	if h2 > h1+128<<10 {
		t.Errorf("heap grew from %d to %d KiB between rounds", h1>>10, h2>>10)
	}
}

// TestDomainLRU checks eviction order, backoff growth and forgetting.
func TestDomainLRU(t *testing.T) {
	d := newDomainLRU(3)
	now := time.Unix(1000, 0)
	bo := func(n int) time.Duration { return time.Duration(n) * time.Second }
	for _, x := range []string{"a", "b", "c"} {
		d.deferred(x, now, bo)
	}
	d.heldUntil("a") // a is now the most recent
	d.deferred("d", now, bo)
	if d.Len() != 3 {
		t.Fatalf("len %d", d.Len())
	}
	if !d.heldUntil("b").IsZero() {
		t.Errorf("b should have been evicted (least recently used)")
	}
	if got := d.deferred("a", now, bo); !got.Equal(now.Add(2 * time.Second)) {
		t.Errorf("second deferral of a: next %v, want +2s", got)
	}
	d.delivered("a")
	if !d.heldUntil("a").IsZero() || d.Len() != 2 {
		t.Errorf("delivered did not forget a")
	}
	off := newDomainLRU(-1)
	off.deferred("a", now, bo)
	if off.Len() != 0 {
		t.Errorf("a disabled map kept state")
	}
}

func TestPartialDeliveryNotRepeated(t *testing.T) {
	r := newRelay(t, relayOpts{})
	var failed atomic.Bool
	r.rcpt = func(to string) error {
		if to == "dave@example.org" && !failed.Swap(true) {
			return &smtp.SMTPError{Code: 452, Message: "mailbox busy"}
		}
		return nil
	}
	q := openQueue(t, t.TempDir(), testOptions(r, &bounces{}))
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "delivery", func() bool { return q.Len() == 0 })
	got := r.received()
	if len(got) != 2 || strings.Join(got[1].rcpts, ",") != "dave@example.org" {
		t.Fatalf("transactions %+v, want the second one to dave only", got)
	}
}

// TestTooManyRecipientsBatched: a relay that takes at most 3 recipients
// per transaction (452 4.5.3 beyond, RFC 5321 §4.5.3.1.10) gets the rest
// in further transactions at once, not after a retry delay.
func TestTooManyRecipientsBatched(t *testing.T) {
	r := newRelay(t, relayOpts{})
	var inTxn atomic.Int32
	r.rcpt = func(string) error {
		if inTxn.Add(1) > 3 {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "too many recipients"}
		}
		return nil
	}
	r.data = func(relayed) error { inTxn.Store(0); return nil }
	o := testOptions(r, &bounces{})
	o.RetryInitial, o.RetryMax = time.Hour, time.Hour // a retry would not come within the test
	q := openQueue(t, t.TempDir(), o)
	env := Envelope{User: "alice", From: "alice@example.com"}
	for i := range 8 {
		env.Recipients = append(env.Recipients, fmt.Sprintf("r%d@x%d.test", i, i))
	}
	if _, err := q.EnqueueReader(context.Background(), env, strings.NewReader(simpleMsg)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delivery", func() bool { return q.Len() == 0 })
	got := r.received()
	if len(got) != 3 || len(got[0].rcpts) != 3 || len(got[2].rcpts) != 2 {
		t.Fatalf("%d transactions %+v, want 3 of 3, 3 and 2 recipients", len(got), got)
	}
	for _, rc := range env.Recipients {
		if countRcpt(got, rc) != 1 {
			t.Errorf("%s got %d copies", rc, countRcpt(got, rc))
		}
	}
	if st := q.Stats(); st.Domains != 0 || st.Deferred != 0 {
		t.Errorf("stats %+v: too-many refusals are neither deferrals nor domain hints", st)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	r := newRelay(t, relayOpts{})
	dir := t.TempDir()
	o := testOptions(r, &bounces{})
	q := openQueue(t, dir, o)
	if q2, err := Open(dir, o, testLog(t)); err == nil {
		q2.Close(context.Background())
		t.Fatal("a second Open of the same directory succeeded")
	}
	q.Close(context.Background())
	q3 := openQueue(t, dir, o) // the lock is released by Close
	q3.Close(context.Background())
}

// TestLargeMessageExact: a 1 MiB message reaches the relay byte for byte
// (CRLF input; the DATA dot-stuffing is undone by the relay).
func TestLargeMessageExact(t *testing.T) {
	r := newRelay(t, relayOpts{})
	q := openQueue(t, t.TempDir(), testOptions(r, &bounces{}))
	var sb strings.Builder
	sb.WriteString("From: alice@example.com\r\nTo: b@x.test\r\nDate: x\r\nMessage-ID: <m@x>\r\n\r\n")
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, ".line %d with a leading dot and some text to fill it up\r\n", i)
	}
	raw := sb.String()
	sp, _ := q.NewSpool()
	defer sp.Discard()
	env, err := PrepareRFC822(strings.NewReader(raw), alice, sp)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(sp.Reader()); string(got) != raw {
		t.Fatalf("spool differs from the input (%d vs %d bytes)", len(got), len(raw))
	}
	if _, err := q.Enqueue(context.Background(), env, sp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "delivery", func() bool { return q.Len() == 0 })
	got := r.received()
	if len(got) != 1 || string(got[0].data) != raw {
		t.Fatalf("relay got %d messages; data equal: %v", len(got), len(got) == 1 && string(got[0].data) == raw)
	}
}

// TestOpenRepairs: at Open a corrupt record goes to dead/, a message
// without a record (an Enqueue that never returned) and stale spools are
// removed, and the good items are kept.
func TestOpenRepairs(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.setDown(true)
	dir := t.TempDir()
	o := testOptions(r, &bounces{})
	q := openQueue(t, dir, o)
	good, _ := submit(t, q, simpleMsg)
	bad, _ := submit(t, q, simpleMsg)
	sp, _ := q.NewSpool()
	sp.Write([]byte("half a message"))
	q.Close(context.Background())

	os.WriteFile(filepath.Join(dir, "q", bad+".json"), []byte(`{"v":1,"id":`), 0o600)
	os.WriteFile(filepath.Join(dir, "q", "zz-orphan.msg"), []byte("x"), 0o600)
	q = openQueue(t, dir, o)
	if q.Len() != 1 {
		t.Fatalf("len %d, want 1", q.Len())
	}
	for _, p := range []string{"q/" + good + ".json", "q/" + good + ".msg", "dead/" + bad + ".json", "dead/" + bad + ".msg"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"q/zz-orphan.msg", "q/" + bad + ".json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s still exists", p)
		}
	}
	// (The reopened queue may be writing a record in tmp/ right now.)
	ents, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "spool-") {
			t.Errorf("stale spool %s not removed", e.Name())
		}
	}
}

// TestBouncePanicContained: a panicking Bounce (a bug in the caller) does
// not kill the worker; the item waits for the next start, others go on.
func TestBouncePanicContained(t *testing.T) {
	r := newRelay(t, relayOpts{})
	r.rcpt = func(to string) error {
		if strings.HasPrefix(to, "bob@") {
			return &smtp.SMTPError{Code: 550, Message: "no"}
		}
		return nil
	}
	o := testOptions(r, &bounces{})
	o.Workers = 1
	o.Bounce = func(context.Context, string, io.Reader) error { panic("bounce bug") }
	var logBuf syncBuffer
	q, err := Open(t.TempDir(), o, zerologTo(&logBuf))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	submit(t, q, simpleMsg)
	waitFor(t, 5*time.Second, "the panic", func() bool { return strings.Contains(logBuf.String(), "BUG: panic") })
	if _, err := q.EnqueueReader(context.Background(), Envelope{User: "alice", From: "alice@example.com", Recipients: []string{"z@x.test"}}, strings.NewReader("Subject: 2\r\n\r\nx")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the second message", func() bool { return countRcpt(r.received(), "z@x.test") == 1 && q.Len() == 1 })
	if st := q.Stats(); st.Queued != 1 || st.InFlight != 1 {
		t.Errorf("stats %+v: want the panicked item kept, out of the index", st)
	}
}
