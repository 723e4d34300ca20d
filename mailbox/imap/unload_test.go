package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// TestUnloadBudget: the users' mailboxes hold at most MaxMessagesInMemory
// messages in memory together; past it the least recently used idle ones
// are unloaded (the most recent stays, however large), and mailboxes idle
// past the idle timeout are unloaded too. An unloaded mailbox reloads
// from its index on next use: same IDs and UIDs, nothing fetched again.
func TestUnloadBudget(t *testing.T) {
	s := newTestStore(t, "", func(o *Options) { o.MaxMessagesInMemory = 15 })
	defer s.Close()
	ctx := context.Background()
	sizes := map[string]int{"u1": 10, "u2": 10, "big": 20}
	mbs := map[string]mailbox.Mailbox{}
	lists := map[string][]mailbox.Message{}
	for _, u := range []string{"u1", "u2", "big"} {
		mb, err := s.Mailbox(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for i := range sizes[u] {
			if _, err := mb.Append(ctx, mailbox.Inbox, strings.NewReader(fmt.Sprintf("Subject: %s %d\r\n\r\nbody\r\n", u, i)), mailbox.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		mbs[u] = mb
		if lists[u], err = mb.List(ctx, mailbox.Inbox); err != nil || len(lists[u]) != sizes[u] {
			t.Fatalf("%s: %d messages, %v", u, len(lists[u]), err)
		}
	}
	// big alone is over the budget: it stays, as the most recent.
	if n := s.MessagesInMemory(); n != 20 {
		t.Errorf("after big: %d messages in memory, want 20 (big only)", n)
	}
	fetches := s.Stats().Fetches
	for _, u := range []string{"u1", "u2", "big", "u1"} {
		l, err := mbs[u].List(ctx, mailbox.Inbox)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.MessagesInMemory(); n != int64(sizes[u]) {
			t.Errorf("after listing %s: %d messages in memory, want %d (the others unloaded)", u, n, sizes[u])
		}
		if len(l) != len(lists[u]) {
			t.Fatalf("%s reloaded: %d messages, want %d", u, len(l), len(lists[u]))
		}
		for i := range l {
			if l[i].ID != lists[u][i].ID || l[i].UID != lists[u][i].UID || l[i].Name != lists[u][i].Name {
				t.Errorf("%s reloaded: message %d is %d/%d %q, was %d/%d %q", u, i, l[i].ID, l[i].UID, l[i].Name, lists[u][i].ID, lists[u][i].UID, lists[u][i].Name)
			}
		}
	}
	if d := s.Stats().Fetches - fetches; d != 0 {
		t.Errorf("reloading fetched from upstream %d times, want 0 (the index holds them)", d)
	}
	// Idle past the timeout: unloaded, the index file closed.
	s.unloadIdle(time.Now().Add(time.Hour))
	if n := s.MessagesInMemory(); n != 0 {
		t.Errorf("after unloading the idle: %d messages in memory", n)
	}
	if m := mbs["u1"].(*mbox); m.db != nil || m.loaded {
		t.Errorf("an idle mailbox kept its index open (db %v, loaded %v)", m.db != nil, m.loaded)
	}
	// A write after the unload is kept, and survives another one.
	if _, err := mbs["u2"].Append(ctx, mailbox.Inbox, strings.NewReader("Subject: after\r\n\r\nx\r\n"), mailbox.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s.unloadIdle(time.Now().Add(time.Hour))
	if l, err := mbs["u2"].List(ctx, mailbox.Inbox); err != nil || len(l) != 11 || l[10].Envelope.Subject != "after" || l[10].ID <= lists["u2"][9].ID {
		t.Errorf("u2 after a write and two unloads: %d messages, %v", len(l), err)
	}
}
