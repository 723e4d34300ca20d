package convert

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"
)

func decodeAll(encoding string, in []byte) []byte {
	var d xferDecoder
	d.reset(xferKindOf(encoding))
	out := d.decode(nil, in)
	return d.finish(out)
}

func TestDecodeBase64(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"QUJD", "ABC"},
		{"QUJD\r\nREVG\r\n", "ABCDEF"},
		{"QU JD\n\tREVG", "ABCDEF"},      // SP and HTAB are skipped
		{"QUI=", "AB"},                   // one pad
		{"QQ==", "A"},                    // two pads
		{"QQ=\n=", "A"},                  // pads split by a line break
		{"QQ=", ""},                      // second pad missing: dropped
		{"QQ=X", ""},                     // bad second pad
		{"QUJDQQ", "ABC"},                // missing padding at the end: partial quantum dropped
		{"QUJD!REVG", "ABC"},             // garbage ends the data
		{"QUJDR!EVG", "ABC"},             // a partial quantum before garbage is dropped
		{"QQ==QUJD", "A"},                // nothing after the padding
		{"QUJD=", "ABC"},                 // pad after a whole quantum ends the data
		{"!!!not*base64@@@\n====\n", ""}, // mkcorpus bad-base64
		{"=QUJD", ""},
		{"QUJDREVGR0hJSktM\nTU5P", "ABCDEFGHIJKLMNO"},
	} {
		if got := decodeAll("base64", []byte(c.in)); string(got) != c.want {
			t.Errorf("base64 %q: got %q, want %q", c.in, got, c.want)
		}
		if ref := refDecodedLen("base64", []byte(c.in)); ref != int64(len(c.want)) {
			t.Errorf("base64 %q: Go's decoder yields %d bytes, the rule says %d", c.in, ref, len(c.want))
		}
	}
}

func TestDecodeQP(t *testing.T) {
	long := strings.Repeat(" ", qpMaxWhitespace+10)
	for _, c := range []struct {
		in, want string
		goSame   bool // Go's mime/quotedprintable gives the same
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"a=3Db", "a=b", true},
		{"a=3db", "a=b", true}, // lower-case hex
		{"soft=\nbreak", "softbreak", true},
		{"soft=\r\nbreak", "softbreak", true},
		{"soft=  \nbreak", "softbreak", true},
		{"trailing   \nx", "trailing\nx", true},
		{"trailing \t \r\nx", "trailing\r\nx", true},
		{"a\r \nb", "a\nb", true},
		{"a\r\r\nb", "a\r\nb", true},
		{"bare\rcr", "bare\rcr", true},
		{"=4", "=4", true},
		{"=4\n", "=4\n", true},
		{"=4 x", "=4 x", true},
		{"= 41", "= 41", true},
		{"==41", "=A", true},
		{"=4=41", "=4A", true},
		{"x=", "x", true},       // soft break at the end of the body
		{"x=  ", "x", true},     // with whitespace
		{"end   ", "end", true}, // trailing whitespace of the last line
		{"caf=E9\n", "caf\xe9\n", true},
		{"8bit \xe9 ok", "8bit \xe9 ok", true},
		{"ctl \x01\x7f kept", "ctl \x01\x7f kept", false}, // Go stops at control bytes
		{"a=\rb", "a=\rb", false},                         // Go stops
		{"a" + long + "\n", "a" + long + "\n", false},     // too long a run to hold back: kept whole
		{"a" + long + "b\n", "a" + long + "b\n", true},
	} {
		got := decodeAll("quoted-printable", []byte(c.in))
		if string(got) != c.want {
			t.Errorf("qp %q: got %q, want %q", c.in, got, c.want)
		}
		if c.goSame {
			ref, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(c.in)))
			if string(ref) != c.want {
				t.Errorf("qp %q: Go's decoder gives %q, the rule says %q", c.in, ref, c.want)
			}
		}
	}
}

// randomInput draws n bytes from alphabet.
func randomInput(r *rand.Rand, alphabet string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// TestDecodeDifferential compares the decoders with Go's on random input
// made of the characters that matter: equal output where Go does not
// give up, and Go's output a prefix of ours where it does (quoted-
// printable only: Go's stops at some garbage that we pass through).
func TestDecodeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		// base64: short enough for Go's decoder to see it in one read,
		// where its handling of data after padding is well defined.
		in := randomInput(r, "QUJDREVGabc019+/=\r\n \t!", r.IntN(200))
		got := decodeAll("base64", in)
		ref, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, wsStripper{bytes.NewReader(in)}))
		if !bytes.Equal(got, ref) {
			t.Fatalf("base64 %q: got %q, Go %q", in, got, ref)
		}

		in = randomInput(r, "aZ=3DfF0 \t\r\n\xe9", r.IntN(200))
		got = decodeAll("quoted-printable", in)
		ref, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(in)))
		if err == nil && !bytes.Equal(got, ref) || err != nil && !bytes.HasPrefix(got, ref) {
			t.Fatalf("qp %q: got %q, Go %q (%v)", in, got, ref, err)
		}
	}
}

// TestDecoderChunking: however the input is split, NewDecoder yields the
// same bytes, which is what lets Scan feed it line by line.
func TestDecoderChunking(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 2000
	if raceEnabled {
		n = 200
	}
	for i := 0; i < n; i++ {
		for _, enc := range []string{"base64", "quoted-printable"} {
			alphabet := "QUJDREVGabc019+/=\r\n \t!"
			if enc != "base64" {
				alphabet = "aZ=3DfF0 \t\r\n\xe9\x00"
			}
			in := randomInput(r, alphabet, r.IntN(3000))
			want := decodeAll(enc, in)
			for _, rd := range []io.Reader{
				iotest.OneByteReader(bytes.NewReader(in)),
				iotest.HalfReader(bytes.NewReader(in)),
				iotest.DataErrReader(bytes.NewReader(in)),
			} {
				got, err := io.ReadAll(NewDecoder(enc, rd))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s %q: chunked decoding gives %q (%v), want %q", enc, in, got, err, want)
				}
			}
		}
	}
}

func TestNewDecoderIdentity(t *testing.T) {
	r := strings.NewReader("x")
	for _, enc := range []string{"7bit", "8bit", "binary", "", "x-uuencode"} {
		if NewDecoder(enc, r) != io.Reader(r) {
			t.Errorf("NewDecoder(%q) is not the identity", enc)
		}
	}
	if got, _ := io.ReadAll(NewDecoder(" Base64 ", strings.NewReader("QUJD"))); string(got) != "ABC" {
		t.Errorf("encoding names are case- and space-insensitive: got %q", got)
	}
}

// TestNewDecoderError: a read error of the source is returned after the
// bytes decoded before it.
func TestNewDecoderError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("QUJD"), iotest.ErrReader(io.ErrUnexpectedEOF))
	got, err := io.ReadAll(NewDecoder("base64", r))
	if string(got) != "ABC" || err != io.ErrUnexpectedEOF {
		t.Errorf("got %q, %v", got, err)
	}
}

// decodeOwnedChunks decodes in with decodeOwned, fed in chunks of size
// chunk (as PartReader feeds its reads), and returns the output and the
// decoder's end state.
func decodeOwnedChunks(in []byte, chunk int) ([]byte, xferDecoder) {
	var d xferDecoder
	d.reset(xferBase64)
	buf := bytes.Clone(in) // decodeOwned overwrites its input
	var out []byte
	for len(buf) > 0 {
		n := min(chunk, len(buf))
		out = d.decodeOwned(out, buf[:n])
		buf = buf[n:]
	}
	return d.finish(out), d
}

// TestDecodeOwnedTraps: the bulk base64 path gives exactly what the
// byte loop gives on inputs built to trip it: padding followed by lone
// CRs (which Go's decoder accepts as the end), more data after padding,
// spaces, a quantum split by a lone CR, lines that are not whole quanta.
func TestDecodeOwnedTraps(t *testing.T) {
	line := strings.Repeat("QUJD", 19) // 76 characters, as encoders write
	lines := func(n int, eol string) string { return strings.Repeat(line+eol, n) }
	for _, in := range []string{
		lines(100, "\r\n"),
		lines(100, "\n"),
		lines(50, "\r\n") + "QQ==\r\r\r\r\n" + lines(50, "\r\n"),
		lines(50, "\n") + "QQ==\n" + lines(50, "\n"),
		// Go's decoder ends the data at "==" and skips the CRs; a run
		// ending there must not hide that the data ended.
		lines(50, "\n") + "QQ==\r\r\r\r\r\n" + "QUJ\n" + lines(50, "\n"),
		lines(50, "\n") + "QQ==\r\r\r\r\r\n" + lines(50, "\n") + "QUJ",
		lines(50, "\n") + "QUJDQQ==\n" + lines(50, "\n"),
		lines(50, "\n") + "QU JD" + lines(50, "\n"),
		lines(50, "\n") + "QUJ\rD\n" + lines(50, "\n"),
		lines(50, "\n") + "QUJ\rDQUJ\n" + lines(50, "\n"),
		lines(50, "\n") + "QUJDQ\n" + lines(50, "\n"),
		lines(50, "\n") + "QUJDQ\nUJD\n" + lines(50, "\n"),
		lines(50, "\n") + "QU*D\n" + lines(50, "\n"),
		lines(50, "\n") + "=QUJ\n" + lines(50, "\n"),
		lines(50, "\r\n") + "\r\n\r\n" + lines(50, "\r\n") + "QUI=\r\n",
		strings.Repeat("QUJD", 500),
	} {
		want := decodeAll("base64", []byte(in))
		var ref xferDecoder
		ref.reset(xferBase64)
		ref.finish(ref.decode(nil, []byte(in)))
		for _, chunk := range []int{1, 77, 300, 4096, len(in)} {
			got, d := decodeOwnedChunks([]byte(in), chunk)
			if !bytes.Equal(got, want) || d.bad != ref.bad {
				t.Errorf("%.60q… in chunks of %d: %d bytes (bad %v), want %d (bad %v)", in, chunk, len(got), d.bad, len(want), ref.bad)
			}
		}
	}
}

// FuzzDecodeOwned: the bulk base64 path decodes exactly as the byte loop
// (the rules Scan counted DecodedSize by), whatever the input and the
// chunking.
func FuzzDecodeOwned(f *testing.F) {
	line := strings.Repeat("QUJD", 19)
	f.Add([]byte(strings.Repeat(line+"\r\n", 10)+"QQ==\r\r\n"+line), uint16(300))
	f.Add([]byte(strings.Repeat(line+"\n", 10)+"QU JD\n"+line+"\n"), uint16(77))
	f.Add([]byte(strings.Repeat("QUJD", 200)), uint16(1000))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16) {
		want := decodeAll("base64", in)
		var ref xferDecoder
		ref.reset(xferBase64)
		ref.finish(ref.decode(nil, in))
		got, d := decodeOwnedChunks(in, int(chunk)+1)
		if !bytes.Equal(got, want) || d.bad != ref.bad {
			t.Fatalf("chunks of %d: %q (bad %v), byte loop %q (bad %v)", int(chunk)+1, got, d.bad, want, ref.bad)
		}
	})
}
