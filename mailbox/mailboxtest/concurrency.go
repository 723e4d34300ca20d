package mailboxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/davmail/davmail/mailbox"
)

// Concurrency test size, from the contract: enough writers to interleave
// on any scheduler, few enough messages to stay fast on a disk backend.
const (
	writers           = 8
	messagesPerWriter = 50
)

func testConcurrentAppend(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "Busy")
	raw := rawMessage("Same subject", "same body")

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		got     []mailbox.Message
		errs    []error
		writing atomic.Int32
	)
	writing.Store(writers)
	for w := range writers {
		wg.Go(func() {
			defer writing.Add(-1)
			for i := range messagesPerWriter {
				m, err := mb.Append(ctx, "Busy", bytes.NewReader(raw), mailbox.AppendOptions{})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("writer %d, message %d: %w", w, i, err))
				} else {
					got = append(got, m)
				}
				mu.Unlock()
			}
		})
	}
	// Readers race the writers; with -race this checks the backend's
	// locking, and every listing must be internally consistent.
	for range 2 {
		wg.Go(func() {
			for writing.Load() > 0 {
				l, err := mb.List(ctx, "Busy")
				if err == nil {
					seen := map[string]bool{}
					for i, m := range l {
						if seen[m.Name] {
							err = fmt.Errorf("a listing has %q twice", m.Name)
						}
						if i > 0 && l[i-1].UID >= m.UID {
							err = fmt.Errorf("a listing is not in ascending UID order at %d: %d then %d", i, l[i-1].UID, m.UID)
						}
						seen[m.Name] = true
					}
				}
				if err == nil {
					_, err = mb.Folders(ctx)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	const total = writers * messagesPerWriter
	nameSet, idSet, uidSet := map[string]bool{}, map[uint64]bool{}, map[uint32]bool{}
	for _, m := range got {
		nameSet[m.Name] = true
		idSet[m.ID] = true
		uidSet[m.UID] = true
	}
	if len(got) != total || len(nameSet) != total || len(idSet) != total || len(uidSet) != total {
		t.Errorf("%d appends gave %d messages, %d distinct names, %d distinct IDs, %d distinct UIDs; want %d of each",
			total, len(got), len(nameSet), len(idSet), len(uidSet), total)
	}
	l := mustList(t, mb, "Busy")
	if len(l) != total {
		t.Errorf("List has %d messages, want %d", len(l), total)
	}
	for _, m := range l {
		if !nameSet[m.Name] || !idSet[m.ID] || !uidSet[m.UID] {
			t.Errorf("listed %q (ID %d, UID %d) that no Append returned", m.Name, m.ID, m.UID)
		}
	}
	checkUIDs(t, mb, "Busy") // ascending UIDs, all below UIDNext, StatUID agrees
	if f := mustFolder(t, mb, "Busy"); f.Messages != total || f.Size != int64(total*len(raw)) {
		t.Errorf("folder counts %d messages %d bytes, want %d and %d", f.Messages, f.Size, total, total*len(raw))
	}
	if !nameSet["Same subject.EML"] || !nameSet[fmt.Sprintf("Same subject-%d.EML", total)] {
		t.Errorf("names are not Same subject.EML … Same subject-%d.EML", total)
	}
}

// cancellingReader cancels its context after handing out the first
// chunk, then keeps producing data, as a client that goes away
// mid-upload.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
	reads  int
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == 2 {
		c.cancel()
	}
	if len(p) > 1024 {
		p = p[:1024]
	}
	return c.r.Read(p)
}

func testCancelledAppend(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	raw := rawMessage("cancelled", string(bytes.Repeat([]byte("0123456789abcdef"), 4096)))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, name := range []string{"", "named.EML"} {
		_, err := mb.Append(ctx, mailbox.Inbox, bytes.NewReader(raw), mailbox.AppendOptions{Name: name})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Append with a cancelled context (name %q): %v, want context.Canceled", name, err)
		}
	}

	for _, name := range []string{"", "named.EML"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: bytes.NewReader(raw), cancel: cancel}
		_, err := mb.Append(ctx, mailbox.Inbox, r, mailbox.AppendOptions{Name: name})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Append cancelled mid-stream (name %q): %v, want context.Canceled", name, err)
		}
	}
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 0 {
		t.Errorf("cancelled Appends stored %q", names(l))
	}
	if f := mustFolder(t, mb, mailbox.Inbox); f.Messages != 0 || f.Size != 0 {
		t.Errorf("cancelled Appends changed the counts: %+v", f)
	}
}
