package limits

import (
	"hash/maphash"
	"sync"
)

// numShards splits every keyed table so that concurrent requests of
// different users or addresses rarely contend for one mutex: 32 is well
// above the number of cores davmail runs on (2 to 16), so two requests
// meet on a shard lock with a probability of about 1/32, and small
// enough that Len (which visits every shard) stays cheap.
const numShards = 32

// evictScan bounds how far from the least recently used end eviction
// looks for an idle entry (one without requests in flight) before it
// gives up and evicts the oldest whatever its state: a constant amount
// of work per insertion, whatever the table's size.
const evictScan = 8

// table is a map from client-chosen keys (user names, client addresses)
// to per-key state, capped at max entries with least-recently-used
// eviction, sharded by key hash. Every operation on a value runs with
// its shard's lock held, so values need no lock of their own.
type table[V any] struct {
	seed   maphash.Seed
	shards [numShards]shard[V]
	// idle reports whether a value may be evicted before older busy
	// ones (nil: every value is idle).
	idle func(*V) bool
}

type shard[V any] struct {
	mu  sync.Mutex
	max int
	m   map[string]*node[V]
	// head is the most recently used node, tail the least; both nil when
	// the shard is empty.
	head, tail *node[V]
}

type node[V any] struct {
	key        string
	val        V
	prev, next *node[V]
}

// newTable returns a table holding at most max keys (at least one per
// shard).
func newTable[V any](max int, idle func(*V) bool) *table[V] {
	per := max / numShards
	if per < 1 {
		per = 1
	}
	t := &table[V]{seed: maphash.MakeSeed(), idle: idle}
	for i := range t.shards {
		t.shards[i].max = per
		t.shards[i].m = make(map[string]*node[V])
	}
	return t
}

func (t *table[V]) shardOf(key string) *shard[V] {
	return &t.shards[maphash.String(t.seed, key)%numShards]
}

// do runs f on key's value, creating it with init when absent (evicting
// per the policy when the shard is full) and marking it most recently
// used. f runs with the shard's lock held: it must be short and must not
// call back into the table. The value's address is returned for update,
// which stays correct after the key is evicted.
func (t *table[V]) do(key string, init func(*V), f func(*V)) *V {
	s := t.shardOf(key)
	s.mu.Lock()
	n, ok := s.m[key]
	if !ok {
		if len(s.m) >= s.max {
			s.evict(t.idle)
		}
		n = &node[V]{key: key}
		if init != nil {
			init(&n.val)
		}
		s.m[key] = n
	} else {
		s.unlink(n)
	}
	s.pushFront(n)
	f(&n.val)
	s.mu.Unlock()
	return &n.val
}

// update runs f on v, a value that do returned for key, with key's shard
// locked: the value may have been evicted since, and is then updated
// alone (the requests holding it finish their accounting on it).
func (t *table[V]) update(key string, v *V, f func(*V)) {
	s := t.shardOf(key)
	s.mu.Lock()
	f(v)
	s.mu.Unlock()
}

// peek runs f on key's value if present, without creating it or changing
// its recency. It reports whether the key was present.
func (t *table[V]) peek(key string, f func(*V)) bool {
	s := t.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	if ok {
		f(&n.val)
	}
	return ok
}

// Len returns the number of keys held.
func (t *table[V]) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// evict removes one entry: the least recently used idle one among the
// evictScan oldest, else the oldest. A busy entry evicted this way keeps
// working for the requests that hold it (they keep a pointer to the
// node), it is only forgotten by the table.
func (s *shard[V]) evict(idle func(*V) bool) {
	victim := s.tail
	if idle != nil {
		for n, i := s.tail, 0; n != nil && i < evictScan; n, i = n.prev, i+1 {
			if idle(&n.val) {
				victim = n
				break
			}
		}
	}
	if victim == nil {
		return
	}
	s.unlink(victim)
	delete(s.m, victim.key)
}

func (s *shard[V]) unlink(n *node[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		s.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (s *shard[V]) pushFront(n *node[V]) {
	n.next = s.head
	if s.head != nil {
		s.head.prev = n
	}
	s.head = n
	if s.tail == nil {
		s.tail = n
	}
}
