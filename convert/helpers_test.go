package convert

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"testing"
	"unicode/utf8"
)

// wsStripper removes CR, LF, SP and HTAB: the reference base64 decoder
// of the tests is Go's StdEncoding decoder over it.
type wsStripper struct{ r io.Reader }

func (w wsStripper) Read(p []byte) (int, error) {
	for {
		n, err := w.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// refDecodedLen decodes body with Go's own decoders, as a straightforward
// reference, and returns how many bytes they yield before they stop.
func refDecodedLen(encoding string, body []byte) int64 {
	var r io.Reader
	switch xferKindOf(encoding) {
	case xferBase64:
		r = base64.NewDecoder(base64.StdEncoding, wsStripper{bytes.NewReader(body)})
	case xferQP:
		// A buffer larger than any line: mime/quotedprintable gives up
		// on lines longer than its bufio buffer.
		r = quotedprintable.NewReader(bufio.NewReaderSize(bytes.NewReader(body), len(body)+4096))
	default:
		return int64(len(body))
	}
	n, _ := io.Copy(io.Discard, r)
	return n
}

// ownDecodedLen decodes body with NewDecoder.
func ownDecodedLen(t testing.TB, encoding string, body []byte) int64 {
	t.Helper()
	n, err := io.Copy(io.Discard, NewDecoder(encoding, bytes.NewReader(body)))
	if err != nil {
		t.Fatalf("NewDecoder(%q): %v", encoding, err)
	}
	return n
}

// checkStructure checks what must hold for every scan of raw: offsets
// within the message and ordered, the tree consistent, caps respected,
// strings valid UTF-8, and DecodedSize equal to what NewDecoder yields.
func checkStructure(t testing.TB, raw []byte, st *Structure, opts ScanOptions) {
	t.Helper()
	opts = opts.withDefaults()
	size := int64(len(raw))
	if st.Size != size {
		t.Fatalf("Size %d, want %d", st.Size, size)
	}
	if len(st.Parts) == 0 || len(st.Parts) > opts.MaxParts {
		t.Fatalf("%d parts, want 1..%d", len(st.Parts), opts.MaxParts)
	}
	for i, p := range st.Parts {
		if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.BodyEnd && p.BodyEnd <= size) {
			t.Fatalf("part %d (%q): offsets %d %d %d outside [0,%d] or unordered", i, p.Path, p.HeaderStart, p.BodyStart, p.BodyEnd, size)
		}
		if p.EncodedSize != p.BodyEnd-p.BodyStart {
			t.Fatalf("part %d: EncodedSize %d != %d", i, p.EncodedSize, p.BodyEnd-p.BodyStart)
		}
		if p.Depth > opts.MaxDepth {
			t.Fatalf("part %d: depth %d > %d", i, p.Depth, opts.MaxDepth)
		}
		if i == 0 {
			if p.Parent != -1 || p.Depth != 0 || p.Path != "" || p.HeaderStart != 0 {
				t.Fatalf("part 0: %+v", p)
			}
		} else {
			if p.Parent < 0 || p.Parent >= i {
				t.Fatalf("part %d: parent %d", i, p.Parent)
			}
			pp := st.Parts[p.Parent]
			if p.Depth != pp.Depth+1 {
				t.Fatalf("part %d: depth %d, parent's %d", i, p.Depth, pp.Depth)
			}
			if p.HeaderStart < pp.BodyStart || p.BodyEnd > pp.BodyEnd {
				t.Fatalf("part %d [%d,%d) outside its parent's body [%d,%d)", i, p.HeaderStart, p.BodyEnd, pp.BodyStart, pp.BodyEnd)
			}
		}
		for _, s := range []string{p.Path, p.ContentType, p.Charset, p.Encoding, p.Disposition, p.FileName, p.ContentID} {
			if !utf8.ValidString(s) {
				t.Fatalf("part %d: invalid UTF-8 %q", i, s)
			}
		}
		if p.ContentType == "" || p.Encoding == "" {
			t.Fatalf("part %d: empty ContentType or Encoding: %+v", i, p)
		}
		body := raw[p.BodyStart:p.BodyEnd]
		if got := ownDecodedLen(t, p.Encoding, body); got != p.DecodedSize {
			t.Fatalf("part %d (%q, %s): DecodedSize %d, NewDecoder yields %d", i, p.Path, p.Encoding, p.DecodedSize, got)
		}
	}
	e := st.Envelope
	for _, s := range []string{e.Subject, e.From, e.To, e.Cc, e.MessageID, e.ContentType} {
		if !utf8.ValidString(s) || len(s) > maxEnvelopeText || bytes.ContainsAny([]byte(s), "\x00\r\n") {
			t.Fatalf("envelope string %q: invalid UTF-8, too long or not one line", s)
		}
	}
	if e.ContentType != st.Parts[0].ContentType {
		t.Fatalf("envelope ContentType %q, part 0 %q", e.ContentType, st.Parts[0].ContentType)
	}
	has := false
	for _, p := range st.Parts {
		has = has || p.IsAttachment
	}
	if has != e.HasAttachments {
		t.Fatalf("HasAttachments %v, parts say %v", e.HasAttachments, has)
	}
	if !e.Date.IsZero() && e.Date.Location() != nil && e.Date.Location().String() != "UTC" {
		t.Fatalf("Date %v not in UTC", e.Date)
	}
}
