package auth

import (
	"container/list"
	"sync"
	"time"
)

// Throttle settings, with their reasons.
const (
	// The first failure delays the 401 by 0.5 s: invisible to a person
	// who mistyped, but it halves a sequential guesser's rate at once.
	DefaultFailDelay = 500 * time.Millisecond
	// Each further failure doubles the delay up to 8 s: 0.5, 1, 2, 4, 8.
	// Past 8 s clients time out and retry, which helps nobody.
	DefaultMaxFailDelay = 8 * time.Second
	// After a quiet minute (no failure) the delay halves, each minute,
	// so a person locked into 8 s by a misconfigured client is back to
	// normal within five minutes.
	DefaultFailDecay = time.Minute
	// 10,000 keys per map (~1 MiB each): enough to track every user of a
	// large site and the addresses of a sizeable botnet; beyond that the
	// least recently failing keys are forgotten.
	DefaultFailKeys = 10000
)

// Throttle tracks failed logins per user name and per client address and
// says how long to delay the next failure's answer. It never delays a
// successful login, so failures against one user (or from one address)
// slow down only further failures for that user (or from that address),
// never other users' logins. Safe for concurrent use; Delay and Fail hold
// its lock for map updates only, never while sleeping.
type Throttle struct {
	base, max, decay time.Duration
	now              func() time.Time

	mu    sync.Mutex
	users *failMap
	addrs *failMap
}

// ThrottleOptions tune a Throttle; zero values take the defaults above.
type ThrottleOptions struct {
	FailDelay    time.Duration
	MaxFailDelay time.Duration
	FailDecay    time.Duration
	MaxKeys      int
	Now          func() time.Time
}

// NewThrottle returns a Throttle.
func NewThrottle(o ThrottleOptions) *Throttle {
	if o.FailDelay <= 0 {
		o.FailDelay = DefaultFailDelay
	}
	if o.MaxFailDelay <= 0 {
		o.MaxFailDelay = DefaultMaxFailDelay
	}
	if o.FailDecay <= 0 {
		o.FailDecay = DefaultFailDecay
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultFailKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Throttle{
		base: o.FailDelay, max: o.MaxFailDelay, decay: o.FailDecay, now: o.Now,
		users: newFailMap(o.MaxKeys), addrs: newFailMap(o.MaxKeys),
	}
}

// Fail records a failed login for user from addr (either may be "") and
// returns how long to delay the answer: the larger of the user's and the
// address's delays, counting this failure.
func (t *Throttle) Fail(user, addr string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	if user != "" {
		d = max(d, t.delay(t.users.fail(user, now, t.decay, t.maxLevel())))
	}
	if addr != "" {
		d = max(d, t.delay(t.addrs.fail(addr, now, t.decay, t.maxLevel())))
	}
	return d
}

// Len returns the number of user names and client addresses tracked.
func (t *Throttle) Len() (users, addrs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.users.l.Len(), t.addrs.l.Len()
}

// maxLevel is the failure count at which the delay reaches max; counts
// are capped there so decay never has to wait out a long attack.
func (t *Throttle) maxLevel() int {
	n := 1
	for d := t.base; d < t.max; d *= 2 {
		n++
	}
	return n
}

// delay is base·2^(level-1), at most max; level 0 is no delay.
func (t *Throttle) delay(level int) time.Duration {
	if level <= 0 {
		return 0
	}
	d := t.base
	for i := 1; i < level && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// failMap counts failures per key, capped at max keys with the least
// recently failing key evicted first.
type failMap struct {
	max int
	m   map[string]*list.Element
	l   *list.List // of *failRec, least recent failure first
}

type failRec struct {
	key   string
	level int
	last  time.Time
}

func newFailMap(max int) *failMap {
	return &failMap{max: max, m: map[string]*list.Element{}, l: list.New()}
}

// fail records a failure for key at now and returns its new level: the
// previous level decayed by one per quiet decay period, plus one, capped.
func (f *failMap) fail(key string, now time.Time, decay time.Duration, maxLevel int) int {
	if el, ok := f.m[key]; ok {
		r := el.Value.(*failRec)
		if quiet := now.Sub(r.last); quiet > 0 {
			r.level -= int(quiet / decay)
		}
		r.level = min(max(r.level, 0)+1, maxLevel)
		r.last = now
		f.l.MoveToBack(el)
		return r.level
	}
	// Forget keys that have decayed to nothing (they are at the front:
	// least recent failure first), then the least recent while full.
	for front := f.l.Front(); front != nil; front = f.l.Front() {
		r := front.Value.(*failRec)
		if f.l.Len() < f.max && now.Sub(r.last) < decay*time.Duration(r.level) {
			break
		}
		delete(f.m, r.key)
		f.l.Remove(front)
	}
	f.m[key] = f.l.PushBack(&failRec{key: key, level: 1, last: now})
	return 1
}
