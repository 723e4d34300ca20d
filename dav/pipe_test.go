package dav

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

func pipeData(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(b)
	return b
}

// blockWriters are the two ResponseWriters with a block-copying
// ReadFrom that GET hands to http.ServeContent; every test here runs
// against both.
var blockWriters = []struct {
	name string
	wrap func(http.ResponseWriter, *pipeBufs) http.ResponseWriter
}{
	{"pipeWriter", func(w http.ResponseWriter, b *pipeBufs) http.ResponseWriter { return pipeWriter{w, b} }},
	{"blockWriter", func(w http.ResponseWriter, b *pipeBufs) http.ResponseWriter { return blockWriter{w, b} }},
}

func readFrom(w http.ResponseWriter, src io.Reader) (int64, error) {
	return w.(io.ReaderFrom).ReadFrom(src)
}

// TestPipeWriterCopies: every size around the block boundaries arrives
// whole and in order, from a source that returns short reads.
func TestPipeWriterCopies(t *testing.T) {
	bufs := newPipeBufs()
	for _, bw := range blockWriters {
		for _, n := range []int{0, 1, pipeBlock - 1, pipeBlock, pipeBlock + 1, 3*pipeBlock + 7} {
			data := pipeData(n)
			rec := httptest.NewRecorder()
			got, err := readFrom(bw.wrap(rec, bufs), iotest.HalfReader(bytes.NewReader(data)))
			if err != nil || got != int64(n) || !bytes.Equal(rec.Body.Bytes(), data) {
				t.Errorf("%s, %d bytes: ReadFrom = %d, %v; body %d bytes, equal %v", bw.name, n, got, err, rec.Body.Len(), bytes.Equal(rec.Body.Bytes(), data))
			}
		}
	}
}

// failingWriter fails every Write after the first ok bytes.
type failingWriter struct {
	http.ResponseWriter
	ok int
}

var errClientGone = errors.New("client went away")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.ok {
		n := f.ok
		f.ok = 0
		return n, errClientGone
	}
	f.ok -= len(p)
	return len(p), nil
}

// watchedReader counts the reads that start after closed is set: a
// pipeWriter must not read its source after ReadFrom has returned (the
// handler closes the file then).
type watchedReader struct {
	r     io.Reader
	done  atomic.Bool
	after atomic.Int32
	reads atomic.Int32
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.done.Load() {
		w.after.Add(1)
	}
	w.reads.Add(1)
	return w.r.Read(p)
}

// TestPipeWriterWriteError: a failed write (the client went away) ends
// ReadFrom with that error, and the source is not read afterwards.
func TestPipeWriterWriteError(t *testing.T) {
	for _, bw := range blockWriters {
		data := pipeData(8 * pipeBlock)
		src := &watchedReader{r: bytes.NewReader(data)}
		w := &failingWriter{ResponseWriter: httptest.NewRecorder(), ok: pipeBlock + 10}
		n, err := readFrom(bw.wrap(w, newPipeBufs()), src)
		src.done.Store(true)
		if !errors.Is(err, errClientGone) || n != pipeBlock+10 {
			t.Fatalf("%s: ReadFrom = %d, %v; want %d, %v", bw.name, n, err, pipeBlock+10, errClientGone)
		}
		// The reader is at most two blocks ahead: it stopped, not read all.
		if r := src.reads.Load(); r > 4 {
			t.Errorf("%s: source read %d times for a client that failed after one block", bw.name, r)
		}
		if a := src.after.Load(); a != 0 {
			t.Errorf("%s: source read %d times after ReadFrom returned", bw.name, a)
		}
	}
}

// TestPipeWriterSourceError: an error of the source (a message that
// changed under the reader) ends ReadFrom with it, after what was read.
func TestPipeWriterSourceError(t *testing.T) {
	boom := errors.New("boom")
	data := pipeData(pipeBlock + 100)
	for _, bw := range blockWriters {
		rec := httptest.NewRecorder()
		n, err := readFrom(bw.wrap(rec, newPipeBufs()), io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) || n != int64(len(data)) || !bytes.Equal(rec.Body.Bytes(), data) {
			t.Fatalf("%s: ReadFrom = %d, %v; want %d, %v", bw.name, n, err, len(data), boom)
		}
	}
}

// TestPipeWriterRanges: http.ServeContent through a pipeWriter answers
// single and multipart Range requests as it does through the plain
// writer.
func TestPipeWriterRanges(t *testing.T) {
	data := pipeData(2*pipeBlock + 3)
	bufs := newPipeBufs()
	modTime := time.Unix(1700000000, 0)
	for _, bw := range blockWriters {
		for _, rg := range []string{"", "bytes=0-0", "bytes=-1000", "bytes=100-200,600000-600010", "bytes=999999999-"} {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if rg != "" {
				req.Header.Set("Range", rg)
			}
			plain := httptest.NewRecorder()
			http.ServeContent(plain, req, "", modTime, bytes.NewReader(data))
			piped := httptest.NewRecorder()
			http.ServeContent(bw.wrap(piped, bufs), req, "", modTime, bytes.NewReader(data))
			if plain.Code != piped.Code || plain.Header().Get("Content-Range") != piped.Header().Get("Content-Range") {
				t.Errorf("%s, Range %q: status %d/%d, Content-Range %q/%q", bw.name, rg, plain.Code, piped.Code,
					plain.Header().Get("Content-Range"), piped.Header().Get("Content-Range"))
			}
			// Multipart bodies differ only by their random boundary.
			pb, qb := plain.Body.Bytes(), piped.Body.Bytes()
			if ct := plain.Header().Get("Content-Type"); len(ct) > 20 && ct[:20] == "multipart/byteranges" {
				if len(pb) != len(qb) {
					t.Errorf("%s, Range %q: multipart body %d bytes through the writer, %d plain", bw.name, rg, len(qb), len(pb))
				}
				continue
			}
			if !bytes.Equal(pb, qb) {
				t.Errorf("%s, Range %q: body differs (%d vs %d bytes)", bw.name, rg, len(qb), len(pb))
			}
		}
	}
}

// TestPipeBufsBounded: the free list keeps at most pipeKeep idle blocks
// (8 MiB) however many downloads returned theirs, and hands kept blocks
// out again before allocating.
func TestPipeBufsBounded(t *testing.T) {
	p := newPipeBufs()
	var out []*[pipeBlock]byte
	for range pipeKeep + 5 {
		out = append(out, p.get())
	}
	for _, b := range out {
		p.put(b)
	}
	if n := len(p.free); n != pipeKeep {
		t.Fatalf("%d idle blocks kept after %d returned, want the cap %d", n, len(out), pipeKeep)
	}
	kept := map[*[pipeBlock]byte]bool{}
	for _, b := range out[:pipeKeep] {
		kept[b] = true
	}
	for range pipeKeep {
		if b := p.get(); !kept[b] {
			t.Fatal("get allocated a block while kept ones were idle")
		}
	}
}
