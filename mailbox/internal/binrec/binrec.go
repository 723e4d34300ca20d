// Package binrec decodes the varint fields of the backends' binary index
// records (mailbox/maildir, mailbox/imap): a Reader remembers the first
// error, after which every read returns zero, so a decoder reads a whole
// record and checks Err once.
package binrec

import "encoding/binary"

// Reader reads from B. On the first malformed or missing field it sets
// Err to Bad (the caller's sentinel, so that errors.Is keeps working).
type Reader struct {
	B   []byte
	Err error
	Bad error
}

// New returns a Reader of b that reports bad.
func New(b []byte, bad error) Reader { return Reader{B: b, Bad: bad} }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.Err != nil || len(r.B) == 0 {
		r.Err = r.Bad
		return 0
	}
	c := r.B[0]
	r.B = r.B[1:]
	return c
}

// Uvarint reads an unsigned varint (encoding/binary).
func (r *Reader) Uvarint() uint64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.Err = r.Bad
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed varint (encoding/binary).
func (r *Reader) Varint() int64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.Err = r.Bad
		return 0
	}
	r.B = r.B[n:]
	return v
}
