package dav

import (
	"container/list"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/davmail/davmail/limits"
)

// Subscription bounds. Subscriptions are server state keyed by client
// input, so they are capped (brief, failure 3): 100 per user is far above
// what Evolution holds (one per open folder); 10,000 in all bounds the
// table; lifetimes are capped at one hour so abandoned ones expire.
const (
	maxSubsPerUser      = 100
	maxSubs             = 10000
	defaultSubLifetime  = time.Hour
	maxSubLifetime      = time.Hour
	nsExchangeNotify    = "http://schemas.microsoft.com/Exchange/" // capital E, as Exchange writes it (§3.2 POLL)
	notificationHeaders = "Subscription-Id"
)

// subscription is one SUBSCRIBE: a folder watched through its Modseq, the
// store's change counter. Nothing is kept per event: POLL compares the
// folder's Modseq with the one seen at the last POLL.
type subscription struct {
	id       uint64
	user     string
	folder   string
	seen     uint64 // folder Modseq at subscribe time or the last POLL
	validity uint32
	expires  time.Time
	elem     *list.Element // in subs.order, oldest first
}

// subs is the bounded subscription table.
type subs struct {
	mu     sync.Mutex
	next   uint64
	byID   map[uint64]*subscription
	byUser map[string]int
	order  *list.List // by creation, for eviction
}

func newSubs() *subs {
	return &subs{byID: make(map[uint64]*subscription), byUser: make(map[string]int), order: list.New()}
}

// Len returns the number of subscriptions (a gauge).
func (s *subs) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *subs) removeLocked(sub *subscription) {
	delete(s.byID, sub.id)
	s.order.Remove(sub.elem)
	if s.byUser[sub.user]--; s.byUser[sub.user] <= 0 {
		delete(s.byUser, sub.user)
	}
}

// add creates a subscription, evicting the user's oldest one over the
// per-user cap and expired ones over the global cap.
func (s *subs) add(user, folder string, seen uint64, validity uint32, life time.Duration, now time.Time) (*subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUser[user] >= maxSubsPerUser {
		for e := s.order.Front(); e != nil; e = e.Next() {
			if sub := e.Value.(*subscription); sub.user == user {
				s.removeLocked(sub)
				break
			}
		}
	}
	if len(s.byID) >= maxSubs {
		for e := s.order.Front(); e != nil; {
			next := e.Next()
			if sub := e.Value.(*subscription); !now.Before(sub.expires) {
				s.removeLocked(sub)
			}
			e = next
		}
		if len(s.byID) >= maxSubs {
			return nil, &limits.Error{Kind: limits.ErrBusy, Limit: "max-subscriptions", Value: maxSubs, Size: int64(len(s.byID)), Unit: "subscriptions", Status: http.StatusServiceUnavailable, RetryAfter: time.Minute}
		}
	}
	s.next++
	sub := &subscription{id: s.next, user: user, folder: folder, seen: seen, validity: validity, expires: now.Add(life)}
	sub.elem = s.order.PushBack(sub)
	s.byID[sub.id] = sub
	s.byUser[user]++
	return sub, nil
}

// get returns the live subscription id of user, or nil.
func (s *subs) get(user string, id uint64, now time.Time) *subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.byID[id]
	if sub == nil || sub.user != user {
		return nil
	}
	if !now.Before(sub.expires) {
		s.removeLocked(sub)
		return nil
	}
	return sub
}

func (s *subs) drop(user string, id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.byID[id]
	if sub == nil || sub.user != user {
		return false
	}
	s.removeLocked(sub)
	return true
}

// SubscriptionCount returns the number of SUBSCRIBE subscriptions (a gauge).
func (h *Handler) SubscriptionCount() int { return h.subs.Len() }

func parseIDs(v string) []uint64 {
	var ids []uint64
	for _, f := range strings.Split(v, ",") {
		if n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64); err == nil && len(ids) < maxSubsPerUser {
			ids = append(ids, n)
		}
	}
	return ids
}

// subscribe answers SUBSCRIBE (exchange-webdav.md §3.2, Evolution's
// docs/subscriptions): a new subscription on a folder, or the renewal of
// one named by Subscription-Id. Call-Back (UDP NOTIFY) is not offered:
// clients POLL, which Evolution does anyway when no NOTIFY arrives.
func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if !t.exists || !t.isFolder {
		return errorf(http.StatusNotFound, "SUBSCRIBE needs a folder")
	}
	life := defaultSubLifetime
	if v := r.Header.Get("Subscription-Lifetime"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			life = min(time.Duration(n)*time.Second, maxSubLifetime)
		}
	}
	now := time.Now()
	if v := r.Header.Get(notificationHeaders); v != "" {
		ids := parseIDs(v)
		var renewed []string
		for _, id := range ids {
			sub := h.subs.get(rq.user, id, now)
			if sub == nil {
				continue
			}
			h.subs.mu.Lock()
			sub.expires = now.Add(life)
			h.subs.mu.Unlock()
			renewed = append(renewed, strconv.FormatUint(id, 10))
		}
		if len(renewed) == 0 {
			return errorf(http.StatusPreconditionFailed, "no such subscription")
		}
		w.Header().Set("Subscription-Id", strings.Join(renewed, ","))
	} else {
		sub, err := h.subs.add(rq.user, t.folder.Path, t.folder.Modseq, t.folder.UIDValidity, life, now)
		if err != nil {
			return err
		}
		w.Header().Set("Subscription-Id", strconv.FormatUint(sub.id, 10))
	}
	w.Header().Set("Subscription-Lifetime", strconv.FormatInt(int64(life/time.Second), 10))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request, rq *request) error {
	ids := parseIDs(r.Header.Get(notificationHeaders))
	if len(ids) == 0 {
		return errorf(http.StatusBadRequest, "UNSUBSCRIBE needs a Subscription-Id header")
	}
	dropped := 0
	for _, id := range ids {
		if h.subs.drop(rq.user, id) {
			dropped++
		}
	}
	if dropped == 0 {
		return errorf(http.StatusPreconditionFailed, "no such subscription")
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// poll answers POLL: per subscription 200 when its folder changed since
// the last POLL (or the subscription), 204 when not.
func (h *Handler) poll(w http.ResponseWriter, r *http.Request, rq *request) error {
	ids := parseIDs(r.Header.Get(notificationHeaders))
	if len(ids) == 0 {
		return errorf(http.StatusBadRequest, "POLL needs a Subscription-Id header")
	}
	now := time.Now()
	b := []byte(multistatusOpen)
	any := false
	ms := msRenderer{rq: rq, base: baseURL(r) + h.cfg.Prefix}
	for _, id := range ids {
		sub := h.subs.get(rq.user, id, now)
		if sub == nil {
			continue
		}
		any = true
		code := http.StatusNoContent
		f, err := rq.mb.Folder(r.Context(), sub.folder)
		switch {
		case err != nil: // the folder went away: that is an event
			code = http.StatusOK
		case f.Modseq != sub.seen || f.UIDValidity != sub.validity:
			code = http.StatusOK
			h.subs.mu.Lock()
			sub.seen, sub.validity = f.Modseq, f.UIDValidity
			h.subs.mu.Unlock()
		}
		b = append(b, "<a:response><a:href>"...)
		b = append(b, ms.hrefFolder(sub.folder)...)
		b = append(b, "/</a:href><a:status>HTTP/1.1 "...)
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		b = append(b, http.StatusText(code)...)
		b = append(b, `</a:status><x:subscriptionID xmlns:x="`+nsExchangeNotify+`"><li>`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, "</li></x:subscriptionID></a:response>\n"...)
	}
	if !any {
		return errorf(http.StatusPreconditionFailed, "no such subscription")
	}
	b = append(b, multistatusClose...)
	return writeMultistatusBytes(w, b)
}
