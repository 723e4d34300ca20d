package dav

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/davmail/davmail/limits"
)

// Lock timeouts. Clients ask for anything up to "Infinite"; we grant at
// most maxLockTimeout so abandoned locks expire (RFC 4918 §10.7 lets the
// server choose), and defaultLockTimeout when none is asked for.
const (
	defaultLockTimeout = 10 * time.Minute
	maxLockTimeout     = time.Hour
	// maxLocks caps the lock table: locks are keyed by client input, so
	// the table must be bounded (brief, failure 3). 10,000 is ~1,000
	// times what a busy user's editors hold at once.
	maxLocks = 10000
)

// lockView is a lock as lockdiscovery shows it.
type lockView struct {
	token    string
	root     string // lock root as an href path (for DAV:lockroot)
	shared   bool
	depthInf bool
	owner    string // inner XML of DAV:owner
	expires  time.Time
}

type lock struct {
	lockView
	path string // canonical path: user + "/" + store path
}

// lockManager holds WebDAV write locks (RFC 4918 §6, §7) in memory. Locks
// do not survive a restart, which RFC 4918 §6.4 allows: clients see the
// lock vanish and re-lock. Safe for concurrent use.
type lockManager struct {
	// n mirrors len(byTok) so listings can skip the mutex when no lock
	// exists at all (the common case).
	n      atomic.Int64
	mu     sync.Mutex
	byTok  map[string]*lock
	max    int
	nowFn  func() time.Time
	expiry time.Time // earliest expiry, to skip needless sweeps
}

func newLockManager() *lockManager {
	return &lockManager{byTok: make(map[string]*lock), max: maxLocks, nowFn: time.Now}
}

// any reports whether some lock may exist.
func (m *lockManager) any() bool { return m.n.Load() > 0 }

// Len returns the number of live locks (a gauge for metrics).
func (m *lockManager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(m.nowFn())
	return len(m.byTok)
}

func (m *lockManager) sweep(now time.Time) {
	defer func() { m.n.Store(int64(len(m.byTok))) }()
	if now.Before(m.expiry) {
		return
	}
	next := time.Time{}
	for t, l := range m.byTok {
		if !now.Before(l.expires) {
			delete(m.byTok, t)
			continue
		}
		if next.IsZero() || l.expires.Before(next) {
			next = l.expires
		}
	}
	m.expiry = next
}

// covers reports whether lock l applies to path p.
func (l *lock) covers(p string) bool {
	return l.path == p || (l.depthInf && isBelow(p, l.path))
}

func isBelow(p, ancestor string) bool {
	return len(p) > len(ancestor) && p[len(ancestor)] == '/' && p[:len(ancestor)] == ancestor
}

// create grants a new lock or fails with 423 when it conflicts.
func (m *lockManager) create(path, hrefRoot string, depthInf, shared bool, owner string, timeout time.Duration) (lockView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.nowFn()
	m.sweep(now)
	for _, l := range m.byTok {
		overlap := l.covers(path) || (depthInf && isBelow(l.path, path))
		if overlap && (!l.shared || !shared) {
			return lockView{}, &httpError{Code: http.StatusLocked, Cond: "no-conflicting-lock", Msg: "the resource is locked by another lock"}
		}
	}
	if len(m.byTok) >= m.max {
		return lockView{}, &limits.Error{Kind: limits.ErrBusy, Limit: "max-locks", Value: int64(m.max), Size: int64(len(m.byTok)), Unit: "locks", Status: http.StatusServiceUnavailable, RetryAfter: time.Minute}
	}
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	tok := "opaquelocktoken:" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	l := &lock{path: path, lockView: lockView{token: tok, root: hrefRoot, shared: shared, depthInf: depthInf, owner: owner, expires: now.Add(timeout)}}
	m.byTok[tok] = l
	m.n.Store(int64(len(m.byTok)))
	if m.expiry.IsZero() || l.expires.Before(m.expiry) {
		m.expiry = l.expires
	}
	return l.lockView, nil
}

// refresh extends the lock tok that must cover path.
func (m *lockManager) refresh(tok, path string, timeout time.Duration) (lockView, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.nowFn()
	m.sweep(now)
	l, ok := m.byTok[tok]
	if !ok || !l.covers(path) {
		return lockView{}, false
	}
	l.expires = now.Add(timeout)
	return l.lockView, true
}

// unlock removes tok if it covers path.
func (m *lockManager) unlock(tok, path string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(m.nowFn())
	l, ok := m.byTok[tok]
	if !ok || !l.covers(path) {
		return false
	}
	delete(m.byTok, tok)
	m.n.Store(int64(len(m.byTok)))
	return true
}

// view lists the locks that apply to path (for lockdiscovery).
func (m *lockManager) view(path string, now time.Time) []lockView {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.byTok) == 0 {
		return nil
	}
	m.sweep(now)
	var out []lockView
	for _, l := range m.byTok {
		if l.covers(path) {
			out = append(out, l.lockView)
		}
	}
	return out
}

// valid reports whether tok is a live lock covering path.
func (m *lockManager) valid(tok, path string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.byTok[tok]
	return ok && m.nowFn().Before(l.expires) && l.covers(path)
}

// check verifies that a write touching paths may proceed: every lock
// covering one of them (or, for tree operations, below one of them, and
// for membership changes, on the parent collection) must have its token
// submitted (RFC 4918 §7.4, §10.4.1).
func (m *lockManager) check(submitted []string, paths []string, trees []string, parents []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.byTok) == 0 {
		return nil
	}
	m.sweep(m.nowFn())
	has := func(tok string) bool {
		for _, s := range submitted {
			if s == tok {
				return true
			}
		}
		return false
	}
	for tok, l := range m.byTok {
		hit := false
		for _, p := range paths {
			if l.covers(p) {
				hit = true
			}
		}
		for _, p := range trees {
			if isBelow(l.path, p) {
				hit = true
			}
		}
		for _, p := range parents {
			// a lock on the parent collection (any depth) protects its
			// membership (RFC 4918 §7.4).
			if l.path == p || (l.depthInf && isBelow(p, l.path)) {
				hit = true
			}
		}
		if hit && !has(tok) {
			return &httpError{Code: http.StatusLocked, Cond: "lock-token-submitted", Msg: "the resource is locked; submit the lock token in an If header"}
		}
	}
	return nil
}

// removeTree drops every lock at or below path (after DELETE or MOVE of
// the source: RFC 4918 §9.6.1 says locks go with the resource).
func (m *lockManager) removeTree(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for tok, l := range m.byTok {
		if l.path == path || isBelow(l.path, path) {
			delete(m.byTok, tok)
		}
	}
	m.n.Store(int64(len(m.byTok)))
}

// parseTimeout reads the Timeout header (RFC 4918 §10.7): the first
// acceptable value, capped at maxLockTimeout.
func parseTimeout(v string) time.Duration {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if strings.EqualFold(s, "Infinite") {
			return maxLockTimeout
		}
		if n, ok := strings.CutPrefix(s, "Second-"); ok {
			if secs, err := strconv.ParseInt(n, 10, 64); err == nil && secs > 0 {
				d := time.Duration(secs) * time.Second
				if secs > int64(maxLockTimeout/time.Second) {
					d = maxLockTimeout
				}
				return d
			}
		}
	}
	return defaultLockTimeout
}

func appendActiveLock(b []byte, l lockView, now time.Time) []byte {
	b = append(b, "<a:activelock><a:locktype><a:write/></a:locktype><a:lockscope>"...)
	if l.shared {
		b = append(b, "<a:shared/>"...)
	} else {
		b = append(b, "<a:exclusive/>"...)
	}
	b = append(b, "</a:lockscope><a:depth>"...)
	if l.depthInf {
		b = append(b, "infinity"...)
	} else {
		b = append(b, '0')
	}
	b = append(b, "</a:depth>"...)
	if l.owner != "" {
		b = append(b, "<a:owner>"...)
		b = append(b, l.owner...)
		b = append(b, "</a:owner>"...)
	}
	secs := int64(l.expires.Sub(now) / time.Second)
	if secs < 0 {
		secs = 0
	}
	b = append(b, "<a:timeout>Second-"...)
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, "</a:timeout><a:locktoken><a:href>"...)
	b = appendXMLText(b, l.token)
	b = append(b, "</a:href></a:locktoken><a:lockroot><a:href>"...)
	b = appendXMLText(b, l.root)
	return append(b, "</a:href></a:lockroot></a:activelock>"...)
}
