package convert

import (
	"bytes"
	"io"
)

// readBufSize is the fixed read buffer of the scanner. Lines up to this
// length come back whole; longer lines come back in pieces. 8 KiB holds
// every well-formed line (RFC 5322 §2.1.1 caps lines at 998 octets) and
// keeps the cost of a scan of a tiny message low (the buffer is zeroed
// once per scan).
const readBufSize = 8 << 10

// maxEmptyReads is how many consecutive (0, nil) reads of the source are
// tolerated before giving up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// lineReader cuts a stream into line fragments while counting offsets. A
// fragment is a whole line including its LF, or, for a line longer than
// the buffer, a piece of it; the last line of a stream may lack its LF.
// A fragment that does not end its line never ends with CR, so that a
// CRLF is always seen within one fragment.
type lineReader struct {
	r       io.Reader
	buf     []byte // readBufSize bytes
	r0, w   int    // buf[r0:w] is read but not yet returned
	scanned int    // buf[r0:scanned] is known to hold no LF
	off     int64  // stream offset of buf[r0]
	err     error  // sticky error of r (io.EOF at the end)
	midLine bool   // the last fragment did not end its line
}

func (lr *lineReader) reset(r io.Reader, buf []byte) {
	lr.r, lr.buf = r, buf
	lr.r0, lr.w, lr.scanned, lr.off, lr.err, lr.midLine = 0, 0, 0, 0, nil, false
}

// next returns the next fragment, its stream offset, whether it starts a
// line (first) and whether the line goes on in the next fragment (more).
// At the end of the stream it returns a nil fragment and the error of
// the source (io.EOF for a clean end). The fragment is valid until the
// next call.
func (lr *lineReader) next() (frag []byte, off int64, first, more bool, err error) {
	empty := 0
	for {
		if i := bytes.IndexByte(lr.buf[lr.scanned:lr.w], '\n'); i >= 0 {
			end := lr.scanned + i + 1
			return lr.take(end, false)
		}
		lr.scanned = lr.w
		if lr.err != nil {
			if lr.r0 == lr.w {
				return nil, lr.off, false, false, lr.err
			}
			// The last line of the stream, without LF.
			return lr.take(lr.w, false)
		}
		if lr.w-lr.r0 == len(lr.buf) {
			// A line longer than the buffer: hand out a piece, keeping a
			// trailing CR back so that a CRLF is never split.
			end := lr.w
			if lr.buf[end-1] == '\r' {
				end--
			}
			return lr.take(end, true)
		}
		if lr.r0 > 0 {
			n := copy(lr.buf, lr.buf[lr.r0:lr.w])
			lr.scanned -= lr.r0
			lr.r0, lr.w = 0, n
		}
		n, err := lr.r.Read(lr.buf[lr.w:])
		if n < 0 || n > len(lr.buf)-lr.w {
			// A broken reader; treat as an I/O failure rather than panic.
			lr.err = io.ErrShortBuffer
			continue
		}
		lr.w += n
		if err != nil {
			lr.err = err
		} else if n == 0 {
			if empty++; empty >= maxEmptyReads {
				lr.err = io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
}

func (lr *lineReader) take(end int, more bool) (frag []byte, off int64, first, more2 bool, err error) {
	frag = lr.buf[lr.r0:end]
	off = lr.off
	first = !lr.midLine
	lr.off += int64(len(frag))
	lr.r0 = end
	if lr.scanned < end {
		lr.scanned = end
	}
	lr.midLine = more
	return frag, off, first, more, nil
}
