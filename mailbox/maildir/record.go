package maildir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/davmail/davmail/mailbox"

	"github.com/davmail/davmail/mailbox/internal/binrec"
)

// Records are encoded by hand: a version byte, fixed fields as varints,
// then the lengths of the strings followed by their bytes. Decoding a
// message record costs one allocation (all its strings share one backing
// string), which keeps loading 100,000 messages in the tens of
// milliseconds and the in-memory index compact; encoding/gob would
// allocate per field and carry type information per record.

// Encoding versions of the records, their first byte. A message or
// folder record with another version is treated as undecodable: its
// folder is rescanned, which rebuilds it. Version 1 of message and folder
// records (index schema 1) had no UIDs; migrate converts them.
const (
	msgVersion    = 2 // version 1 had no ID field (the ID was the key)
	folderVersion = 2 // version 1 had no UIDNext
	metaVersion   = 1
)

// Bits of the message record's bits byte.
const (
	recInNew       = 1 << 0 // the file is in new/
	recAttachments = 1 << 1 // Envelope.HasAttachments
	recDeadProps   = 1 << 2 // HasDeadProps
	recEnvDate     = 1 << 3 // Envelope.Date is set
)

// numMsgStrings is the number of strings in a message record: file name,
// item name, subject, from, to, cc, message-id, content-type.
const numMsgStrings = 8

var errRecord = errors.New("maildir: malformed index record")

// fileRef locates a message file: its name in cur/ or new/. The base is
// a prefix of the name.
type fileRef struct {
	name    string
	baseLen uint16 // file names are at most nameMax bytes
	inNew   bool
}

func newFileRef(name string, inNew bool) (fileRef, bool) {
	base, _, ok := parseName(name)
	if !ok {
		return fileRef{}, false
	}
	return fileRef{name: name, baseLen: uint16(len(base)), inNew: inNew}, true
}

func (r fileRef) base() string { return r.name[:r.baseLen] }

// info returns the letters after ":2,", "" when there are none.
func (r fileRef) info() string {
	rest := r.name[r.baseLen:]
	if strings.HasPrefix(rest, infoSep) {
		return rest[len(infoSep):]
	}
	return ""
}

func (r fileRef) sub() string {
	if r.inNew {
		return "new"
	}
	return "cur"
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// encodeMsg appends the record of m, stored in file r, to b. The UID is
// not in the record: it is the record's key.
func encodeMsg(b []byte, m *mailbox.Message, r fileRef) []byte {
	var bits byte
	if r.inNew {
		bits |= recInNew
	}
	if m.Envelope.HasAttachments {
		bits |= recAttachments
	}
	if m.HasDeadProps {
		bits |= recDeadProps
	}
	if !m.Envelope.Date.IsZero() {
		bits |= recEnvDate
	}
	b = append(b, msgVersion, bits, byte(m.Flags))
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = appendTime(b, m.InternalDate)
	b = appendTime(b, m.Modified)
	b = binary.AppendUvarint(b, m.Modseq)
	if bits&recEnvDate != 0 {
		b = appendTime(b, m.Envelope.Date)
	}
	e := &m.Envelope
	strs := [numMsgStrings]string{r.name, m.Name, e.Subject, e.From, e.To, e.Cc, e.MessageID, e.ContentType}
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	for _, s := range strs {
		b = append(b, s...)
	}
	return b
}

// reader decodes a record, remembering the first error (errRecord).
type reader struct{ binrec.Reader }

func newReader(b []byte) reader { return reader{binrec.New(b, errRecord)} }

func (r *reader) time() time.Time {
	sec, nsec := r.Varint(), r.Uvarint()
	if nsec >= 1e9 {
		r.Err = errRecord
		return time.Time{}
	}
	if sec == zeroUnix && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// zeroUnix is time.Time{}.Unix(), so that a zero time survives a round
// trip as a zero time.
var zeroUnix = time.Time{}.Unix()

// decodeMsg decodes a message record. uid and folder are not in the
// record (they are its key and bucket).
func decodeMsg(b []byte, uid uint32, folder string) (mailbox.Message, fileRef, error) {
	r := newReader(b)
	if r.Byte() != msgVersion {
		return mailbox.Message{}, fileRef{}, errRecord
	}
	bits := r.Byte()
	m := mailbox.Message{UID: uid, Folder: folder}
	m.Flags = mailbox.Flags(r.Byte()) & allFlags
	m.ID = r.Uvarint()
	size := r.Uvarint()
	m.InternalDate = r.time()
	m.Modified = r.time()
	m.Modseq = r.Uvarint()
	if bits&recEnvDate != 0 {
		m.Envelope.Date = r.time()
	}
	var lens [numMsgStrings]uint64
	var total uint64
	for i := range lens {
		lens[i] = r.Uvarint()
		total += lens[i]
		if lens[i] > uint64(len(b)) {
			r.Err = errRecord
		}
	}
	if r.Err != nil || m.ID == 0 || size > math.MaxInt64 || total != uint64(len(r.B)) {
		return mailbox.Message{}, fileRef{}, errRecord
	}
	m.Size = int64(size)
	all := string(r.B) // one allocation for every string of the record
	var strs [numMsgStrings]string
	off := uint64(0)
	for i, l := range lens {
		strs[i] = all[off : off+l]
		off += l
	}
	ref, ok := newFileRef(strs[0], bits&recInNew != 0)
	if !ok || strs[1] == "" {
		return mailbox.Message{}, fileRef{}, errRecord
	}
	m.Name = strs[1]
	m.Envelope.Subject, m.Envelope.From, m.Envelope.To, m.Envelope.Cc = strs[2], strs[3], strs[4], strs[5]
	m.Envelope.MessageID, m.Envelope.ContentType = strs[6], strs[7]
	m.Envelope.HasAttachments = bits&recAttachments != 0
	m.HasDeadProps = bits&recDeadProps != 0
	return m, ref, nil
}

// recordID returns the message ID of a message record whose rest may
// not decode, so that the dead properties of an unreadable record can
// still be removed; 0 when even that is unreadable.
func recordID(b []byte) uint64 {
	r := newReader(b)
	if r.Byte() != msgVersion {
		return 0
	}
	r.Byte()
	r.Byte()
	id := r.Uvarint()
	if r.Err != nil {
		return 0
	}
	return id
}

// folderRec is the persistent state of one folder.
type folderRec struct {
	path        string
	onDisk      bool // the folder has a directory (else it is an implicit parent)
	hasProps    bool
	uidValidity uint32
	uidNext     uint32 // the UID of the next message entering the folder
	modseq      uint64
	modified    time.Time
	// Directory mtimes (Unix ns) of cur/ and new/ at the last complete
	// scan, and the wall clock (Unix ns) just before that scan started;
	// scanned is 0 when the folder was never scanned.
	curMtime, newMtime, scanned int64
	// count is the number of messages when the record was written: a
	// hint to size the folder's slices when loading.
	count uint64
}

const (
	frOnDisk   = 1 << 0
	frHasProps = 1 << 1
)

func encodeFolder(b []byte, f *folderRec) []byte {
	var bits byte
	if f.onDisk {
		bits |= frOnDisk
	}
	if f.hasProps {
		bits |= frHasProps
	}
	b = append(b, folderVersion, bits)
	b = binary.AppendUvarint(b, uint64(f.uidValidity))
	b = binary.AppendUvarint(b, uint64(f.uidNext))
	b = binary.AppendUvarint(b, f.modseq)
	b = appendTime(b, f.modified)
	b = binary.AppendVarint(b, f.curMtime)
	b = binary.AppendVarint(b, f.newMtime)
	b = binary.AppendVarint(b, f.scanned)
	b = binary.AppendUvarint(b, f.count)
	b = binary.AppendUvarint(b, uint64(len(f.path)))
	return append(b, f.path...)
}

func decodeFolder(b []byte) (folderRec, error) { return decodeFolderVersion(b, folderVersion) }

// decodeFolderVersion decodes a folder record of version ver: the
// current one, or 1 for a migration (with uidNext 0).
func decodeFolderVersion(b []byte, ver byte) (folderRec, error) {
	r := newReader(b)
	var f folderRec
	if r.Byte() != ver {
		return f, errRecord
	}
	bits := r.Byte()
	f.onDisk = bits&frOnDisk != 0
	f.hasProps = bits&frHasProps != 0
	uv := r.Uvarint()
	var un uint64
	if ver >= 2 {
		un = r.Uvarint()
	}
	f.modseq = r.Uvarint()
	f.modified = r.time()
	f.curMtime = r.Varint()
	f.newMtime = r.Varint()
	f.scanned = r.Varint()
	f.count = r.Uvarint()
	n := r.Uvarint()
	if r.Err != nil || uv > math.MaxUint32 || un > math.MaxUint32 || n != uint64(len(r.B)) {
		return folderRec{}, errRecord
	}
	f.uidValidity, f.uidNext = uint32(uv), uint32(un)
	f.path = string(r.B)
	return f, nil
}

// encodeProps encodes dead properties: a count, then per property its
// four strings, each length-prefixed.
func encodeProps(b []byte, props []mailbox.Prop) []byte {
	b = binary.AppendUvarint(b, uint64(len(props)))
	for _, p := range props {
		for _, s := range [...]string{p.Space, p.Local, p.XML, p.Lang} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

func decodeProps(b []byte) ([]mailbox.Prop, error) {
	r := newReader(b)
	n := r.Uvarint()
	if r.Err != nil || n > mailbox.MaxDeadProps {
		return nil, fmt.Errorf("%w: dead properties", errRecord)
	}
	props := make([]mailbox.Prop, 0, n)
	for range n {
		var s [4]string
		for i := range s {
			l := r.Uvarint()
			if r.Err != nil || l > uint64(len(r.B)) {
				return nil, fmt.Errorf("%w: dead properties", errRecord)
			}
			s[i] = string(r.B[:l])
			r.B = r.B[l:]
		}
		props = append(props, mailbox.Prop{Space: s[0], Local: s[1], XML: s[2], Lang: s[3]})
	}
	if len(r.B) != 0 {
		return nil, fmt.Errorf("%w: dead properties", errRecord)
	}
	return props, nil
}

// allFlags is every flag bit mailbox defines; other bits are dropped.
const allFlags = mailbox.FlagDraft | mailbox.FlagFlagged | mailbox.FlagPassed |
	mailbox.FlagAnswered | mailbox.FlagSeen | mailbox.FlagDeleted
