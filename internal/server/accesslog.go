package server

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/davmail/davmail/internal/metrics"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
)

// maxUALog caps the User-Agent in the access log: real ones are under
// 200 bytes; a client must not be able to make each log line huge.
const maxUALog = 256

// accessLog wraps next with the request record: a request id (also sent
// as X-Request-Id), a reqlog.Entry with a request-scoped logger in the
// context, byte counting both ways, panic recovery, and at the end exactly
// one "request" event and one metrics observation. Authorization and
// Cookie headers are never logged.
type accessLog struct {
	log    zerolog.Logger
	next   http.Handler
	panics *atomic.Int64
	// bodyIdle is how long a request body may stall before its read fails
	// (see countingBody); 0 disables it.
	bodyIdle time.Duration
	// metrics, when set, gets every request the log line describes.
	metrics *metrics.Metrics
}

func newRequestID() string {
	var b [8]byte // 16 hex characters: unique enough to find one request in a day of logs
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *accessLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	entry := &reqlog.Entry{ID: id, Log: a.log.With().Str("req", id).Logger()}
	ctx := reqlog.With(r.Context(), entry)
	ctx = entry.Log.WithContext(ctx)

	rw := &responseWriter{w: w}
	rw.Header().Set("X-Request-Id", id)
	// The body is replaced on a copy of the request only: net/http looks
	// at its own request's Body type (*expectContinueReader) after the
	// handler to decide between closing the connection and draining the
	// body; a foreign type there makes it wait for a body the client will
	// not send before a 100 Continue (a 401 to "Expect: 100-continue"
	// would hang).
	r = r.WithContext(ctx)
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{rc: r.Body, ctl: http.NewResponseController(w), idle: a.bodyIdle}
		r.Body = body
	}

	if a.metrics != nil {
		a.metrics.Started()
	}
	defer func() {
		rec := recover()
		if rec != nil && rec != http.ErrAbortHandler {
			a.panics.Add(1)
			entry.Err = fmt.Errorf("panic: %v", rec)
			entry.Log.Error().Str("panic", fmt.Sprint(rec)).Bytes("stack", debug.Stack()).Msg("handler panicked")
			if !rw.wroteHeader {
				rw.Header().Del("Content-Length")
				rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
				rw.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(rw, "500 Internal Server Error (request %s)\n", id)
			} else {
				// The response is half written: make the client see a
				// broken response, not a short one taken for whole.
				rec = http.ErrAbortHandler
			}
		}
		// A body not read to its end keeps its deadline: net/http then
		// discards up to 256 KiB of it, and a stalled client must not
		// hold the connection during that either. The next request on
		// the connection gets fresh deadlines from net/http.
		a.logRequest(r, entry, rw, body, time.Since(start))
		if rec == http.ErrAbortHandler {
			panic(rec) // net/http closes the connection quietly
		}
	}()
	a.next.ServeHTTP(rw, r)
}

func (a *accessLog) logRequest(r *http.Request, e *reqlog.Entry, rw *responseWriter, body *countingBody, d time.Duration) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http sends 200
	}
	var ev *zerolog.Event
	switch {
	case status >= 500:
		ev = a.log.Error().Err(e.Err)
	case status >= 400 && e.Limit != "":
		ev = a.log.Warn()
	default:
		ev = a.log.Info()
	}
	var in int64
	if body != nil {
		in = body.n
	}
	ua := r.UserAgent()
	if len(ua) > maxUALog {
		ua = ua[:maxUALog]
	}
	ev = ev.Str("id", e.ID).
		Str("user", e.User).
		Str("remote", r.RemoteAddr).
		Str("ua", ua).
		Str("method", r.Method).
		Str("path", r.URL.EscapedPath()).
		Int("status", status).
		Int64("bytes_in", in).
		Int64("bytes_out", rw.bytes).
		Float64("duration", float64(d.Microseconds())/1000).
		Int64("items", e.Items)
	if e.Limit != "" {
		ev = ev.Str("limit", e.Limit).Int64("limit_value", e.LimitValue).Int64("limit_size", e.LimitSize)
	}
	ev.Msg("request")
	if a.metrics != nil {
		a.metrics.Done(metrics.Request{
			Method: r.Method, Status: status, Duration: d,
			BytesIn: in, BytesOut: rw.bytes, Limit: e.Limit,
		})
	}
}

// responseWriter records the status and counts the bytes of the body. It
// stays transparent: Flush and ReadFrom (sendfile for *os.File bodies)
// pass through, and Unwrap lets http.ResponseController reach the
// connection for deadlines, hijacking and full duplex.
type responseWriter struct {
	w           http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if !rw.wroteHeader {
		// 1xx informational responses (100 Continue, 103 Early Hints)
		// are not the final status; 101 Switching Protocols is.
		if code >= 200 || code == http.StatusSwitchingProtocols {
			rw.status, rw.wroteHeader = code, true
		}
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = http.StatusOK, true
	}
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy(w, file) use sendfile(2) when the underlying
// writer can.
func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = http.StatusOK, true
	}
	if rf, ok := rw.w.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(src)
		rw.bytes += n
		return n, err
	}
	// Hide our ReadFrom from io.Copy to avoid recursion.
	n, err := io.Copy(writerOnly{rw.w}, src)
	rw.bytes += n
	return n, err
}

type writerOnly struct{ io.Writer }

// Flush implements http.Flusher.
func (rw *responseWriter) Flush() {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = http.StatusOK, true
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap is for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// Hijack implements http.Hijacker for handlers that assert it directly.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rw.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	c, brw, err := h.Hijack()
	if err == nil {
		rw.status, rw.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return c, brw, err
}

// countingBody counts the request body's bytes and enforces the body idle
// timeout: before each read it extends the connection's read deadline by
// idle (at most once a second, to keep the timer updates cheap), so a body
// that stalls fails instead of holding the connection forever, while a
// slow but moving upload of any length succeeds (read-timeout is 0 by
// default: a whole-request deadline would cut legitimate slow uploads).
type countingBody struct {
	rc       io.ReadCloser
	ctl      *http.ResponseController
	idle     time.Duration
	n        int64
	extended time.Time
	armed    bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		if now := time.Now(); now.Sub(b.extended) >= time.Second {
			if b.ctl.SetReadDeadline(now.Add(b.idle)) == nil {
				b.extended, b.armed = now, true
			}
		}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		// At EOF net/http starts its background read to notice a client
		// that hangs up; our deadline must not fire there and cancel the
		// request's context while the handler is still working. On any
		// other error (the idle deadline passed: a stalled body) the
		// deadline stays, so that net/http's drain of the unread body
		// after the handler fails at once and the connection is closed,
		// instead of waiting for the stalled client forever.
		b.clearDeadline()
	}
	return n, err
}

func (b *countingBody) clearDeadline() {
	if b.armed {
		b.ctl.SetReadDeadline(time.Time{})
		b.armed = false
	}
}

func (b *countingBody) Close() error { return b.rc.Close() }
