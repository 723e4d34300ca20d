package maildir

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/mailbox"
)

// benchCorpus returns a corpus with one big folder "Bulk" for alice and
// nothing else, and its size: 100,000 messages, or 10,000 with -short
// (CI runs every benchmark once in short mode, on a fresh machine).
func benchCorpus(b *testing.B) (string, int) {
	n := 100000
	if testing.Short() {
		n = 10000
	}
	return cachedCorpus(b, "-users", "alice", "-bigfolder", strconv.Itoa(n), "-messages", "0", "-large", "0", "-malformed=false"), n
}

// BenchmarkIndexCold measures the first List of a 100,000-message folder
// on a fresh index: reading the directory, parsing every file's envelope
// in parallel, and writing the index.
func BenchmarkIndexCold(b *testing.B) {
	dir, benchFolderSize := benchCorpus(b)
	ctx := context.Background()
	var cpu time.Duration
	defer func() {
		// CPU time (user+system) is reported besides wall time: on a
		// shared machine it varies far less with the load of others.
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		if rss := peakRSS(); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		}
	}()
	for b.Loop() {
		b.StopTimer()
		s, err := Open(Options{Root: dir, IndexDir: b.TempDir(), Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		mb := mustMailbox(b, s, "alice")
		c0 := cpuTime()
		b.StartTimer()
		l, err := mb.List(ctx, "Bulk")
		b.StopTimer()
		cpu += cpuTime() - c0
		if err != nil || len(l) != benchFolderSize {
			b.Fatalf("List: %d messages, %v", len(l), err)
		}
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkListWarm measures List of an unchanged 100,000-message folder:
// three stats and the cached snapshot, no allocation proportional to the
// folder.
func BenchmarkListWarm(b *testing.B) {
	dir, benchFolderSize := benchCorpus(b)
	ctx := context.Background()
	s, mb := indexedBulk(b, dir, 0)
	// The corpus may be younger than the time-stamp granularity: wait
	// until the folder counts as stable so the loop measures the warm
	// path, not rescans.
	deadline := time.Now().Add(10 * time.Second)
	for {
		scans := s.Stats().Scans
		if _, err := mb.List(ctx, "Bulk"); err != nil {
			b.Fatal(err)
		}
		if s.Stats().Scans == scans {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("folder never became stable")
		}
		time.Sleep(100 * time.Millisecond) // polling the clock past the granularity, not waiting for readiness
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := float64(ms.HeapAlloc) / (1 << 20) // the whole process: the index of 100,000 messages and the test's own
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l, err := mb.List(ctx, "Bulk")
		if err != nil || len(l) != benchFolderSize {
			b.Fatalf("List: %d messages, %v", len(l), err)
		}
	}
	b.ReportMetric(heap, "heap-MiB")
}

// BenchmarkLoad measures reopening a mailbox whose index exists: loading
// 100,000 records and listing without a parse.
func BenchmarkLoad(b *testing.B) {
	dir, benchFolderSize := benchCorpus(b)
	index := b.TempDir()
	ctx := context.Background()
	s, err := Open(Options{Root: dir, IndexDir: index, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := mustMailbox(b, s, "alice").List(ctx, "Bulk"); err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		s, err := Open(Options{Root: dir, IndexDir: index, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		l, err := mustMailbox(b, s, "alice").List(ctx, "Bulk")
		if err != nil || len(l) != benchFolderSize || s.Stats().Parsed != 0 {
			b.Fatalf("List: %d messages, %v, stats %+v", len(l), err, s.Stats())
		}
		s.Close()
	}
}

// indexedBulk opens a store on the benchmark corpus with a fresh index
// (granularity 0: the default) and lists Bulk once, so that the index is
// built; the store is closed when the benchmark ends.
func indexedBulk(b *testing.B, dir string, granularity time.Duration) (*Store, mailbox.Mailbox) {
	b.Helper()
	s, err := Open(Options{Root: dir, IndexDir: b.TempDir(), Logger: zerolog.Nop(), Granularity: granularity})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	mb := mustMailbox(b, s, "alice")
	if _, err := mb.List(context.Background(), "Bulk"); err != nil {
		b.Fatal(err)
	}
	return s, mb
}

// peakRSS returns the process's peak resident set size in bytes (Linux
// VmHWM), 0 where unknown.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// BenchmarkRescan measures List of the 100,000-message folder after
// another program changed one message's flags: the cur/ directory is
// read again and compared with the index. B/op is the transient memory
// of that comparison, which the listing process's heap has to absorb.
func BenchmarkRescan(b *testing.B) {
	dir, benchFolderSize := benchCorpus(b)
	ctx := context.Background()
	// A nanosecond granularity: every rename is seen at the next List.
	s, mb := indexedBulk(b, dir, time.Nanosecond)
	cur := filepath.Join(dir, "alice", "Maildir", ".Bulk", "cur")
	names, err := readDirNames(cur)
	if err != nil || len(names) == 0 {
		b.Fatalf("%s: %d names, %v", cur, len(names), err)
	}
	// The corpus is shared by the benchmarks: the file is renamed back.
	orig := filepath.Join(cur, names[0])
	flagged := orig + "F"
	if strings.Contains(names[0], "F") {
		flagged = strings.Replace(orig, "F", "", 1)
	}
	at := orig
	b.Cleanup(func() { os.Rename(at, orig) })
	scans := s.Stats().Scans
	b.ReportAllocs()
	for b.Loop() {
		next := flagged
		if at == flagged {
			next = orig
		}
		if err := os.Rename(at, next); err != nil {
			b.Fatal(err)
		}
		at = next
		l, err := mb.List(ctx, "Bulk")
		if err != nil || len(l) != benchFolderSize {
			b.Fatalf("List: %d messages, %v", len(l), err)
		}
	}
	if s.Stats().Scans == scans {
		b.Fatal("no rescan happened")
	}
}
