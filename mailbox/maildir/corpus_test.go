package maildir

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The test corpus comes from the shared deterministic generator
// (../shared/tools/mkcorpus from the repository root). Tests that only
// read a corpus share one cached copy per set of flags under
// os.TempDir(); tests that change files generate their own.

// mkcorpusDir is where the generator's source lives; DAVMAIL_MKCORPUS
// overrides it.
func mkcorpusDir() string {
	if d := os.Getenv("DAVMAIL_MKCORPUS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "tools", "mkcorpus")
}

var (
	mkcorpusOnce sync.Once
	mkcorpusBin  string
	mkcorpusErr  error
)

// mkcorpus returns the path of the built generator, building it once per
// test binary (cached under os.TempDir() by source hash).
func mkcorpus(t testing.TB) string {
	t.Helper()
	mkcorpusOnce.Do(func() {
		dir, err := filepath.Abs(mkcorpusDir())
		if err != nil {
			mkcorpusErr = err
			return
		}
		src, err := os.ReadFile(filepath.Join(dir, "main.go"))
		if err != nil {
			mkcorpusErr = err
			return
		}
		sum := sha256.Sum256(src)
		bin := filepath.Join(os.TempDir(), "davmail-mkcorpus-"+hex.EncodeToString(sum[:8]))
		if _, err := os.Stat(bin); err == nil {
			mkcorpusBin = bin
			return
		}
		tmp := bin + ".building" + randSuffix()
		cmd := exec.Command("go", "build", "-o", tmp, ".")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			mkcorpusErr = &buildError{err: err, out: string(out)}
			return
		}
		mkcorpusErr = os.Rename(tmp, bin)
		mkcorpusBin = bin
	})
	if mkcorpusErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mkcorpus: %v", mkcorpusErr)
		}
		t.Skipf("mkcorpus not available (%v); set DAVMAIL_MKCORPUS to ../shared/tools/mkcorpus", mkcorpusErr)
	}
	return mkcorpusBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func randSuffix() string {
	var b [6]byte
	f, err := os.Open("/dev/urandom")
	if err == nil {
		f.Read(b[:])
		f.Close()
	}
	return hex.EncodeToString(b[:])
}

// genCorpus writes a corpus with args into dir.
func genCorpus(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(mkcorpus(t), append([]string{"-out", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkcorpus %v: %v\n%s", args, err, out)
	}
}

var cachedCorpora sync.Mutex

// cachedCorpus returns a corpus generated with args, shared between
// tests and runs (mkcorpus is deterministic). Callers must not change
// it: open it with a fresh IndexDir and only read.
func cachedCorpus(t testing.TB, args ...string) string {
	t.Helper()
	bin := mkcorpus(t)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte(strings.Join(args, "\x00")))
	h.Write([]byte(filepath.Base(bin)))
	h.Write([]byte(st.ModTime().String()))
	dir := filepath.Join(os.TempDir(), "davmail-corpus-"+hex.EncodeToString(h.Sum(nil)[:8]))
	cachedCorpora.Lock()
	defer cachedCorpora.Unlock()
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	tmp := dir + ".tmp" + randSuffix()
	genCorpus(t, tmp, args...)
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(done); serr != nil { // another process won the race
			t.Fatal(err)
		}
	}
	return dir
}

// manifestEntry is one line of manifest.jsonl (the fields tests use).
type manifestEntry struct {
	User      string `json:"user"`
	Folder    string `json:"folder"`
	File      string `json:"file"`
	Size      int64  `json:"size"`
	Subject   string `json:"subject"`
	MessageID string `json:"message_id"`
	Flags     string `json:"flags"`
	Malformed string `json:"malformed"`
}

func readManifest(t testing.TB, dir string) []manifestEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifestEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e manifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
