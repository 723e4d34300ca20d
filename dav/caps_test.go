package dav

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/davmail/davmail/limits"
)

// TestLockTableCap: the lock table (keyed by client input) refuses new
// locks at its cap with a typed 503 + Retry-After, frees room as locks
// expire, and never grows past the cap.
func TestLockTableCap(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newLockManager()
	m.max = 50
	m.nowFn = func() time.Time { return now }
	for i := range m.max {
		if _, err := m.create(fmt.Sprintf("alice/INBOX/m%d", i), "/", false, false, "", time.Minute); err != nil {
			t.Fatalf("lock %d: %v", i, err)
		}
	}
	_, err := m.create("alice/INBOX/over", "/", false, false, "", time.Minute)
	var le *limits.Error
	if !errors.As(err, &le) || le.Status != http.StatusServiceUnavailable || le.RetryAfter <= 0 || le.Limit != "max-locks" {
		t.Fatalf("lock over the cap: %v, want a max-locks 503 with Retry-After", err)
	}
	if n := m.Len(); n != m.max {
		t.Errorf("table holds %d locks, cap %d", n, m.max)
	}
	now = now.Add(2 * time.Minute) // all expire
	if _, err := m.create("alice/INBOX/after", "/", false, false, "", time.Minute); err != nil {
		t.Errorf("lock after expiry: %v", err)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("after expiry the table holds %d locks, want 1", n)
	}
}

// TestSubscriptionCaps: at most maxSubsPerUser per user (the oldest is
// evicted) and maxSubs in all (expired ones are evicted first, then new
// ones refused with 503).
func TestSubscriptionCaps(t *testing.T) {
	s := newSubs()
	now := time.Unix(1_700_000_000, 0)
	var first uint64
	for i := range maxSubsPerUser + 10 {
		sub, err := s.add("alice", "INBOX", 1, 1, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = sub.id
		}
	}
	if n := s.byUser["alice"]; n != maxSubsPerUser {
		t.Errorf("alice holds %d subscriptions, cap %d", n, maxSubsPerUser)
	}
	if s.get("alice", first, now) != nil {
		t.Error("the oldest subscription survived the per-user cap")
	}
	// Fill the global table with other users (each under its own cap).
	for u := 0; s.Len() < maxSubs; u++ {
		for range maxSubsPerUser {
			if s.Len() >= maxSubs {
				break
			}
			if _, err := s.add(fmt.Sprintf("u%d", u), "INBOX", 1, 1, time.Hour, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := s.add("newcomer", "INBOX", 1, 1, time.Hour, now)
	var le *limits.Error
	if !errors.As(err, &le) || le.Status != http.StatusServiceUnavailable || le.Limit != "max-subscriptions" {
		t.Fatalf("subscription over the global cap: %v", err)
	}
	if s.Len() != maxSubs {
		t.Errorf("table holds %d, cap %d", s.Len(), maxSubs)
	}
	// Once they expire, room is made.
	if _, err := s.add("newcomer", "INBOX", 1, 1, time.Hour, now.Add(2*time.Hour)); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if s.Len() > maxSubs {
		t.Errorf("table holds %d after eviction, cap %d", s.Len(), maxSubs)
	}
}
