package limits

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/davmail/davmail/internal/reqlog"
)

// The fair share runs in two stages, because the limiter sits between
// the access log and the router while authentication runs inside the
// router (internal/server):
//
//   - Wrap, outside the router, admits every request on what is known
//     before credentials are checked: the server-wide count in flight
//     (503 past it) and the client address's concurrency and rate (429).
//     It needs no user, so floods of unauthenticated requests and login
//     guesses are bounded before they cost a credential check.
//   - Gate, placed right after authentication (the auth middleware calls
//     it with the verified user in the request's reqlog entry), admits on
//     the user: time budget, rate, concurrency, and coalesces duplicates.
//     It charges the handler's time to the user when the handler returns.
//
// Identity is never taken from the unverified Authorization header:
// otherwise anyone could spend another user's budget or slots by naming
// them, and, worse, be handed another user's coalesced response. Requests
// that authenticate on a route without Gate (the forms login) are charged
// after the fact by Wrap, from the user auth recorded in reqlog.

// ticket is Wrap's per-request note, found by Gate in the context.
type ticket struct {
	gated bool // Gate charged the request
}

type ticketKey struct{}

// Wrap returns next behind the server-wide and per-address admission
// (the first stage; see Gate).
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := l.now()
		if e := l.admitGlobal(); e != nil {
			l.refuse(w, r, e)
			return
		}
		defer l.releaseGlobal()
		addr := l.opt.ClientIP(r)
		st, e := l.admitIP(addr, start)
		if e != nil {
			l.refuse(w, r, e)
			return
		}
		defer l.releaseIP(addr, st)
		t := &ticket{}
		r = r.WithContext(context.WithValue(r.Context(), ticketKey{}, t))
		next.ServeHTTP(w, r)
		if !t.gated {
			if user := reqlog.User(r.Context()); user != "" {
				end := l.now()
				l.chargeLate(user, end.Sub(start), end)
			}
		}
	})
}

// Gate returns next behind the per-user admission and coalescing (the
// second stage). It must run after authentication: it reads the user
// from the request's reqlog entry, and passes requests without one
// through untouched.
func (l *Limiter) Gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := reqlog.User(r.Context())
		if user == "" {
			next.ServeHTTP(w, r)
			return
		}
		if t, ok := r.Context().Value(ticketKey{}).(*ticket); ok {
			t.gated = true
		}
		start := l.now()
		st, e := l.checkUser(user, start)
		if e != nil {
			l.refuse(w, r, e)
			return
		}
		mode := coalesceNone
		if !l.opt.Coalesce.Off {
			mode = modeOf(r.Method)
		}
		if mode == coalesceNone {
			l.run(next, w, r, user, st, start)
			return
		}
		key, body, ok, err := l.co.readKey(r, user)
		if err != nil {
			l.bodyFailed(w, r, err)
			return
		}
		r2 := *r
		r2.Body = body
		r = &r2
		if !ok {
			l.run(next, w, r, user, st, start)
			return
		}
		f, leader, tooMany := l.co.join(key, mode == coalesceShare)
		switch {
		case tooMany:
			l.refuse(w, r, duplicate())
		case f == nil:
			l.run(next, w, r, user, st, start)
		case !leader:
			l.wait(w, r, f)
		default:
			l.lead(next, w, r, user, st, start, key, f)
		}
	})
}

// duplicate is the refusal of a duplicate request.
func duplicate() *Error {
	return busy("duplicate-in-flight", 1, 2, "requests", http.StatusTooManyRequests, busyRetry)
}

// run serves r with one of user's concurrency slots and charges its time.
func (l *Limiter) run(next http.Handler, w http.ResponseWriter, r *http.Request, user string, st *userState, start time.Time) bool {
	if e := l.takeUser(user, st); e != nil {
		l.refuse(w, r, e)
		return false
	}
	defer func() {
		l.releaseUser(user, st)
		end := l.now()
		l.charge(user, st, end.Sub(start), end)
	}()
	next.ServeHTTP(w, r)
	return true
}

// lead runs the first of a set of identical requests, recording its
// response for the duplicates that wait on f.
func (l *Limiter) lead(next http.Handler, w http.ResponseWriter, r *http.Request, user string, st *userState, start time.Time, key flightKey, f *flight) {
	rec := &recorder{ResponseWriter: w, co: l.co, f: f, max: l.co.opt.MaxShare}
	completed := false
	defer func() {
		// A panic leaves completed false: the waiters are refused, the
		// panic goes on to the access log's recovery.
		if completed && rec.keep && !rec.over && rec.status < 500 {
			f.shareable, f.status, f.header, f.body = true, rec.status, rec.header, rec.buf
			f.items = reqlog.From(r.Context()).Items
		}
		l.co.finish(key, f)
	}()
	completed = l.run(next, rec, r, user, st, start)
}

// wait makes a duplicate wait for f's leader and share its response, or
// refuses it (state-changing methods, or a leader whose response cannot
// be shared).
func (l *Limiter) wait(w http.ResponseWriter, r *http.Request, f *flight) {
	t := time.NewTimer(l.co.opt.MaxWait)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		l.co.leave(f)
		l.refuse(w, r, duplicate())
		return
	case <-r.Context().Done():
		l.co.leave(f)
		reqlog.From(r.Context()).Err = r.Context().Err()
		return
	}
	if !f.shareable {
		l.refuse(w, r, duplicate())
		return
	}
	reqlog.From(r.Context()).Items = f.items
	f.replay(w)
}

// bodyFailed answers a request whose body could not be read: the client
// stalled (the body idle timeout) or hung up.
func (l *Limiter) bodyFailed(w http.ResponseWriter, r *http.Request, err error) {
	ent := reqlog.From(r.Context())
	ent.Err = err
	var le *Error
	if errors.As(err, &le) {
		l.refuse(w, r, le)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "400 Bad Request: reading the request body: %v\n", err)
}

// maxUALog caps the User-Agent logged with a refusal (real ones are
// under 200 bytes).
const maxUALog = 256

// refuse logs e as one "throttled" event (user, user agent, address, the
// limit and its value) in the request's log, records it in the reqlog
// entry for the access log and metrics, and answers.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	ent := reqlog.From(r.Context())
	ent.Limit, ent.LimitValue, ent.LimitSize = e.Limit, e.Value, e.Size
	lg := l.log
	if ent.ID != "" {
		lg = ent.Log
	}
	ua := r.UserAgent()
	if len(ua) > maxUALog {
		ua = ua[:maxUALog]
	}
	lg.Warn().Str("user", ent.User).Str("ua", ua).Str("remote", r.RemoteAddr).
		Str("method", r.Method).Str("path", r.URL.EscapedPath()).
		Str("limit", e.Limit).Int64("limit_value", e.Value).Int64("limit_size", e.Size).Str("unit", e.Unit).
		Int("status", e.Status).Dur("retry_after", e.RetryAfter).Msg("throttled")
	WriteError(w, e)
}

// WriteError answers with e: its status, Retry-After (whole seconds,
// rounded up, RFC 9110 §10.2.3) and a one-line text body naming the limit.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, "%d %s: %s\n", e.Status, http.StatusText(e.Status), e.Error())
}

// ClientIP is the default client key: the remote IP without the port,
// and for IPv6 its /64. Behind a reverse proxy it is the proxy's address.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
