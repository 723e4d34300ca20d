package convert

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkPartReaders compares, for every leaf part of raw, a PartReader
// read whole and read from seeks at the given offsets with the body
// decoded from its start by NewDecoder.
func checkPartReaders(t testing.TB, raw []byte, offsets func(size int64) []int64) {
	t.Helper()
	st, err := Scan(bytes.NewReader(raw), ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := bytes.NewReader(raw)
	for i := range st.Parts {
		p := &st.Parts[i]
		want, err := io.ReadAll(NewDecoder(p.Encoding, bytes.NewReader(raw[p.BodyStart:p.BodyEnd])))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(want)) != p.DecodedSize {
			t.Fatalf("part %d: NewDecoder gives %d bytes, DecodedSize %d", i, len(want), p.DecodedSize)
		}
		r := NewPartReader(src, p)
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("part %d (%s, LineChars %d): PartReader read %d bytes (%v), want %d", i, p.Encoding, p.LineChars, len(got), err, len(want))
		}
		for _, off := range offsets(p.DecodedSize) {
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1+off%5000)
			n, err := io.ReadFull(r, buf)
			end := min(off+int64(len(buf)), p.DecodedSize)
			if off >= p.DecodedSize {
				if n != 0 || err != io.EOF {
					t.Fatalf("part %d: read at %d past the end: %d, %v", i, off, n, err)
				}
				continue
			}
			if !bytes.Equal(buf[:n], want[off:end]) {
				t.Fatalf("part %d (%s, LineChars %d): bytes at %d differ (%d read, %v)", i, p.Encoding, p.LineChars, off, n, err)
			}
		}
	}
}

func someOffsets(seed uint64) func(int64) []int64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func(size int64) []int64 {
		offs := []int64{0, size, size - 1, size / 2, size + 3}
		for range 20 {
			if size > 0 {
				offs = append(offs, rng.Int64N(size))
			}
		}
		var out []int64
		for _, o := range offs {
			if o >= 0 {
				out = append(out, o)
			}
		}
		return out
	}
}

func TestPartReaderTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) < 10 {
		t.Fatalf("testdata: %d files, %v", len(files), err)
	}
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { checkPartReaders(t, raw, someOffsets(uint64(i))) })
	}
}

// b64Message wraps a base64 body (lines of n characters, ending eol) in
// a message.
func b64Message(data []byte, n int, eol, extra string) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b" + eol + eol + "--b" + eol +
		"Content-Type: application/octet-stream" + eol + "Content-Transfer-Encoding: base64" + eol + eol)
	for len(enc) > n {
		b.WriteString(enc[:n] + eol)
		enc = enc[n:]
	}
	b.WriteString(enc + eol + extra + "--b--" + eol)
	return []byte(b.String())
}

func TestPartReaderLayouts(t *testing.T) {
	data := make([]byte, 100_000)
	rand.NewChaCha8([32]byte{7}).Read(data)
	for _, c := range []struct {
		name      string
		raw       []byte
		lineChars int
	}{
		{"76-crlf", b64Message(data, 76, "\r\n", ""), 76},
		{"76-lf", b64Message(data, 76, "\n", ""), 76},
		{"64-lf", b64Message(data, 64, "\n", ""), 64},
		{"odd-width", b64Message(data, 77, "\n", ""), 77},
		{"blank-line-after", b64Message(data, 76, "\r\n", "\r\n"), 76},
		{"one-line", b64Message(data[:3000], 1<<20, "\n", ""), 4000},
		{"short-tail", b64Message(data[:1001], 76, "\n", ""), 76},
		{"junk-after", b64Message(data[:1000], 76, "\n", "trailing text\n"), 0},
		{"mixed-endings", bytes.Replace(b64Message(data[:2000], 76, "\n", ""), []byte("\n"), []byte("\r\n"), 8), 0},
		{"space-in-line", bytes.Replace(b64Message(data[:2000], 76, "\n", ""), []byte("A"), []byte(" "), 1), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := Scan(bytes.NewReader(c.raw), ScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p := st.Parts[1]
			if p.LineChars != c.lineChars {
				t.Errorf("LineChars %d (LineEnd %d), want %d", p.LineChars, p.LineEnd, c.lineChars)
			}
			checkPartReaders(t, c.raw, someOffsets(3))
		})
	}
}

// TestPartReaderSeekCost: a read near the end of a regular base64 body
// reads only a chunk near the end, not the body before it.
func TestPartReaderSeekCost(t *testing.T) {
	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1, 2}).Read(data)
	raw := b64Message(data, 76, "\r\n", "")
	st, err := Scan(bytes.NewReader(raw), ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReaderAt{r: bytes.NewReader(raw)}
	r := NewPartReader(cr, &st.Parts[1])
	if _, err := r.Seek(-1<<20, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[len(data)-1<<20:]) {
		t.Fatalf("last MiB: %d bytes, %v", len(got), err)
	}
	// 1 MiB decoded is 4/3 MiB encoded plus line endings, plus at most
	// one chunk of slack.
	if limit := int64(1<<20)*4/3*78/76 + partBufSize; cr.n > limit {
		t.Errorf("read %d encoded bytes for the last MiB, want at most %d", cr.n, limit)
	}
}

type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func FuzzPartReader(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		if raw, err := os.ReadFile(name); err == nil && len(raw) < 64<<10 {
			f.Add(raw, uint64(len(raw)))
		}
	}
	f.Add(b64Message([]byte("hello, world, this is some data"), 8, "\n", ""), uint64(5))
	f.Fuzz(func(t *testing.T, raw []byte, seed uint64) {
		if len(raw) > 256<<10 {
			return
		}
		checkPartReaders(t, raw, someOffsets(seed))
	})
}
