package dav_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox/maildir"
)

// TestSeed000 is the seed-000 proof (brief, failure 1: buffers that grew
// with the message): a GET of a 20 MB and of a 200 MB message from the
// Maildir store, over real HTTP on loopback, allocates the same (bytes
// and objects in the whole process, client included) whatever the size.
func TestSeed000(t *testing.T) {
	if testing.Short() || raceEnabled {
		// scripts/test.sh runs it in its soaks step, without -race: the
		// race detector would spend half a minute indexing 220 MB.
		t.Skip("writes and indexes 220 MB of test files; run without -race (scripts/test.sh soaks)")
	}
	root, index := t.TempDir(), t.TempDir()
	st, err := maildir.Open(maildir.Options{Root: root, IndexDir: index, Logger: zerolog.Nop(), CreateMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := newTestServer(t, dav.Config{Store: st, MaxMessageSize: 1 << 30, MaxResponseSize: 1 << 30})
	mb, err := st.Mailbox(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int64{20_000_000, 200_000_000}
	for _, n := range sizes {
		// Written straight into cur/ as a delivery agent would, so the
		// test itself does not hold 200 MB in memory.
		name := fmt.Sprintf("1700000000.M%dP1.test:2,S", n)
		p := filepath.Join(root, "alice", "Maildir", "cur", name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "Subject: size %d\r\n\r\n", n)
		if err := f.Truncate(n); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := mb.List(context.Background(), "INBOX"); err != nil {
		t.Fatal(err)
	}
	get := func(n int64) (bytes, objects uint64) {
		url := fmt.Sprintf("%s/exchange/alice/Inbox/size%%20%d.EML", ts.URL, n)
		do := func() {
			req, _ := http.NewRequest("GET", url, nil)
			req.SetBasicAuth("alice", "alice-pw")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 64<<10))
			resp.Body.Close()
			if err != nil || got != n || resp.StatusCode != 200 {
				t.Fatalf("GET %d: %d, %d bytes, %v", n, resp.StatusCode, got, err)
			}
		}
		do() // warm: connections, index, pools
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		const runs = 3
		for range runs {
			do()
		}
		runtime.ReadMemStats(&b)
		return (b.TotalAlloc - a.TotalAlloc) / runs, (b.Mallocs - a.Mallocs) / runs
	}
	b20, o20 := get(sizes[0])
	b200, o200 := get(sizes[1])
	t.Logf("GET 20 MB: %d bytes, %d objects allocated per request; GET 200 MB: %d bytes, %d objects", b20, o20, b200, o200)
	// Ten times the bytes may not cost even 64 KiB more: a buffer that
	// grew with the message would cost 180 MB more.
	if b200 > b20+64<<10 || o200 > o20+64 {
		t.Errorf("allocations grow with the message: 20 MB %d B / %d objects, 200 MB %d B / %d objects", b20, o20, b200, o200)
	}
}
