package submit

import (
	"container/list"
	"time"
)

// domainState is the backoff hint for one destination domain: the relay
// deferred recipients in it failures times in a row, so no recipient in
// it is tried again before next.
type domainState struct {
	name     string
	failures int
	next     time.Time
}

// domainLRU holds domainState for at most max domains, evicting the least
// recently used. An evicted domain only loses its hint: its recipients are
// then tried on their item's own schedule. This bound is what keeps memory
// flat when mail goes to very many distinct domains (the seeds' SMTP
// service kept a map entry per domain forever). Not safe for concurrent
// use; the Queue guards it with its mutex.
type domainLRU struct {
	max   int
	ll    *list.List // front: most recently used; values are *domainState
	items map[string]*list.Element
}

func newDomainLRU(max int) *domainLRU {
	return &domainLRU{max: max, ll: list.New(), items: make(map[string]*list.Element)}
}

// Len returns the number of domains with state.
func (d *domainLRU) Len() int { return len(d.items) }

// heldUntil returns when domain may be tried again; the zero time when at
// once.
func (d *domainLRU) heldUntil(domain string) time.Time {
	e, ok := d.items[domain]
	if !ok {
		return time.Time{}
	}
	d.ll.MoveToFront(e)
	return e.Value.(*domainState).next
}

// deferred records a temporary failure for domain at now and returns the
// domain's next try, backoff growing with its failures in a row.
func (d *domainLRU) deferred(domain string, now time.Time, backoff func(n int) time.Duration) time.Time {
	if d.max <= 0 {
		return time.Time{}
	}
	e, ok := d.items[domain]
	if ok {
		d.ll.MoveToFront(e)
	} else {
		if len(d.items) >= d.max {
			old := d.ll.Back()
			d.ll.Remove(old)
			delete(d.items, old.Value.(*domainState).name)
		}
		e = d.ll.PushFront(&domainState{name: domain})
		d.items[domain] = e
	}
	s := e.Value.(*domainState)
	s.failures++
	s.next = now.Add(backoff(s.failures))
	return s.next
}

// delivered forgets domain: the relay took a recipient in it.
func (d *domainLRU) delivered(domain string) {
	if e, ok := d.items[domain]; ok {
		d.ll.Remove(e)
		delete(d.items, domain)
	}
}
