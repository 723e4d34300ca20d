package imap

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"

	"github.com/davmail/davmail/mailbox/internal/binrec"
)

// Message records (the msgs bucket, one per message) are encoded by
// hand: a version byte, a bits byte, the flags, fixed fields as varints,
// then the lengths of the strings followed by their bytes. A cold listing
// writes one per message (100,000 for a big folder) and opening a mailbox
// decodes them all, so the encoding is on the hot path: encoding/json
// took about a fifth of a cold listing's CPU and allocated per field,
// while decoding a record here costs one allocation (its strings share
// one backing string). The other records (meta, folders, dead properties,
// structures) are few or written rarely and stay JSON.

// msgRecVersion is the first byte of a message record.
const msgRecVersion = 1

// Bits of the message record's bits byte.
const (
	recAttachments = 1 << 0 // Envelope.HasAttachments
	recEnvDate     = 1 << 1 // Envelope.Date is set
)

// fixedMsgStrings is the number of strings of a message record before
// its keywords: name, subject, from, to, cc, message-id, content-type.
const fixedMsgStrings = 7

// maxKeywords bounds the keyword count a record may claim, so that a
// corrupt count cannot allocate much: far above what IMAP servers allow
// per mailbox (Dovecot: 26 in Maildir file names, a few hundred in
// dbox).
const maxKeywords = 4096

// errRecord reports an index record that does not decode.
var errRecord = errors.New("imap: malformed index record")

// zeroUnix is time.Time{}.Unix(), so that a zero time survives a round
// trip as a zero time.
var zeroUnix = time.Time{}.Unix()

// appendTime encodes t with its zone offset (as the JSON records of
// schema 1 kept it): seconds, nanoseconds, offset in seconds.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		b = binary.AppendVarint(b, zeroUnix)
		return append(b, 0, 0)
	}
	_, off := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	return binary.AppendVarint(b, int64(off))
}

// encodeMsg appends the record of m to b. The folder and UID are not in
// the record (they are its key); HasDeadProps is derived from the props
// bucket when loading.
func encodeMsg(b []byte, m *mailbox.Message) []byte {
	e := &m.Envelope
	var bits byte
	if e.HasAttachments {
		bits |= recAttachments
	}
	if !e.Date.IsZero() {
		bits |= recEnvDate
	}
	b = append(b, msgRecVersion, bits, byte(m.Flags))
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = appendTime(b, m.InternalDate)
	b = appendTime(b, m.Modified)
	b = binary.AppendUvarint(b, m.Modseq)
	if bits&recEnvDate != 0 {
		b = appendTime(b, e.Date)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Keywords)))
	strs := [fixedMsgStrings]string{m.Name, e.Subject, e.From, e.To, e.Cc, e.MessageID, e.ContentType}
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	for _, k := range m.Keywords {
		b = binary.AppendUvarint(b, uint64(len(k)))
	}
	for _, s := range strs {
		b = append(b, s...)
	}
	for _, k := range m.Keywords {
		b = append(b, k...)
	}
	return b
}

// recArena holds the keys and values of the records one transaction
// writes: bbolt keeps the slices given to Put until the commit, so each
// needs bytes of its own, and one growing buffer gives them that without
// an allocation per record (a slice handed out keeps pointing into the
// array it was made in when a later append moves on to a bigger one).
type recArena struct{ buf []byte }

// putMsg writes m's record.
func (a *recArena) putMsg(b *bolt.Bucket, m *mailbox.Message) error {
	start := len(a.buf)
	a.buf = appendMsgKey(a.buf, m.Folder, m.UID)
	k := a.buf[start:len(a.buf):len(a.buf)]
	start = len(a.buf)
	a.buf = encodeMsg(a.buf, m)
	return b.Put(k, a.buf[start:len(a.buf):len(a.buf)])
}

// recReader decodes the fixed part of a record, remembering the first
// error.
type recReader struct {
	binrec.Reader
	// zones caches the fixed zones of decoded times, so that loading
	// 100,000 records makes one *time.Location per offset, not per time.
	zones map[int64]*time.Location
}

// maxZoneOffset bounds a decoded zone offset: real ones are within
// ±14 hours; a day is generous.
const maxZoneOffset = 24 * 3600

func (r *recReader) time() time.Time {
	sec, nsec, off := r.Varint(), r.Uvarint(), r.Varint()
	if r.Err != nil || nsec >= 1e9 || off > maxZoneOffset || off < -maxZoneOffset {
		r.Err = errRecord
		return time.Time{}
	}
	if sec == zeroUnix && nsec == 0 {
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	loc := r.zones[off]
	if loc == nil {
		loc = time.FixedZone("", int(off))
		if r.zones == nil {
			r.zones = map[int64]*time.Location{}
		}
		r.zones[off] = loc
	}
	return t.In(loc)
}

// decodeMsg decodes the message record b of uid in folder. zr carries
// the zone cache between calls (its b and err are reset).
func decodeMsg(zr *recReader, b []byte, uid uint32, folder string) (mailbox.Message, error) {
	r := zr
	r.Reader = binrec.New(b, errRecord)
	if r.Byte() != msgRecVersion {
		return mailbox.Message{}, errRecord
	}
	bits := r.Byte()
	m := mailbox.Message{UID: uid, Folder: folder}
	m.Flags = mailbox.Flags(r.Byte())
	m.ID = r.Uvarint()
	size := r.Uvarint()
	m.InternalDate = r.time()
	m.Modified = r.time()
	m.Modseq = r.Uvarint()
	if bits&recEnvDate != 0 {
		m.Envelope.Date = r.time()
	}
	nkw := r.Uvarint()
	if r.Err != nil || nkw > maxKeywords || m.ID == 0 || size > math.MaxInt64 {
		return mailbox.Message{}, errRecord
	}
	var fixed [fixedMsgStrings]uint64
	kwLens := make([]uint64, nkw)
	var total uint64
	for i := range fixed {
		fixed[i] = r.Uvarint()
		total += fixed[i]
	}
	for i := range kwLens {
		kwLens[i] = r.Uvarint()
		total += kwLens[i]
	}
	if r.Err != nil || total != uint64(len(r.B)) {
		return mailbox.Message{}, errRecord
	}
	m.Size = int64(size)
	all := string(r.B) // one allocation for every string of the record
	off := uint64(0)
	next := func(l uint64) string {
		s := all[off : off+l]
		off += l
		return s
	}
	e := &m.Envelope
	m.Name = next(fixed[0])
	e.Subject, e.From, e.To, e.Cc = next(fixed[1]), next(fixed[2]), next(fixed[3]), next(fixed[4])
	e.MessageID, e.ContentType = next(fixed[5]), next(fixed[6])
	if nkw > 0 {
		m.Keywords = make([]string, nkw)
		for i, l := range kwLens {
			m.Keywords[i] = next(l)
		}
	}
	e.HasAttachments = bits&recAttachments != 0
	if m.Name == "" {
		return mailbox.Message{}, errRecord
	}
	return m, nil
}
