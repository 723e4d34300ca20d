package limits

import (
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Fair-share defaults, each with its reason. docs/limits.md says how to
// tune them.
const (
	// DefaultWindow is the sliding window over which a user's server
	// time is summed: one minute, as Exchange's EAS/OWA PercentTimeInCAS
	// budgets are, long enough that a burst of heavy requests fits, short
	// enough that a throttled user is back within a minute.
	DefaultWindow = time.Minute
	// DefaultUserBudget is the handler time a user may consume per
	// window: 4 minutes a minute, i.e. four requests busy end to end all
	// the time (EASPercentTimeInCAS 400%). A sync client (rclone runs 4
	// transfers) fits; a client keeping 16 slow requests busy does not.
	DefaultUserBudget = 4 * time.Minute
	// DefaultUserConcurrent caps one user's requests in flight: rclone
	// runs 4 transfers and up to 8 listing checkers at once (12), Finder
	// and Windows about 6; 16 leaves room for all of them.
	DefaultUserConcurrent = 16
	// DefaultUserRate is the sustained request rate of one user (per
	// second): litmus, the busiest well-behaved client, sends a few
	// hundred requests in bursts; 100/s sustained is far above what any
	// mail client does and bounds a retry loop of cheap requests.
	DefaultUserRate = 100
	// DefaultUserBurst is the token bucket's depth: a whole litmus run
	// or a client's start-up sync fits without waiting.
	DefaultUserBurst = 1000
	// DefaultIPConcurrent caps the requests in flight from one client
	// address (an IPv6 /64): four users' worth, since several people
	// often share an address (NAT, an office proxy).
	DefaultIPConcurrent = 4 * DefaultUserConcurrent
	// DefaultIPRate and DefaultIPBurst bound one address, authenticated
	// or not, at four users' worth: the stage that protects the login
	// path from floods, before any credential is checked.
	DefaultIPRate  = 4 * DefaultUserRate
	DefaultIPBurst = 4 * DefaultUserBurst
	// DefaultMaxInFlight is the server-wide cap on requests in flight:
	// past it the server is overloaded whoever asks and answers 503. 512
	// requests of a few goroutines and 64 KiB buffers each stay well
	// within the memory of the smallest deployment (~100 MiB).
	DefaultMaxInFlight = 512
	// DefaultMaxKeys caps each keyed table (users, addresses): 10,000
	// entries of under 300 bytes each is ~3 MiB per table, enough for a
	// large site and a sizeable botnet; beyond it the least recently
	// seen idle keys are forgotten.
	DefaultMaxKeys = 10000
	// windowSlots is how finely the window slides: 12 slots of 5 s for
	// the default minute, so Retry-After is exact to 5 s.
	windowSlots = 12
	// busyRetry is the Retry-After of a concurrency refusal: a slot frees
	// when any request of the user ends, which the server cannot predict;
	// one second lets a client retry soon without spinning.
	busyRetry = time.Second
	// overloadRetry is the Retry-After of the server-wide 503: long
	// enough for the queue of work in flight to drain a little.
	overloadRetry = 2 * time.Second
)

// Quota is one user's share. Zero fields take the default (Options.User,
// then the constants above); -1 means unlimited (the go-message
// convention: zero never turns a safety limit off).
type Quota struct {
	// Budget is the handler time the user may consume per window.
	Budget time.Duration
	// Concurrent caps the user's requests in flight.
	Concurrent int
	// Rate is the sustained requests per second; Burst the bucket depth.
	Rate  float64
	Burst int
}

// withDefaults fills q's zero fields from d.
func (q Quota) withDefaults(d Quota) Quota {
	if q.Budget == 0 {
		q.Budget = d.Budget
	}
	if q.Concurrent == 0 {
		q.Concurrent = d.Concurrent
	}
	if q.Rate == 0 {
		q.Rate = d.Rate
	}
	if q.Burst == 0 {
		q.Burst = d.Burst
	}
	return q
}

// builtinQuota is the share of a user when nothing is configured.
var builtinQuota = Quota{Budget: DefaultUserBudget, Concurrent: DefaultUserConcurrent, Rate: DefaultUserRate, Burst: DefaultUserBurst}

// Options configure a Limiter. Zero values take the defaults above.
type Options struct {
	// Window is the sliding window of the time budget.
	Window time.Duration
	// User is every user's default share.
	User Quota
	// Overrides gives named users their own share; zero fields inherit
	// User. Override, when set, is asked for users not in the map. Both
	// are read once per user entry (when the user is first seen, or seen
	// again after eviction), never per request.
	Overrides map[string]Quota
	Override  func(user string) (Quota, bool)
	// IPConcurrent, IPRate and IPBurst bound one client address (see
	// ClientIP); -1 means unlimited.
	IPConcurrent int
	IPRate       float64
	IPBurst      int
	// MaxInFlight caps the server's requests in flight (503 past it).
	MaxInFlight int
	// MaxKeys caps each keyed table (users, addresses).
	MaxKeys int
	// Coalesce tunes the handling of identical requests in flight.
	Coalesce CoalesceOptions
	// ClientIP returns r's client key: by default the remote IP, and for
	// IPv6 its /64 (one host is routinely given a whole /64).
	ClientIP func(r *http.Request) string
	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time
	// Logger receives the refusal events when the request carries no
	// logger of its own (see internal/reqlog).
	Logger zerolog.Logger
}

// Limiter enforces the fair share: server-wide and per-address admission
// in Wrap, per-user admission, time budget and coalescing in Gate. Safe
// for concurrent use; the admission check takes one sharded lock per
// stage and no global one.
type Limiter struct {
	opt      Options
	window   time.Duration
	slot     time.Duration
	inflight atomic.Int64
	users    *table[userState]
	ips      *table[ipState]
	co       *coalescer
	now      func() time.Time
	log      zerolog.Logger
}

// userState is one user's accounting.
type userState struct {
	quota    Quota
	inflight int
	bucket   bucket
	win      window
}

// ipState is one client address's accounting.
type ipState struct {
	inflight int
	bucket   bucket
}

// NewLimiter returns a Limiter with o's settings.
func NewLimiter(o Options) *Limiter {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	o.User = o.User.withDefaults(builtinQuota)
	if o.IPConcurrent == 0 {
		o.IPConcurrent = DefaultIPConcurrent
	}
	if o.IPRate == 0 {
		o.IPRate = DefaultIPRate
	}
	if o.IPBurst == 0 {
		o.IPBurst = DefaultIPBurst
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.ClientIP == nil {
		o.ClientIP = ClientIP
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{
		opt:    o,
		window: o.Window,
		slot:   o.Window / windowSlots,
		users:  newTable(o.MaxKeys, func(u *userState) bool { return u.inflight == 0 }),
		ips:    newTable(o.MaxKeys, func(s *ipState) bool { return s.inflight == 0 }),
		now:    o.Now,
		log:    o.Logger,
	}
	if l.slot <= 0 {
		l.slot = 1
	}
	l.co = newCoalescer(o.Coalesce.withDefaults())
	return l
}

// UsersLen, IPsLen and FlightsLen are the sizes of the keyed tables, for
// the gauges; InFlight is the number of requests in flight.
func (l *Limiter) UsersLen() int   { return l.users.Len() }
func (l *Limiter) IPsLen() int     { return l.ips.Len() }
func (l *Limiter) FlightsLen() int { return l.co.Len() }
func (l *Limiter) InFlight() int   { return int(l.inflight.Load()) }

// Usage is a snapshot of one user's accounting, for metrics and tests.
type Usage struct {
	Quota    Quota
	InFlight int
	Used     time.Duration // handler time in the current window
	Tokens   float64       // left in the rate bucket
}

// Usage returns user's accounting, false when the user is not tracked.
func (l *Limiter) Usage(user string) (Usage, bool) {
	now := l.now()
	var u Usage
	ok := l.users.peek(user, func(s *userState) {
		u = Usage{Quota: s.quota, InFlight: s.inflight, Used: s.win.sum(l.index(now)), Tokens: s.bucket.level(now, s.quota.Rate, s.quota.Burst)}
	})
	return u, ok
}

// quotaOf returns user's share: an override, or the default.
func (l *Limiter) quotaOf(user string) Quota {
	if q, ok := l.opt.Overrides[user]; ok {
		return q.withDefaults(l.opt.User)
	}
	if l.opt.Override != nil {
		if q, ok := l.opt.Override(user); ok {
			return q.withDefaults(l.opt.User)
		}
	}
	return l.opt.User
}

// index is now's slot number.
func (l *Limiter) index(now time.Time) int64 { return now.UnixNano() / int64(l.slot) }

// admitGlobal takes a server-wide slot, or refuses with 503.
func (l *Limiter) admitGlobal() *Error {
	n := l.inflight.Add(1)
	if max := int64(l.opt.MaxInFlight); max > 0 && n > max {
		l.inflight.Add(-1)
		return busy("max-in-flight", max, n, "requests", http.StatusServiceUnavailable, overloadRetry)
	}
	return nil
}

func (l *Limiter) releaseGlobal() { l.inflight.Add(-1) }

// admitIP takes a token and a concurrency slot of addr. On success the
// returned state must be given back to releaseIP.
func (l *Limiter) admitIP(addr string, now time.Time) (*ipState, *Error) {
	var refusal *Error
	st := l.ips.do(addr, nil, func(s *ipState) {
		if c := l.opt.IPConcurrent; c > 0 && s.inflight >= c {
			refusal = busy("ip-max-concurrent", int64(c), int64(s.inflight+1), "requests", http.StatusTooManyRequests, busyRetry)
			return
		}
		if l.opt.IPRate > 0 {
			if wait, ok := s.bucket.take(now, l.opt.IPRate, l.opt.IPBurst); !ok {
				refusal = busy("ip-rate", int64(l.opt.IPRate), -1, "requests/s", http.StatusTooManyRequests, wait)
				return
			}
		}
		s.inflight++
	})
	if refusal != nil {
		return nil, refusal
	}
	return st, nil
}

func (l *Limiter) releaseIP(addr string, st *ipState) {
	l.ips.update(addr, st, func(s *ipState) { s.inflight-- })
}

// checkUser refuses when user is over budget or out of rate tokens, and
// otherwise takes a token. It takes no concurrency slot (see takeUser):
// a coalesced request waits without one.
func (l *Limiter) checkUser(user string, now time.Time) (*userState, *Error) {
	var refusal *Error
	st := l.users.do(user, func(s *userState) { s.quota = l.quotaOf(user) }, func(s *userState) {
		q := s.quota
		if q.Budget > 0 {
			cur := l.index(now)
			if used := s.win.sum(cur); used >= q.Budget {
				wait := s.win.retryAfter(cur, q.Budget, l.slot, now)
				refusal = busy("user-time-budget", q.Budget.Milliseconds(), used.Milliseconds(), "ms", http.StatusTooManyRequests, wait)
				return
			}
		}
		if q.Rate > 0 {
			if wait, ok := s.bucket.take(now, q.Rate, q.Burst); !ok {
				refusal = busy("user-rate", int64(q.Rate), -1, "requests/s", http.StatusTooManyRequests, wait)
			}
		}
	})
	return st, refusal
}

// takeUser takes one of user's concurrency slots, or refuses.
func (l *Limiter) takeUser(user string, st *userState) *Error {
	var refusal *Error
	l.users.update(user, st, func(s *userState) {
		if c := s.quota.Concurrent; c > 0 && s.inflight >= c {
			refusal = busy("user-max-concurrent", int64(c), int64(s.inflight+1), "requests", http.StatusTooManyRequests, busyRetry)
			return
		}
		s.inflight++
	})
	return refusal
}

// releaseUser gives back a slot taken by takeUser.
func (l *Limiter) releaseUser(user string, st *userState) {
	l.users.update(user, st, func(s *userState) { s.inflight-- })
}

// charge adds d of handler time, ended at now, to user's window.
func (l *Limiter) charge(user string, st *userState, d time.Duration, now time.Time) {
	if d <= 0 {
		return
	}
	l.users.update(user, st, func(s *userState) { s.win.add(l.index(now), d) })
}

// chargeLate charges d to a user known only after the handler ran (a
// route outside Gate: the forms login): it is counted for the next
// requests, and takes a rate token (possibly into debt).
func (l *Limiter) chargeLate(user string, d time.Duration, now time.Time) {
	l.users.do(user, func(s *userState) { s.quota = l.quotaOf(user) }, func(s *userState) {
		if d > 0 {
			s.win.add(l.index(now), d)
		}
		if s.quota.Rate > 0 {
			s.bucket.takeDebt(now, s.quota.Rate, s.quota.Burst)
		}
	})
}

// busy builds a throttling refusal.
func busy(limit string, value, size int64, unit string, status int, retry time.Duration) *Error {
	if retry < time.Second {
		retry = time.Second // Retry-After is in whole seconds (RFC 9110 §10.2.3)
	}
	return &Error{Kind: ErrBusy, Limit: limit, Value: value, Size: size, Unit: unit, Status: status, RetryAfter: retry}
}

// bucket is a token bucket; the zero value is full on first use.
type bucket struct {
	tokens float64
	last   time.Time
}

// level refills the bucket to now and returns its tokens.
func (b *bucket) level(now time.Time, rate float64, burst int) float64 {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
		return b.tokens
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+dt.Seconds()*rate)
		b.last = now
	}
	return b.tokens
}

// take takes one token, or returns how long until one is there.
func (b *bucket) take(now time.Time, rate float64, burst int) (time.Duration, bool) {
	t := b.level(now, rate, burst)
	if t >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - t) / rate * float64(time.Second)), false
}

// takeDebt takes one token even when there is none, down to one burst
// of debt: a charge after the fact still counts.
func (b *bucket) takeDebt(now time.Time, rate float64, burst int) {
	b.level(now, rate, burst)
	if b.tokens > -float64(burst) {
		b.tokens--
	}
}

// window sums durations over the last windowSlots slots.
type window struct {
	used  [windowSlots]time.Duration
	stamp [windowSlots]int64 // slot index each cell holds
}

// add charges d to slot cur.
func (w *window) add(cur int64, d time.Duration) {
	i := cur % windowSlots
	if w.stamp[i] != cur {
		w.stamp[i], w.used[i] = cur, 0
	}
	w.used[i] += d
}

// sum is the time charged in the window ending with slot cur.
func (w *window) sum(cur int64) time.Duration {
	var s time.Duration
	for i := range w.used {
		if w.stamp[i] > cur-windowSlots && w.stamp[i] <= cur {
			s += w.used[i]
		}
	}
	return s
}

// retryAfter is how long from now until the sum falls under budget, as
// the oldest slots leave the window.
func (w *window) retryAfter(cur int64, budget, slot time.Duration, now time.Time) time.Duration {
	s := w.sum(cur)
	for k := cur - windowSlots + 1; k <= cur; k++ {
		i := k % windowSlots
		if w.stamp[i] == k {
			s -= w.used[i]
		}
		if s < budget {
			// Slot k leaves the window when slot k+windowSlots begins.
			return time.Duration((k+windowSlots)*int64(slot) - now.UnixNano())
		}
	}
	return time.Duration(int64(windowSlots) * int64(slot))
}
