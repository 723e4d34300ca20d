package auth

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// credCache remembers credentials that passed bcrypt recently, so that a
// client sending Basic on every request (all of them do) costs one HMAC
// per request instead of ~50 ms of bcrypt.
//
// Keys are HMACs (see Users.cacheKey); values remember which user and
// which hash they were verified against, so a hit is only a hit while the
// user's hash is unchanged, and Reload can drop a user's entries.
// The map is capped: when full, the oldest entry goes (insertion order,
// refreshed on re-verification), whatever its expiry.
type credCache struct {
	max int
	ttl time.Duration

	mu sync.Mutex
	m  map[[sha256.Size]byte]*list.Element
	l  *list.List // of *credEntry, oldest first
}

type credEntry struct {
	key     [sha256.Size]byte
	user    string
	hash    []byte // the bcrypt hash verified against (shared, not copied)
	expires time.Time
}

func newCredCache(max int, ttl time.Duration) *credCache {
	return &credCache{max: max, ttl: ttl, m: map[[sha256.Size]byte]*list.Element{}, l: list.New()}
}

// Len returns the number of cached credentials.
func (c *credCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// hit reports whether key is cached, unexpired, and was verified against
// hash (the user's current hash). Stale entries are removed.
func (c *credCache) hit(key [sha256.Size]byte, hash []byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return false
	}
	e := el.Value.(*credEntry)
	if !now.Before(e.expires) || !bytes.Equal(e.hash, hash) {
		c.l.Remove(el)
		delete(c.m, key)
		return false
	}
	return true
}

// add caches key for user until now+ttl, evicting the oldest entries
// beyond the cap.
func (c *credCache) add(key [sha256.Size]byte, user string, hash []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		e := el.Value.(*credEntry)
		e.hash, e.expires = hash, now.Add(c.ttl)
		c.l.MoveToBack(el)
		return
	}
	// The list is in expiry order (one TTL for all, refreshed entries
	// move to the back), so expired entries are at the front: drop them,
	// then the oldest live ones while over the cap.
	for front := c.l.Front(); front != nil; front = c.l.Front() {
		e := front.Value.(*credEntry)
		if len(c.m) < c.max && now.Before(e.expires) {
			break
		}
		delete(c.m, e.key)
		c.l.Remove(front)
	}
	c.m[key] = c.l.PushBack(&credEntry{key: key, user: user, hash: hash, expires: now.Add(c.ttl)})
}

// dropUsers removes every entry of the named users. It walks the whole
// list, which the cap keeps to at most 10,000 entries, and runs only when
// the users file changed.
func (c *credCache) dropUsers(names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.l.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*credEntry); set[e.user] {
			delete(c.m, e.key)
			c.l.Remove(el)
		}
		el = next
	}
}
