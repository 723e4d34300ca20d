package convert

import (
	"errors"
	"fmt"
	"io"
)

// partBufSize is the encoded input read per step by a PartReader: large
// enough that the per-read overhead (a pread, a decoder call) vanishes
// against the decoding itself, small enough that eight parallel
// downloads hold well under a MiB.
const partBufSize = 32 << 10

// ErrPartChanged is returned when a body decodes to fewer bytes than the
// index recorded: the message file is not the one that was indexed.
var ErrPartChanged = errors.New("convert: body shorter than indexed; the message changed")

// PartReader reads the decoded body of one part of a message, exactly
// Part.DecodedSize bytes, with fixed buffers. It seeks: an identity body
// by offset, a base64 body with a regular line layout (Part.LineChars)
// by arithmetic, without decoding what comes before; other bodies are
// decoded from their start and skipped up to the offset. It is an
// io.ReadSeeker, so http.ServeContent serves Range requests from it.
type PartReader struct {
	src  io.ReaderAt
	p    Part
	kind xferKind

	off int64 // decoded offset of the next Read

	// Decoder position; valid when ready.
	ready bool
	dpos  int64 // decoded offset of out[pos]
	enc   int64 // next encoded byte to read, relative to BodyStart
	skip  int64 // decoded bytes still to drop before dpos counts
	eof   bool  // the decoder has seen the whole body
	d     xferDecoder
	in    []byte
	out   []byte
	pos   int
}

// NewPartReader returns a reader of the decoded body of p, whose offsets
// are in the message src.
func NewPartReader(src io.ReaderAt, p *Part) *PartReader {
	return &PartReader{src: src, p: *p, kind: xferKindOf(p.Encoding)}
}

// Size is the number of decoded bytes, Part.DecodedSize.
func (r *PartReader) Size() int64 { return r.p.DecodedSize }

// Seek sets the offset of the next Read (io.Seeker). It does no I/O.
func (r *PartReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.p.DecodedSize
	default:
		return 0, fmt.Errorf("convert: seek whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("convert: seek to a negative offset")
	}
	r.off = offset
	return offset, nil
}

// Read reads decoded bytes (io.Reader).
func (r *PartReader) Read(b []byte) (int, error) {
	if r.off >= r.p.DecodedSize {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	if rest := r.p.DecodedSize - r.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	if r.kind == xferIdentity {
		n, err := r.src.ReadAt(b, r.p.BodyStart+r.off)
		r.off += int64(n)
		if n == len(b) {
			err = nil
		} else if err == io.EOF {
			err = ErrPartChanged
		}
		return n, err
	}
	if !r.ready || r.dpos != r.off {
		r.position()
	}
	for r.pos == len(r.out) {
		if r.eof {
			return 0, ErrPartChanged
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, r.out[r.pos:])
	r.pos += n
	r.dpos += int64(n)
	r.off += int64(n)
	return n, nil
}

// position restarts the decoder so that its next output is decoded byte
// r.off.
func (r *PartReader) position() {
	if r.in == nil {
		r.in = make([]byte, partBufSize)
		r.out = make([]byte, 0, partBufSize+qpMaxWhitespace+8)
	}
	r.d.reset(r.kind)
	r.out, r.pos, r.eof, r.ready = r.out[:0], 0, false, true
	if enc, skip, ok := base64Offset(&r.p, r.off); ok {
		r.enc, r.skip = enc, skip
	} else {
		r.enc, r.skip = 0, r.off
	}
	r.dpos = r.off
}

// fill decodes the next chunk of encoded input into out, dropping what
// skip says.
func (r *PartReader) fill() error {
	n := min(int64(len(r.in)), r.p.EncodedSize-r.enc)
	var err error
	if n > 0 {
		var got int
		got, err = r.src.ReadAt(r.in[:n], r.p.BodyStart+r.enc)
		if got < int(n) {
			if err == nil || err == io.EOF {
				err = ErrPartChanged
			}
			return err
		}
		r.enc += n
	}
	r.out, r.pos = r.d.decodeOwned(r.out[:0], r.in[:n]), 0 // r.in is read afresh for every fill
	if r.enc >= r.p.EncodedSize {
		r.out = r.d.finish(r.out)
		r.eof = true
	}
	if r.skip > 0 {
		k := min(r.skip, int64(len(r.out)))
		r.pos = int(k)
		r.skip -= k
	}
	return nil
}
