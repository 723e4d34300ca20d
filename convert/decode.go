package convert

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"

	simd "github.com/segmentio/asm/base64"
)

// Transfer decoding (RFC 2045 §6). Scan computes Part.DecodedSize by
// running the very decoder that NewDecoder returns, so a part served
// through NewDecoder is exactly DecodedSize bytes long, whatever garbage
// the body holds. The rules are fixed here and must not change without
// re-indexing (the index stores DecodedSize):
//
// base64 (RFC 2045 §6.8), as Go's encoding/base64 StdEncoding decoder
// reads a stream from which CR, LF, SP and HTAB were removed:
//   - CR, LF, SP and HTAB are skipped anywhere;
//   - every 4 alphabet characters give 3 bytes;
//   - the first byte that is neither in the alphabet nor skipped ends the
//     data. When it is "=" and 3 characters of a quantum are pending, they
//     give 2 bytes; when it is "=" after 2 pending characters and the next
//     non-skipped byte is "=" too, they give 1 byte. Otherwise the pending
//     characters are dropped. Everything after the end is ignored (a
//     decoder that stops at the first error, as Go's does when the rest
//     lies in the same read, gives the same bytes);
//   - at the end of the body, pending characters of an incomplete quantum
//     are dropped (StdEncoding requires padding).
//
// quoted-printable (RFC 2045 §6.7), as Go's mime/quotedprintable reader,
// without its failures on long lines and control bytes:
//   - a line is the bytes up to and including LF; the last may lack LF;
//   - whitespace (SP, HTAB, CR) at the end of a line is dropped, then the
//     line break is written as CRLF if the line ended with CRLF and as LF
//     otherwise; but a run of more than qpMaxWhitespace whitespace bytes
//     is kept whole, wherever it is (an "=" before it is then literal);
//   - "=" followed by optional whitespace and the end of the line (or of
//     the body) is a soft line break: nothing is written;
//   - "=" followed by two hex digits (either case) is the byte they spell;
//   - any other "=" is written as it is, and so is every other byte,
//     control bytes and 8-bit bytes included.
//
// Every other transfer encoding (7bit, 8bit, binary, unknown tokens) is
// the identity.

// qpMaxWhitespace bounds the whitespace a quoted-printable decoder holds
// back while it cannot tell yet whether the run ends its line. Encoders
// write lines of at most 76 characters (RFC 2045 §6.7 rule 5); 1 KiB is
// generous, and bounds the decoder's memory for hostile input.
const qpMaxWhitespace = 1024

type xferKind uint8

const (
	xferIdentity xferKind = iota
	xferBase64
	xferQP
)

func xferKindOf(encoding string) xferKind {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		return xferBase64
	case "quoted-printable":
		return xferQP
	}
	return xferIdentity
}

// b64 values: 0-63 alphabet, b64Skip whitespace, b64Pad "=", b64Bad other.
const (
	b64Skip = 0x40
	b64Pad  = 0x41
	b64Bad  = 0xff
)

var b64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Bad
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['\r'], t['\n'], t[' '], t['\t'] = b64Skip, b64Skip, b64Skip, b64Skip
	t['='] = b64Pad
	return t
}()

// b64Pairs maps two base64 characters, read as a little-endian uint16,
// to their 12 bits, or b64PairBad when either is not in the alphabet.
// Halving the table lookups of the fast path makes it about half again
// as fast; 128 KiB stays in the L2 cache.
var b64Pairs = func() *[1 << 16]uint16 {
	var t [1 << 16]uint16
	for i := range t {
		a, b := b64Table[i&0xff], b64Table[i>>8]
		if a >= 64 || b >= 64 {
			t[i] = b64PairBad
		} else {
			t[i] = uint16(a)<<6 | uint16(b)
		}
	}
	return &t
}()

const b64PairBad = 0xffff

// qp states.
const (
	qpNormal   = iota
	qpEq           // after "=" (whitespace after it is in ws)
	qpEqHex        // after "=" and one hex digit (hex1)
	b64Run     = 0 // base64: decoding
	b64PadWait = 1 // base64: "=" after 2 characters, want another "="
	b64Done    = 2 // base64: data ended
)

// xferDecoder is the streaming state machine of one transfer encoding.
// decode and finish append decoded bytes to dst; a call never writes more
// than len(src)+qpMaxWhitespace bytes, so a caller with that capacity
// never makes it allocate.
type xferDecoder struct {
	kind  xferKind
	state uint8
	// base64
	quad uint32 // pending sextets
	nq   uint8  // number of pending sextets
	bad  bool   // base64 data ended by garbage or truncated
	// quoted-printable
	hex1       byte
	prevCR     bool // the byte before the current one was CR
	wsOverflow bool // the current whitespace run exceeded qpMaxWhitespace
	nws        int
	ws         [qpMaxWhitespace]byte
}

func (d *xferDecoder) reset(kind xferKind) {
	d.kind, d.state, d.quad, d.nq, d.bad = kind, 0, 0, 0, false
	d.hex1, d.prevCR, d.wsOverflow, d.nws = 0, false, false, 0
}

func (d *xferDecoder) decode(dst, src []byte) []byte {
	switch d.kind {
	case xferBase64:
		return d.decodeBase64(dst, src)
	case xferQP:
		for i := 0; i < len(src); {
			if d.state == qpNormal && d.nws == 0 {
				// Fast path: a run of bytes that stand for themselves.
				j := i
				for j < len(src) && qpPlain[src[j]] {
					j++
				}
				if j > i {
					dst = append(dst, src[i:j]...)
					d.prevCR, d.wsOverflow = false, false
					i = j
					continue
				}
			}
			dst = d.qpByte(dst, src[i])
			i++
		}
		return dst
	}
	return append(dst, src...)
}

// finish ends the body and appends what the decoder still holds.
func (d *xferDecoder) finish(dst []byte) []byte {
	switch d.kind {
	case xferBase64:
		if d.state != b64Done && (d.nq > 0 || d.state == b64PadWait) {
			d.bad = true
		}
		d.state = b64Done
	case xferQP:
		switch d.state {
		case qpEqHex:
			dst = append(dst, '=', d.hex1)
		}
		// Pending whitespace ends the body: trailing, dropped. After "="
		// it makes a soft line break with the end of the body.
		d.nws, d.state = 0, qpNormal
	}
	return dst
}

// b64BulkMin is the least compacted input worth the bulk path: the SIMD
// kernel decodes 32 characters per step and needs at least 45
// (segmentio/asm's minDecodeLen); below a few lines the setup is not
// repaid.
const b64BulkMin = 256

// b64Bulk decodes whole blocks of base64 with AVX2 where the CPU has it
// (about 4× the pair-table loop) and with encoding/base64 otherwise.
var b64Bulk = simd.StdEncoding

// decodeOwned is decode for a caller that owns src and lets the decoder
// overwrite it: base64 takes the bulk path wherever it can. It removes
// the line breaks of a run of whole lines in place (CR and LF are skipped
// anywhere, so removing them changes nothing) and decodes the run in one
// call to b64Bulk, which skips CR and LF too. When b64Bulk accepts a run,
// it decoded it by our rules, with one exception: it accepts padding in
// the run's last quantum, where our data ends (endsInPad); such a run,
// and every run b64Bulk refuses (a space, garbage, padding inside, a
// trailing partial quantum), goes to the exact loop, which decodes the
// compacted run as it would have decoded the original. (A separate
// method, so that src escapes to the heap only here: decode's callers
// pass small stack slices.)
func (d *xferDecoder) decodeOwned(dst, src []byte) []byte {
	if d.kind != xferBase64 {
		return d.decode(dst, src)
	}
	for len(src) > 0 {
		if len(src) < b64BulkMin || d.state != b64Run {
			return d.decodeBase64(dst, src)
		}
		if d.nq == 0 {
			if w, j := compactBase64Lines(src); j > 0 {
				run := src[:w]
				if w >= b64BulkMin && !endsInPad(run) {
					if need := len(dst) + w/4*3 + 8; cap(dst) < need {
						dst = append(make([]byte, 0, need), dst...)
					}
					if m, err := b64Bulk.Decode(dst[len(dst):cap(dst)], run); err == nil {
						dst = dst[:len(dst)+m]
						src = src[j:]
						continue
					}
				}
				dst = d.decodeBase64(dst, run)
				src = src[j:]
				continue
			}
		}
		// A line the bulk path cannot take (a partial line at the start
		// of src, or one whose length is not a whole number of quanta):
		// the exact loop decodes it, up to and including its LF.
		k := bytes.IndexByte(src, '\n')
		if k < 0 {
			return d.decodeBase64(dst, src)
		}
		dst = d.decodeBase64(dst, src[:k+1])
		src = src[k+1:]
	}
	return dst
}

// compactBase64Lines moves the content of the leading whole lines of src
// (each ended by LF, with one CR before the LF dropped) to the front of
// src, as long as each line holds a whole number of 4-character quanta
// and does not end in "=". It returns the compacted length w and the
// length j of src it consumed; src[:w] then stands for src[:j].
func compactBase64Lines(src []byte) (w, j int) {
	k := -1 // length of the previous line, LF excluded
	for j < len(src) {
		// Encoders write lines of one length: try the previous line's
		// before searching. A guess that swallows a LF or CR (a shorter
		// line) is harmless: both are skipped, by b64Bulk too.
		if k < 0 || j+k >= len(src) || src[j+k] != '\n' {
			if k = bytes.IndexByte(src[j:], '\n'); k < 0 {
				break
			}
		}
		line := src[j : j+k]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line)%4 != 0 || len(line) > 0 && line[len(line)-1] == '=' {
			break
		}
		w += copy(src[w:], line)
		j += k + 1
	}
	return w, j
}

// endsInPad reports whether the last byte of run that is not CR or LF is
// "=": the only place where b64Bulk accepts padding without an error.
func endsInPad(run []byte) bool {
	for i := len(run) - 1; i >= 0; i-- {
		if c := run[i]; c != '\r' && c != '\n' {
			return c == '='
		}
	}
	return false
}

// decodeBase64 is the exact decoder of the rules at the top of this
// file, for any input and state.
func (d *xferDecoder) decodeBase64(dst, src []byte) []byte {
	if need := len(dst) + len(src)/4*3 + 8; cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	n := len(dst)
	out := dst[:cap(dst)]
	i := 0
	for i < len(src) {
		if d.state == b64Done {
			// Data ended: only note whether garbage follows.
			for ; i < len(src); i++ {
				if b64Table[src[i]] != b64Skip {
					d.bad = true
					break
				}
			}
			break
		}
		// Fast path: runs of alphabet characters, 8 (then 4) at a time.
		if d.nq == 0 && d.state == b64Run {
			// 8 characters make 6 bytes, stored as one 8-byte word
			// whose last 2 bytes the next step overwrites (out has
			// that slack: see the capacity above).
			pairs := b64Pairs
			for i+8 <= len(src) && n+8 <= len(out) {
				s := src[i : i+8 : i+8]
				p0 := pairs[binary.LittleEndian.Uint16(s[0:2])]
				p1 := pairs[binary.LittleEndian.Uint16(s[2:4])]
				p2 := pairs[binary.LittleEndian.Uint16(s[4:6])]
				p3 := pairs[binary.LittleEndian.Uint16(s[6:8])]
				if (p0|p1|p2|p3)&0xf000 != 0 { // b64PairBad in any of them
					break
				}
				v := uint64(p0)<<52 | uint64(p1)<<40 | uint64(p2)<<28 | uint64(p3)<<16
				binary.BigEndian.PutUint64(out[n:n+8:n+8], v)
				n += 6
				i += 8
			}
			for i+4 <= len(src) && n+3 <= len(out) {
				c0, c1, c2, c3 := b64Table[src[i]], b64Table[src[i+1]], b64Table[src[i+2]], b64Table[src[i+3]]
				if c0|c1|c2|c3 >= 64 {
					break
				}
				v := uint32(c0)<<18 | uint32(c1)<<12 | uint32(c2)<<6 | uint32(c3)
				out[n], out[n+1], out[n+2] = byte(v>>16), byte(v>>8), byte(v)
				n += 3
				i += 4
			}
			if i == len(src) {
				break
			}
		}
		c := src[i]
		i++
		v := b64Table[c]
		switch {
		case v == b64Skip:
		case d.state == b64PadWait:
			if v == b64Pad {
				out[n] = byte(d.quad >> 4)
				n++
			} else {
				d.bad = true
			}
			d.state = b64Done
		case v < 64:
			d.quad = d.quad<<6 | uint32(v)
			d.nq++
			if d.nq == 4 {
				out[n], out[n+1], out[n+2] = byte(d.quad>>16), byte(d.quad>>8), byte(d.quad)
				n += 3
				d.quad, d.nq = 0, 0
			}
		case v == b64Pad && d.nq == 3:
			out[n], out[n+1] = byte(d.quad>>10), byte(d.quad>>2)
			n += 2
			d.state = b64Done
		case v == b64Pad && d.nq == 2:
			d.state = b64PadWait
		default:
			// Garbage, or padding where none can be.
			d.bad = true
			d.state = b64Done
		}
	}
	return out[:n]
}

// qpPlain marks the bytes that a quoted-printable decoder in its normal
// state writes as they are.
var qpPlain = func() (t [256]bool) {
	for i := range t {
		t[i] = true
	}
	t['='], t[' '], t['\t'], t['\r'], t['\n'] = false, false, false, false, false
	return t
}()

func isQPSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// qpWS holds back one whitespace byte, or writes it when the run is too
// long to hold.
func (d *xferDecoder) qpWS(dst []byte, c byte) []byte {
	if d.wsOverflow {
		return append(dst, c)
	}
	if d.nws == len(d.ws) {
		if d.state == qpEq {
			dst = append(dst, '=')
			d.state = qpNormal
		}
		dst = append(dst, d.ws[:d.nws]...)
		d.nws = 0
		d.wsOverflow = true
		return append(dst, c)
	}
	d.ws[d.nws] = c
	d.nws++
	return dst
}

func (d *xferDecoder) flushWS(dst []byte) []byte {
	dst = append(dst, d.ws[:d.nws]...)
	d.nws = 0
	d.wsOverflow = false
	return dst
}

func (d *xferDecoder) qpByte(dst []byte, c byte) []byte {
	prevCR := d.prevCR
	d.prevCR = c == '\r'
	for {
		switch d.state {
		case qpNormal:
			switch {
			case c == '\n':
				d.nws, d.wsOverflow = 0, false
				if prevCR {
					return append(dst, '\r', '\n')
				}
				return append(dst, '\n')
			case isQPSpace(c):
				return d.qpWS(dst, c)
			case c == '=':
				dst = d.flushWS(dst)
				d.state = qpEq
				return dst
			default:
				dst = d.flushWS(dst)
				return append(dst, c)
			}
		case qpEq:
			switch {
			case c == '\n':
				// Soft line break.
				d.nws, d.wsOverflow, d.state = 0, false, qpNormal
				return dst
			case isQPSpace(c):
				return d.qpWS(dst, c)
			case d.nws == 0 && isHex(c):
				d.hex1, d.state = c, qpEqHex
				return dst
			}
			// A literal "=": write it and what it held, then c afresh.
			dst = append(dst, '=')
			dst = d.flushWS(dst)
			d.state = qpNormal
		case qpEqHex:
			if isHex(c) {
				d.state = qpNormal
				return append(dst, unhex(d.hex1)<<4|unhex(c))
			}
			dst = append(dst, '=', d.hex1)
			d.state = qpNormal
			// The byte before c was the hex digit, not CR.
			prevCR = false
		}
	}
}

// NewDecoder returns a reader that decodes the Content-Transfer-Encoding
// encoding (as in Part.Encoding) from r, applying exactly the rules with
// which Scan computed Part.DecodedSize (see the comment at the top of
// decode.go). Identity encodings return r itself. The reader holds fixed
// buffers (about 9 KiB) whatever the size of the body. r should yield
// exactly the encoded body: Part.BodyStart to Part.BodyEnd.
func NewDecoder(encoding string, r io.Reader) io.Reader {
	k := xferKindOf(encoding)
	if k == xferIdentity {
		return r
	}
	dr := &decodeReader{r: r}
	dr.d.reset(k)
	dr.out = make([]byte, 0, len(dr.in)+qpMaxWhitespace+8)
	return dr
}

type decodeReader struct {
	r    io.Reader
	d    xferDecoder
	in   [4096]byte // one page of encoded input per read: the output fits in out
	out  []byte     // decoded, not yet returned: out[pos:]
	pos  int
	err  error // error of r, returned once out is drained
	done bool
}

func (dr *decodeReader) Read(p []byte) (int, error) {
	for dr.pos == len(dr.out) {
		if dr.done {
			return 0, dr.err
		}
		n, err := dr.r.Read(dr.in[:])
		dr.out, dr.pos = dr.d.decodeOwned(dr.out[:0], dr.in[:n]), 0
		if err != nil {
			if err == io.EOF {
				dr.out = dr.d.finish(dr.out)
			}
			dr.done, dr.err = true, err
		}
		if len(p) == 0 {
			return 0, nil
		}
	}
	n := copy(p, dr.out[dr.pos:])
	dr.pos += n
	return n, nil
}
