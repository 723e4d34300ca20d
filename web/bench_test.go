package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// bigFolder is the size of the scale folder: the 100,000
// messages.
const bigFolder = 100_000

// firstPageBudget is the bound on the first page of the big
// folder.
const firstPageBudget = 200 * time.Millisecond

// seedBig fills alice's folder "Bulk" with bigFolder small messages,
// like mkcorpus -bigfolder, and returns a request factory for a logged-in
// GET of path.
func seedBig(tb testing.TB, e *env) func(path string) *http.Request {
	tb.Helper()
	base := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range bigFolder {
		// Dates shuffled (i*7919 mod n) so that the date order is not the
		// arrival order the index keeps.
		d := base.Add(time.Duration(i*7919%bigFolder) * time.Minute)
		raw := fmt.Sprintf("From: Sender %d <s%d@example.com>\r\nSubject: Bulk notice %d\r\nDate: %s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nbulk notice %d\r\n",
			i%997, i%997, i, d.Format(time.RFC1123Z), i)
		if _, err := e.store.Seed("alice", "Bulk", []byte(raw), mailbox.AppendOptions{Flags: mailbox.FlagSeen}); err != nil {
			tb.Fatal(err)
		}
	}
	id, err := e.h.opts.Sessions.Login(context.Background(), "alice", alicePW)
	if err != nil {
		tb.Fatal(err)
	}
	return func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Cookie", "sessionid="+id)
		return r
	}
}

// TestBigFolderFirstPage measures the first page of a 100,000-message
// folder (newest first) through the whole handler, on the in-memory
// store; the folder is warm (listed once), as the index keeps it.
func TestBigFolderFirstPage(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 messages")
	}
	e := newEnv(t, nil)
	req := seedBig(t, e)
	var times []time.Duration
	for _, path := range []string{"/web/folder?f=Bulk", "/web/folder?f=Bulk", "/web/folder?f=Bulk", "/web/folder?f=Bulk&sort=subject", "/web/folder?f=Bulk&q=notice+9999", "/web/folder?f=Bulk&p=1000"} {
		w := httptest.NewRecorder()
		start := time.Now()
		e.h.ServeHTTP(w, req(path))
		d := time.Since(start)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", path, w.Code)
		}
		if path == "/web/folder?f=Bulk" {
			times = append(times, d)
			// Newest first: the latest date is minute bigFolder-1, the
			// message with i*7919 ≡ n-1 (mod n).
			if !strings.Contains(w.Body.String(), "1–50 of 100000") {
				t.Fatalf("first page summary missing")
			}
		}
		t.Logf("%-40s %v", path, d.Round(100*time.Microsecond))
	}
	best := slices.Min(times)
	t.Logf("first page of %d messages: best of %d runs %v (budget %v)", bigFolder, len(times), best, firstPageBudget)
	if !raceEnabled && best > firstPageBudget {
		t.Errorf("first page took %v, over the %v budget", best, firstPageBudget)
	}
}

// BenchmarkFolderFirstPage100k is the first page of a 100,000-message
// folder through the handler (go test -bench FolderFirstPage -benchtime 20x).
func BenchmarkFolderFirstPage100k(b *testing.B) {
	e := newEnv(b, nil)
	req := seedBig(b, e)
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req("/web/folder?f=Bulk"))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
