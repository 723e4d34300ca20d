package maildir

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// The MIME structure of every message (convert.Scan) lives in its own
// bucket, keyed by message ID, so listings never load it and a request
// for a part never parses the message (issue 4: "structure once, at
// index time"). It is written when the message is indexed: by a scan
// that finds a new file, or by Append. Records missing for another
// reason (an index migrated from schema 2, a copy, which gets a new ID)
// are filled in on first use, once.

var bucketStructs = []byte("structs") // ID (8 bytes BE) → structure record

// structVersion is the layout of a structure record; an unknown version
// is treated as missing (scanned again), never as an error.
const structVersion = 1

func structKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// scanMessage reads a whole message once: its envelope for the listing
// record and its structure record. A panic on a malformed message (a bug,
// never expected) lists the message with an empty envelope and no
// structure rather than taking the server down.
func scanMessage(r io.Reader) (env mailbox.Envelope, rec []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			env, rec, err = mailbox.Envelope{}, nil, nil
		}
	}()
	st, err := convert.Scan(r, convert.ScanOptions{})
	if err != nil {
		return env, nil, err
	}
	return st.Envelope, encodeStructure(nil, &mailbox.Structure{Parts: st.Parts, Problems: st.Problems}), nil
}

// Flag bits of a part record.
const (
	partAttachment = 1 << iota
)

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeStructure(b []byte, st *mailbox.Structure) []byte {
	b = append(b, structVersion)
	b = binary.AppendUvarint(b, uint64(len(st.Problems)))
	for _, p := range st.Problems {
		b = appendStr(b, p)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Parts)))
	for i := range st.Parts {
		p := &st.Parts[i]
		var bits byte
		if p.IsAttachment {
			bits |= partAttachment
		}
		b = append(b, bits)
		b = binary.AppendVarint(b, int64(p.Parent))
		b = binary.AppendUvarint(b, uint64(p.Depth))
		for _, s := range [...]string{p.Path, p.ContentType, p.Charset, p.Encoding, p.Disposition, p.FileName, p.ContentID} {
			b = appendStr(b, s)
		}
		b = binary.AppendUvarint(b, uint64(p.HeaderStart))
		b = binary.AppendUvarint(b, uint64(p.BodyStart-p.HeaderStart))
		b = binary.AppendUvarint(b, uint64(p.EncodedSize))
		b = binary.AppendUvarint(b, uint64(p.DecodedSize))
		b = binary.AppendUvarint(b, uint64(p.LineChars))
		b = append(b, byte(p.LineEnd))
		keys := make([]string, 0, len(p.Params))
		for k := range p.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic records
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendStr(b, k)
			b = appendStr(b, p.Params[k])
		}
	}
	return b
}

func (r *reader) str() string {
	n := r.Uvarint()
	if r.Err != nil {
		return ""
	}
	if n > uint64(len(r.B)) {
		r.Err = errRecord
		return ""
	}
	s := string(r.B[:n])
	r.B = r.B[n:]
	return s
}

// count reads a element count, refusing counts the record cannot hold
// (each element takes at least one byte), so a corrupt record cannot
// make us allocate.
func (r *reader) count() int {
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		r.Err = errRecord
		return 0
	}
	return int(n)
}

func decodeStructure(b []byte) (*mailbox.Structure, error) {
	rd := newReader(b)
	r := &rd
	if r.Byte() != structVersion {
		return nil, fmt.Errorf("%w: structure version", errRecord)
	}
	st := &mailbox.Structure{}
	if n := r.count(); n > 0 {
		st.Problems = make([]string, n)
		for i := range st.Problems {
			st.Problems[i] = r.str()
		}
	}
	st.Parts = make([]mailbox.Part, r.count())
	for i := range st.Parts {
		p := &st.Parts[i]
		bits := r.Byte()
		p.IsAttachment = bits&partAttachment != 0
		p.Parent = int(r.Varint())
		p.Depth = int(r.Uvarint())
		for _, s := range [...]*string{&p.Path, &p.ContentType, &p.Charset, &p.Encoding, &p.Disposition, &p.FileName, &p.ContentID} {
			*s = r.str()
		}
		p.HeaderStart = int64(r.Uvarint())
		p.BodyStart = p.HeaderStart + int64(r.Uvarint())
		p.EncodedSize = int64(r.Uvarint())
		p.BodyEnd = p.BodyStart + p.EncodedSize
		p.DecodedSize = int64(r.Uvarint())
		p.LineChars = int(r.Uvarint())
		p.LineEnd = int(r.Byte())
		if n := r.count(); n > 0 {
			p.Params = make(map[string]string, n)
			for range n {
				k := r.str()
				p.Params[k] = r.str()
			}
		}
		if r.Err != nil {
			return nil, r.Err
		}
		if p.Parent < -1 || p.Parent >= i || (i > 0) != (p.Parent >= 0) || p.HeaderStart < 0 || p.BodyStart < p.HeaderStart || p.EncodedSize < 0 || p.DecodedSize < 0 || p.LineChars < 0 || p.LineEnd > 2 {
			return nil, fmt.Errorf("%w: part %d", errRecord, i)
		}
	}
	if r.Err != nil {
		return nil, r.Err
	}
	if len(st.Parts) == 0 || len(r.B) != 0 {
		return nil, fmt.Errorf("%w: structure", errRecord)
	}
	return st, nil
}

// putStruct stores the structure record of message id; nil stores
// nothing (the record is filled in on first use).
func (w *txw) putStruct(id uint64, rec []byte) error {
	if rec == nil {
		return nil
	}
	return w.tx.Bucket(bucketStructs).Put(structKey(id), rec)
}

// copyStruct gives message dst (a copy) the structure record of src.
func (w *txw) copyStruct(src, dst uint64) error {
	bk := w.tx.Bucket(bucketStructs)
	v := bk.Get(structKey(src))
	if v == nil {
		return nil
	}
	return bk.Put(structKey(dst), append([]byte(nil), v...))
}

// structure returns the MIME structure of a message from the index,
// scanning the message once if its record is missing.
func (b *mbox) structure(ctx context.Context, folder, name string) (*mailbox.Structure, error) {
	_, m, _, err := b.stat(ctx, folder, name)
	if err != nil {
		return nil, err
	}
	var rec []byte
	if err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStructs).Get(structKey(m.ID)); v != nil {
			rec = append([]byte(nil), v...)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	if rec != nil {
		st, err := decodeStructure(rec)
		if err == nil {
			return st, nil
		}
		b.log.Warn().Err(err).Str("folder", folder).Str("name", name).Msg("structure record unreadable; scanning the message again")
	}
	c, err := b.open(ctx, folder, name)
	if err != nil {
		return nil, err
	}
	_, rec, err = scanMessage(c)
	c.Close()
	if err != nil {
		return nil, fmt.Errorf("maildir: scanning %s: %w", name, err)
	}
	if rec == nil {
		return &mailbox.Structure{Parts: []mailbox.Part{{Parent: -1, ContentType: "text/plain", Encoding: "7bit"}}}, nil
	}
	if err := b.commit(func(w *txw) error { return w.putStruct(m.ID, rec) }); err != nil {
		return nil, err
	}
	b.s.stats.structFills.Add(1)
	return decodeStructure(rec)
}
