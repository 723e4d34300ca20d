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

// TestPipeWriterCopies: every size around the block boundaries arrives
// whole and in order, from a source that returns short reads.
func TestPipeWriterCopies(t *testing.T) {
	bufs := newPipeBufs()
	for _, n := range []int{0, 1, pipeBlock - 1, pipeBlock, pipeBlock + 1, 3*pipeBlock + 7} {
		data := pipeData(n)
		rec := httptest.NewRecorder()
		got, err := pipeWriter{rec, bufs}.ReadFrom(iotest.HalfReader(bytes.NewReader(data)))
		if err != nil || got != int64(n) || !bytes.Equal(rec.Body.Bytes(), data) {
			t.Errorf("%d bytes: ReadFrom = %d, %v; body %d bytes, equal %v", n, got, err, rec.Body.Len(), bytes.Equal(rec.Body.Bytes(), data))
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
	data := pipeData(8 * pipeBlock)
	src := &watchedReader{r: bytes.NewReader(data)}
	w := &failingWriter{ResponseWriter: httptest.NewRecorder(), ok: pipeBlock + 10}
	n, err := pipeWriter{w, newPipeBufs()}.ReadFrom(src)
	src.done.Store(true)
	if !errors.Is(err, errClientGone) || n != pipeBlock+10 {
		t.Fatalf("ReadFrom = %d, %v; want %d, %v", n, err, pipeBlock+10, errClientGone)
	}
	// The reader is at most two blocks ahead: it stopped, not read all.
	if r := src.reads.Load(); r > 4 {
		t.Errorf("source read %d times for a client that failed after one block", r)
	}
	if a := src.after.Load(); a != 0 {
		t.Errorf("source read %d times after ReadFrom returned", a)
	}
}

// TestPipeWriterSourceError: an error of the source (a message that
// changed under the reader) ends ReadFrom with it, after what was read.
func TestPipeWriterSourceError(t *testing.T) {
	boom := errors.New("boom")
	data := pipeData(pipeBlock + 100)
	rec := httptest.NewRecorder()
	n, err := pipeWriter{rec, newPipeBufs()}.ReadFrom(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || n != int64(len(data)) || !bytes.Equal(rec.Body.Bytes(), data) {
		t.Fatalf("ReadFrom = %d, %v; want %d, %v", n, err, len(data), boom)
	}
}

// TestPipeWriterRanges: http.ServeContent through a pipeWriter answers
// single and multipart Range requests as it does through the plain
// writer.
func TestPipeWriterRanges(t *testing.T) {
	data := pipeData(2*pipeBlock + 3)
	bufs := newPipeBufs()
	modTime := time.Unix(1700000000, 0)
	for _, rg := range []string{"", "bytes=0-0", "bytes=-1000", "bytes=100-200,600000-600010", "bytes=999999999-"} {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		if rg != "" {
			req.Header.Set("Range", rg)
		}
		plain := httptest.NewRecorder()
		http.ServeContent(plain, req, "", modTime, bytes.NewReader(data))
		piped := httptest.NewRecorder()
		http.ServeContent(pipeWriter{piped, bufs}, req, "", modTime, bytes.NewReader(data))
		if plain.Code != piped.Code || plain.Header().Get("Content-Range") != piped.Header().Get("Content-Range") {
			t.Errorf("Range %q: status %d/%d, Content-Range %q/%q", rg, plain.Code, piped.Code,
				plain.Header().Get("Content-Range"), piped.Header().Get("Content-Range"))
		}
		// Multipart bodies differ only by their random boundary.
		pb, qb := plain.Body.Bytes(), piped.Body.Bytes()
		if ct := plain.Header().Get("Content-Type"); len(ct) > 20 && ct[:20] == "multipart/byteranges" {
			if len(pb) != len(qb) {
				t.Errorf("Range %q: multipart body %d bytes through the pipe, %d plain", rg, len(qb), len(pb))
			}
			continue
		}
		if !bytes.Equal(pb, qb) {
			t.Errorf("Range %q: body differs (%d vs %d bytes)", rg, len(qb), len(pb))
		}
	}
}
