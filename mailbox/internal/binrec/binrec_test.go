package binrec

import (
	"encoding/binary"
	"errors"
	"testing"
)

var errBad = errors.New("bad record")

// TestReader: fields read back in order; a truncated record sets the
// caller's sentinel once and every later read returns zero.
func TestReader(t *testing.T) {
	b := []byte{7}
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	r := New(b, errBad)
	if c, u, v := r.Byte(), r.Uvarint(), r.Varint(); c != 7 || u != 300 || v != -5 || r.Err != nil || len(r.B) != 0 {
		t.Fatalf("read %d %d %d, err %v, rest %d", c, u, v, r.Err, len(r.B))
	}
	for cut := range len(b) {
		r := New(b[:cut], errBad)
		r.Byte()
		r.Uvarint()
		v := r.Varint()
		if !errors.Is(r.Err, errBad) || v != 0 {
			t.Errorf("cut at %d: err %v, last field %d", cut, r.Err, v)
		}
		if r.Byte() != 0 || r.Uvarint() != 0 || !errors.Is(r.Err, errBad) {
			t.Errorf("cut at %d: reads after the error are not zero", cut)
		}
	}
}
