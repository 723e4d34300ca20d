package convert

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// FuzzScan: Scan never panics nor fails on a bytes.Reader, and every
// invariant of checkStructure holds (offsets within [0,Size] and ordered,
// caps respected, DecodedSize equal to NewDecoder's output), with the
// default caps and with tiny ones that the fuzzer can exceed.
func FuzzScan(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(tinyMessage))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, opts := range []ScanOptions{{}, {MaxDepth: 2, MaxParts: 4, MaxHeaderBytes: 64, MaxLineLength: 16}} {
			st, err := Scan(bytes.NewReader(raw), opts)
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			checkStructure(t, raw, st, opts)
			if opts == (ScanOptions{}) {
				env, err := ScanEnvelope(bytes.NewReader(raw))
				if err != nil || env != st.Envelope {
					t.Fatalf("ScanEnvelope = %+v, %v; Scan's envelope %+v", env, err, st.Envelope)
				}
			}
		}
	})
}

// FuzzDecodeFilename: file name decoding never panics and always gives a
// clean name (valid UTF-8, no control characters, no surrounding space,
// at most maxParamValue bytes); a name encoded as RFC 2231 and as RFC
// 2047 (B and Q) decodes back to itself.
func FuzzDecodeFilename(f *testing.F) {
	f.Add(`attachment; filename*=utf-8''%E2%82%AC.pdf`, `application/pdf; name="x.pdf"`, "Résumé.docx")
	f.Add(`attachment; filename*0*=utf-8''%E4%BC%9A; filename*1*=%E8%AD%B0`, ``, "会議資料.xlsx")
	f.Add(`attachment; filename="=?utf-8?b?UsOpc3Vtw6kuZG9jeA==?="`, `text/plain`, "a b")
	f.Add(`inline; filename="a\"b"`, `image/png; name*=iso-8859-1''%E4`, "\x00x\xff")
	f.Add("attachment; filename=\"caf\xe9\"", "", "")
	f.Fuzz(func(t *testing.T, disp, ctype, name string) {
		var tb textBuf
		var pp paramParser
		got := decodeFilename(&tb, &pp, []byte(disp), []byte(ctype))
		checkCleanName(t, got)

		if len(name) > 200 {
			return
		}
		want := cleanNameRef(name)
		var pct strings.Builder
		for i := 0; i < len(name); i++ {
			pct.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[name[i]>>4])+string("0123456789abcdef"[name[i]&15])))
		}
		quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace
		for _, d := range []string{
			"attachment; filename*=utf-8''" + pct.String(),
			`attachment; filename="` + quote(mime.BEncoding.Encode("utf-8", name)) + `"`,
			`attachment; filename="` + quote(mime.QEncoding.Encode("utf-8", name)) + `"`,
		} {
			if strings.Contains(name, "=?") && !strings.HasPrefix(d, "attachment; filename*") {
				continue // mime may leave such a name unencoded: it then reads as an encoded word
			}
			if got := decodeFilename(&tb, &pp, []byte(d), nil); got != want {
				t.Errorf("%q: decoded %q, want %q", d, got, want)
			}
		}
	})
}

func checkCleanName(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) || len(s) > maxParamValue {
		t.Fatalf("name %q: invalid UTF-8 or longer than %d bytes", s, maxParamValue)
	}
	if strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		t.Fatalf("name %q has surrounding spaces", s)
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 || r == '\u2028' || r == '\u2029' {
			t.Fatalf("name %q holds control character %U", s, r)
		}
	}
}

// cleanNameRef is the reference of what a decoded name becomes: each
// invalid byte U+FFFD, NUL dropped, other controls spaces, surrounding
// spaces trimmed.
func cleanNameRef(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == 0:
		case r < 0x20 || r >= 0x7f && r < 0xa0 || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), " ")
}

// FuzzParseDate: never panics; a parsed date is in UTC.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Mon, 02 Jan 2006 15:04:05 -0700", "2006-01-02T15:04:05Z", "02-Jan-06 3:04 PM EST", "02.01.2006 15.04.05"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, ok := parseDate([]byte(s)); ok && (tm.Location() != nil && tm.Location().String() != "UTC" || tm.Year() < 999 || tm.Year() > 10000) {
			t.Fatalf("parseDate(%q) = %v", s, tm)
		}
	})
}

// FuzzNewDecoder: decoding does not depend on how the input is split
// (Scan feeds lines, servers feed reads), and agrees with Go's decoders:
// the same bytes for base64 read in one go, Go's output a prefix of ours
// for quoted-printable (Go's stops at some garbage that we keep).
func FuzzNewDecoder(f *testing.F) {
	f.Add(true, []byte("QUJD\nREVG\n"))
	f.Add(true, []byte("QQ=\n=x"))
	f.Add(false, []byte("soft=\r\nbreak=3D  \r\nx=4"))
	f.Add(false, []byte("a"+strings.Repeat(" ", qpMaxWhitespace+1)+"\n"))
	f.Fuzz(func(t *testing.T, b64 bool, in []byte) {
		enc := "quoted-printable"
		if b64 {
			enc = "base64"
		}
		want := decodeAll(enc, in)
		got, err := io.ReadAll(NewDecoder(enc, iotest.OneByteReader(bytes.NewReader(in))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("byte by byte: %q (%v), at once: %q", got, err, want)
		}
		if len(want) > len(in) {
			t.Fatalf("decoded %d bytes out of %d", len(want), len(in))
		}
		if b64 {
			if len(in) < 900 {
				ref, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, wsStripper{bytes.NewReader(in)}))
				if !bytes.Equal(want, ref) {
					t.Fatalf("base64 %q: %q, Go %q", in, want, ref)
				}
			}
			return
		}
		ref, err := io.ReadAll(quotedprintable.NewReader(bufio.NewReaderSize(bytes.NewReader(in), len(in)+4096)))
		if err == nil && !bytes.Equal(want, ref) && maxSpaceRun(in) <= qpMaxWhitespace ||
			err != nil && !bytes.HasPrefix(want, ref) {
			t.Fatalf("qp %q: %q, Go %q (%v)", in, want, ref, err)
		}
	})
}

// maxSpaceRun is the longest run of quoted-printable whitespace in b:
// longer runs than qpMaxWhitespace are kept where Go drops them.
func maxSpaceRun(b []byte) int {
	run, best := 0, 0
	for _, c := range b {
		if isQPSpace(c) {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}
