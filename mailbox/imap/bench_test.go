package imap

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/davmail/davmail/mailbox"
)

// bigFolder is the size of the benchmark folder (mkcorpus -bigfolder)
// by default: a CI-sized run.
const bigFolder = 10000

// benchFolderSize is the size of the benchmark folder:
// $DAVMAIL_BENCH_BIGFOLDER (for example 100000, the size of issue 8's
// targets), else bigFolder.
func benchFolderSize(b testing.TB) int {
	v := os.Getenv("DAVMAIL_BENCH_BIGFOLDER")
	if v == "" {
		return bigFolder
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000000 { // a bound for a benchmark, far above 100,000
		b.Fatalf("DAVMAIL_BENCH_BIGFOLDER=%q: want 1..1000000", v)
	}
	return n
}

// corpusOnce builds the mkcorpus Maildir once per test binary.
var corpusOnce struct {
	sync.Once
	dir string
	err error
}

// mkcorpusDir finds the corpus generator like convert's corpus test:
// $DAVMAIL_MKCORPUS, else ../../../shared/tools/mkcorpus.
func mkcorpusDir(b testing.TB) string {
	dir := os.Getenv("DAVMAIL_MKCORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "tools", "mkcorpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("mkcorpus not found at %s: %v", dir, err)
		}
		b.Skipf("mkcorpus not found at %s (set DAVMAIL_MKCORPUS)", dir)
	}
	return dir
}

// seedBigFolder puts the corpus Maildir under login's home in the test
// Dovecot, so that "Bulk" holds benchFolderSize messages.
func seedBigFolder(b testing.TB, login string) { seedBigFolderT(b, login) }

func seedBigFolderT(b testing.TB, login string) {
	d := needDovecot(b)
	corpusOnce.Do(func() {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("davmail-imap-bench-%d", os.Getpid()))
		cmd := exec.Command("go", "run", ".", "-out", out, "-users", "bench", "-messages", "0", "-large", "0",
			"-malformed=false", "-bigfolder", fmt.Sprint(benchFolderSize(b)))
		cmd.Dir = mkcorpusDir(b)
		if msg, err := cmd.CombinedOutput(); err != nil {
			corpusOnce.err = fmt.Errorf("mkcorpus: %v: %s", err, msg)
		}
		corpusOnce.dir = filepath.Join(out, "bench", "Maildir")
	})
	if corpusOnce.err != nil {
		b.Fatal(corpusOnce.err)
	}
	dst := filepath.Join(d.MailRoot(), login, "Maildir")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", corpusOnce.dir, dst).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	uid, gid := d.MailUID()
	if os.Geteuid() == 0 {
		filepath.WalkDir(filepath.Dir(dst), func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				err = os.Chown(p, uid, gid)
			}
			return err
		})
	}
}

// BenchmarkWarmList is a PROPFIND Depth 1 of the big folder as the
// store sees it: a warm List. It reports the metadata FETCHes and
// SELECTs per listing (both must be 0: one STATUS answers that nothing
// changed).
func BenchmarkWarmList(b *testing.B) {
	prefix := fmt.Sprintf("bench%d", userSeq.Add(1))
	seedBigFolder(b, prefix+"-alice")
	s := newTestStore(b, prefix)
	defer s.Close()
	ctx := b.Context()
	mb, err := s.Mailbox(ctx, "alice")
	if err != nil {
		b.Fatal(err)
	}
	n := benchFolderSize(b)
	l, err := mb.List(ctx, "Bulk") // cold: the one full FETCH
	if err != nil {
		b.Fatal(err)
	}
	if len(l) != n {
		b.Fatalf("Bulk lists %d messages, want %d", len(l), n)
	}
	before := s.Stats()
	b.ResetTimer()
	for b.Loop() {
		l, err := mb.List(ctx, "Bulk")
		if err != nil || len(l) != n {
			b.Fatalf("%d %v", len(l), err)
		}
	}
	after := s.Stats()
	b.ReportMetric(float64(after.Fetches-before.Fetches)/float64(b.N), "fetches/op")
	b.ReportMetric(float64(after.Selects-before.Selects)/float64(b.N), "selects/op")
	if after.Fetches != before.Fetches {
		b.Errorf("warm listings sent %d metadata FETCHes", after.Fetches-before.Fetches)
	}
}

// BenchmarkColdList is the first listing of the big folder: the
// metadata FETCH of every message and the index write. It reports the
// FETCH commands per listing (one, plus one per 1,024 multipart
// messages for their BODYSTRUCTURE: none in this corpus) and, on Linux,
// the test process's peak RSS (run it alone: -bench ColdList).
func BenchmarkColdList(b *testing.B) {
	prefix := fmt.Sprintf("bench%d", userSeq.Add(1))
	seedBigFolder(b, prefix+"-alice")
	n := benchFolderSize(b)
	var fetches int64
	for b.Loop() {
		s := newTestStore(b, prefix)
		mb, _ := s.Mailbox(b.Context(), "alice")
		l, err := mb.List(b.Context(), "Bulk")
		if err != nil || len(l) != n {
			b.Fatalf("%d %v", len(l), err)
		}
		fetches += s.Stats().Fetches
		s.Close()
	}
	b.ReportMetric(float64(fetches)/float64(b.N), "fetches/op")
	if rss, ok := peakRSS(); ok {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

// largeSize is the message of the raw-read benchmarks: big enough that
// windows reach their maximum, small enough for a CI run.
const largeSize = 64 << 20

func appendLarge(b *testing.B, mb mailbox.Mailbox) mailbox.Message {
	var raw bytes.Buffer
	raw.Write(msg("large", ""))
	line := bytes.Repeat([]byte("0123456789abcdef"), 4)
	for raw.Len() < largeSize {
		raw.Write(line)
		raw.WriteString("\r\n")
	}
	m, err := mb.Append(b.Context(), mailbox.Inbox, &raw, mailbox.AppendOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkOpenRead reads a large message through Open (the raw GET).
func BenchmarkOpenRead(b *testing.B) {
	s := newTestStore(b, "")
	defer s.Close()
	ctx := b.Context()
	mb, _ := s.Mailbox(ctx, "alice")
	m := appendLarge(b, mb)
	buf := make([]byte, 32<<10) // http.ServeContent's copy buffer
	b.SetBytes(m.Size)
	b.ResetTimer()
	for b.Loop() {
		c, err := mb.Open(ctx, mailbox.Inbox, m.Name)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
		c.Close()
		if err != nil || n != m.Size {
			b.Fatalf("read %d of %d: %v", n, m.Size, err)
		}
	}
}

// BenchmarkPlainFetch is the reference: a plain go-imap client's
// UID FETCH BODY.PEEK[] of the same message, streamed.
func BenchmarkPlainFetch(b *testing.B) {
	s := newTestStore(b, "")
	defer s.Close()
	mb, _ := s.Mailbox(b.Context(), "alice")
	m := appendLarge(b, mb)
	c := rawClient(b, s.loginName("alice"))
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	b.SetBytes(m.Size)
	b.ResetTimer()
	for b.Loop() {
		cmd := c.Fetch(imapv2.UIDSetNum(imapv2.UID(m.UID)), &imapv2.FetchOptions{BodySection: []*imapv2.FetchItemBodySection{{Peek: true}}})
		var n int64
		for fm := cmd.Next(); fm != nil; fm = cmd.Next() {
			for it := fm.Next(); it != nil; it = fm.Next() {
				if lit := literalOf(it); lit != nil {
					k, err := io.CopyBuffer(io.Discard, lit, buf)
					if err != nil {
						b.Fatal(err)
					}
					n += k
				}
			}
		}
		if err := cmd.Close(); err != nil || n != m.Size {
			b.Fatalf("fetched %d of %d: %v", n, m.Size, err)
		}
	}
}

// literalOf returns the body literal of a FETCH item, nil for others.
func literalOf(it imapclient.FetchItemData) io.Reader {
	if bs, ok := it.(imapclient.FetchItemDataBodySection); ok && bs.Literal != nil {
		return bs.Literal
	}
	return nil
}
