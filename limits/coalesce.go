package limits

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"time"
)

// Coalescing: identical requests in flight (same user, method, path,
// semantic headers and body digest) are the retry storms of the seeds, a
// client that times out and resends the same heavy request again and
// again while the first copies still run. They are never run N times:
//
//   - Safe methods (PROPFIND, SEARCH, BPROPFIND, REPORT; RFC 9110 §9.2.1:
//     no state change) wait for the request already running and get a
//     copy of its response. The bytes are what the second request would
//     have got had it run a moment earlier, which any client must already
//     accept from a listing.
//   - State-changing methods (PROPPATCH, BPROPPATCH, BDELETE, BMOVE,
//     BCOPY) are refused with 429 and Retry-After while the first runs.
//     Sharing would tell the retry "done" for changes that its own run
//     would not have made (a BMOVE or BDELETE retried after the first has
//     run gets 404s, the true answer); after the refusal the client's
//     next retry runs for real against the new state. A refusal also
//     holds nothing: a shared write would keep every retry's connection
//     parked until the first finishes.
//
// The first copy keeps its response for sharing only when a duplicate is
// already waiting as its status is written: most requests have no
// duplicate, and a listing of 8 MiB copied on every run for nobody would
// cost that memory per request in flight. A duplicate that arrives once
// the first's response is under way, with nobody waiting before it, is
// refused (429 with Retry-After) like one whose response is too large to
// keep: its next retry runs for real or joins a flight early enough.
//
// Methods with a body the coalescer does not buffer (PUT: large) or
// whose meaning is in headers it would have to list (MOVE, COPY, DELETE
// without body, LOCK) are not coalesced; the per-user concurrency cap
// bounds them.

// Coalescing defaults.
const (
	// DefaultCoalesceMaxBody is the largest body digested: 1 MiB, the
	// max-xml-bytes default, so every XML body the handler would accept
	// can be keyed. A longer body is passed on untouched (and refused by
	// the handler's own cap).
	DefaultCoalesceMaxBody = 1 << 20
	// DefaultCoalesceMaxShare caps the response kept for sharing (only
	// while duplicates wait): 8 MiB holds a Depth 1 listing of a
	// 20,000-message folder; a larger one is not shared and its waiters
	// are refused (429), never re-run.
	DefaultCoalesceMaxShare = 8 << 20
	// DefaultCoalesceMaxWait bounds how long a duplicate waits for the
	// first copy before it is refused: a minute, past every client's own
	// timeout (30 s to 60 s), so nobody is left waiting for nothing.
	DefaultCoalesceMaxWait = time.Minute
	// DefaultCoalesceMaxWaiters caps the duplicates parked on one
	// request; more are refused at once.
	DefaultCoalesceMaxWaiters = 64
	// DefaultCoalesceMaxFlights caps the table of requests in flight
	// (bounded anyway by max-in-flight); past it requests run uncoalesced.
	DefaultCoalesceMaxFlights = DefaultMaxInFlight
)

// CoalesceOptions tune coalescing; zero values take the defaults.
type CoalesceOptions struct {
	// Off turns coalescing off.
	Off        bool
	MaxBody    int64
	MaxShare   int64
	MaxWait    time.Duration
	MaxWaiters int
	MaxFlights int
}

func (o CoalesceOptions) withDefaults() CoalesceOptions {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultCoalesceMaxBody
	}
	if o.MaxShare <= 0 {
		o.MaxShare = DefaultCoalesceMaxShare
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultCoalesceMaxWait
	}
	if o.MaxWaiters <= 0 {
		o.MaxWaiters = DefaultCoalesceMaxWaiters
	}
	if o.MaxFlights <= 0 {
		o.MaxFlights = DefaultCoalesceMaxFlights
	}
	return o
}

// coalesceMode says what happens to a duplicate of a method.
type coalesceMode int

const (
	coalesceNone   coalesceMode = iota
	coalesceShare               // wait and share the first's response
	coalesceRefuse              // 429 while the first runs
)

// modeOf classifies methods (see the comment at the top of the file).
func modeOf(method string) coalesceMode {
	switch method {
	case "PROPFIND", "SEARCH", "BPROPFIND", "REPORT":
		return coalesceShare
	case "PROPPATCH", "BPROPPATCH", "BDELETE", "BMOVE", "BCOPY":
		return coalesceRefuse
	}
	return coalesceNone
}

// keyHeaders are the request headers that change a response of the
// coalesced methods; they are part of the key.
var keyHeaders = []string{"Depth", "Brief", "Prefer", "Translate", "Range", "If", "Destination", "Overwrite", "Accept", "Accept-Encoding"}

type flightKey [sha256.Size]byte

// flight is one request in flight that duplicates may join.
type flight struct {
	done    chan struct{}
	waiters int
	// late is set when the leader's response started with no waiter, or
	// grew past MaxShare: nothing is kept, so later duplicates are
	// refused (guarded by the coalescer's mu).
	late bool
	// Filled by the leader before done is closed.
	shareable bool
	status    int
	header    http.Header
	body      chunks
	items     int64
}

// shareChunk is the size of the fixed blocks a shared response is kept
// in: a response is copied once, never into a buffer that grows by
// reallocation (brief, failure 1).
const shareChunk = 64 << 10

// chunks is a response body kept in shareChunk-sized blocks.
type chunks struct {
	blocks [][]byte
	n      int64
}

func (c *chunks) write(p []byte) {
	c.n += int64(len(p))
	for len(p) > 0 {
		if k := len(c.blocks); k == 0 || len(c.blocks[k-1]) == shareChunk {
			c.blocks = append(c.blocks, make([]byte, 0, shareChunk))
		}
		last := &c.blocks[len(c.blocks)-1]
		m := min(len(p), shareChunk-len(*last))
		*last = append(*last, p[:m]...)
		p = p[m:]
	}
}

// coalescer is the table of flights.
type coalescer struct {
	opt CoalesceOptions
	mu  sync.Mutex
	m   map[flightKey]*flight
}

func newCoalescer(o CoalesceOptions) *coalescer {
	return &coalescer{opt: o, m: make(map[flightKey]*flight)}
}

// Len returns the number of flights.
func (c *coalescer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// readKey reads up to MaxBody bytes of r's body and digests the request.
// It returns the body to hand on (the bytes read, then the rest) and
// ok=false when the body is over the cap (not coalesced).
func (c *coalescer) readKey(r *http.Request, user string) (flightKey, io.ReadCloser, bool, error) {
	var key flightKey
	var buf []byte
	body := r.Body
	if body != nil && body != http.NoBody {
		if r.ContentLength > c.opt.MaxBody {
			return key, body, false, nil
		}
		var err error
		buf, err = io.ReadAll(io.LimitReader(body, c.opt.MaxBody+1))
		if err != nil {
			return key, nil, false, err
		}
		if int64(len(buf)) > c.opt.MaxBody {
			return key, readCloser{io.MultiReader(bytes.NewReader(buf), body), body}, false, nil
		}
		body = readCloser{bytes.NewReader(buf), body}
	}
	h := sha256.New()
	sep := []byte{0}
	for _, s := range []string{user, r.Method, r.URL.EscapedPath(), r.URL.RawQuery} {
		io.WriteString(h, s)
		h.Write(sep)
	}
	for _, name := range keyHeaders {
		for _, v := range r.Header.Values(name) {
			io.WriteString(h, v)
			h.Write([]byte{1})
		}
		h.Write(sep)
	}
	h.Write(buf)
	h.Sum(key[:0])
	return key, body, true, nil
}

// readCloser reads from r and closes c (the original body).
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// join returns the flight of key and whether the caller leads it (runs
// the request). A nil flight means: run uncoalesced (table full), or,
// with tooMany, refuse (a duplicate that may not wait, or too many
// waiters). A duplicate that may wait is counted as a waiter.
func (c *coalescer) join(key flightKey, mayWait bool) (f *flight, leader, tooMany bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.m[key]; ok {
		if !mayWait || f.late || f.waiters >= c.opt.MaxWaiters {
			return nil, false, true
		}
		f.waiters++
		return f, false, false
	}
	if len(c.m) >= c.opt.MaxFlights {
		return nil, false, false
	}
	f = &flight{done: make(chan struct{})}
	c.m[key] = f
	return f, true, false
}

// leave gives up waiting on f.
func (c *coalescer) leave(f *flight) {
	c.mu.Lock()
	f.waiters--
	c.mu.Unlock()
}

// finish removes the leader's flight and wakes its waiters.
func (c *coalescer) finish(key flightKey, f *flight) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
	close(f.done)
}

// recorder passes the leader's response through and, when duplicates
// wait for it as its status is written, keeps a copy for them, up to max
// bytes.
type recorder struct {
	http.ResponseWriter
	co      *coalescer
	f       *flight
	max     int64
	status  int
	header  http.Header
	buf     chunks
	keep    bool // a waiter was there when the status was written
	over    bool
	written bool
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.written && code >= 200 {
		rec.written, rec.status = true, code
		rec.co.mu.Lock()
		if rec.f.waiters > 0 {
			rec.keep = true
		} else {
			rec.f.late = true
		}
		rec.co.mu.Unlock()
		if rec.keep {
			rec.header = rec.ResponseWriter.Header().Clone()
		}
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.written {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.keep && !rec.over {
		if rec.buf.n+int64(len(p)) > rec.max {
			rec.over = true
			rec.buf = chunks{}
			// Too large to share: later duplicates are refused at once
			// rather than parked until the end.
			rec.co.mu.Lock()
			rec.f.late = true
			rec.co.mu.Unlock()
		} else {
			rec.buf.write(p)
		}
	}
	return rec.ResponseWriter.Write(p)
}

// Flush implements http.Flusher.
func (rec *recorder) Flush() {
	if !rec.written {
		rec.WriteHeader(http.StatusOK)
	}
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap is for http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// noShare are the response headers never copied to a waiter: its own
// request id, and anything that belongs to one connection or session.
var noShare = map[string]bool{"X-Request-Id": true, "Set-Cookie": true, "Connection": true}

// replay writes f's response to w.
func (f *flight) replay(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range f.header {
		if !noShare[k] {
			h[k] = v
		}
	}
	h.Set("X-Davmail-Coalesced", "1")
	w.WriteHeader(f.status)
	for _, b := range f.body.blocks {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}
