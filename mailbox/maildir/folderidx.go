package maildir

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// folder is the in-memory index of one folder.
//
// Its messages live in base, sorted by UID, with their files in bfiles
// (parallel, private). base is what List hands out (resliced to its
// length), so it is never written below its length once handed out: a
// message entering the folder gets a UID larger than every UID the folder
// ever had, so it is appended (callers' slices cannot see past their
// length); every other change goes to the overlay over, keyed by UID,
// and is merged into a new base lazily, on the next List or when the
// overlay grows large. A warm List of an unchanged folder is thus O(1)
// with no allocation, and a change costs O(log n), never O(n).
type folder struct {
	fid uint32 // key of the folder's record and message bucket; 0 is the root
	folderRec
	dir string // absolute path of the folder's Maildir directory
	// subdirsOK: cur/, new/ and tmp/ are known to exist (see materialize).
	subdirsOK bool

	base   []mailbox.Message
	bfiles []fileRef
	over   map[uint32]*entry
	// byName maps item names to UIDs and byID message IDs to UIDs, for
	// every live message. They mirror the files on disk: they are
	// bounded by what the user may store (the mail system's quota and the
	// callers' size caps), not by a cap here.
	byName map[string]uint32
	byID   map[uint64]uint32

	unseen int
	size   int64
}

// entry is an overlay entry: a message changed or added since base was
// built, or a tombstone for one removed from base.
type entry struct {
	m    mailbox.Message
	f    fileRef
	gone bool
}

// compactAt is the overlay size from which a change merges the overlay
// into base right away instead of waiting for the next List: 4096 entries
// bound the overlay's memory while keeping the O(n) merge rare (at most
// once per n/4 changes, see maybeCompact).
const compactAt = 4096

func newFolder(fid uint32, rec folderRec, dir string) *folder {
	if rec.uidNext == 0 {
		rec.uidNext = 1 // RFC 3501 §2.3.1.1: UIDs are non-zero
	}
	return &folder{fid: fid, folderRec: rec, dir: dir, byName: make(map[string]uint32), byID: make(map[uint64]uint32)}
}

func (f *folder) count() int { return len(f.byName) }

// info describes the folder.
func (f *folder) info() mailbox.Folder {
	return mailbox.Folder{
		Path:        f.path,
		SpecialUse:  specialUse(f.path),
		Messages:    f.count(),
		Unseen:      f.unseen,
		Size:        f.size,
		Modseq:      f.modseq,
		Modified:    f.modified,
		UIDValidity: f.uidValidity,
		UIDNext:     f.uidNext,
	}
}

func (f *folder) touch(ms uint64, t time.Time) {
	f.modseq, f.modified = ms, t
}

// search returns the index of uid in base, or -1.
func (f *folder) search(uid uint32) int {
	i, ok := slices.BinarySearchFunc(f.base, uid, func(m mailbox.Message, uid uint32) int { return cmp.Compare(m.UID, uid) })
	if !ok {
		return -1
	}
	return i
}

// get returns the message with uid.
func (f *folder) get(uid uint32) (mailbox.Message, fileRef, bool) {
	if e := f.over[uid]; e != nil {
		if e.gone {
			return mailbox.Message{}, fileRef{}, false
		}
		return e.m, e.f, true
	}
	if i := f.search(uid); i >= 0 {
		return f.base[i], f.bfiles[i], true
	}
	return mailbox.Message{}, fileRef{}, false
}

// getID returns the message with the message ID id.
func (f *folder) getID(id uint64) (mailbox.Message, fileRef, bool) {
	uid, ok := f.byID[id]
	if !ok {
		return mailbox.Message{}, fileRef{}, false
	}
	return f.get(uid)
}

// lookup returns the message named name.
func (f *folder) lookup(name string) (mailbox.Message, fileRef, bool) {
	uid, ok := f.byName[name]
	if !ok {
		return mailbox.Message{}, fileRef{}, false
	}
	return f.get(uid)
}

func (f *folder) taken(name string) bool {
	_, ok := f.byName[name]
	return ok
}

func (f *folder) account(m *mailbox.Message, sign int) {
	f.size += int64(sign) * m.Size
	if m.Flags&mailbox.FlagSeen == 0 {
		f.unseen += sign
	}
}

// takeUID returns the UID for a message entering the folder and
// advances uidNext. The caller has made sure there is room (see
// mbox.ensureUIDs and uidsLeft).
func (f *folder) takeUID() uint32 {
	uid := f.uidNext
	f.uidNext++
	return uid
}

// uidsLeft returns how many more UIDs the folder can hand out before
// it must be renumbered: UIDNext must stay a uint32 above every UID.
func (f *folder) uidsLeft() uint64 { return math.MaxUint32 - uint64(f.uidNext) }

// add inserts a message that is not in the folder. m.Folder and m.UID
// must be set.
func (f *folder) add(m mailbox.Message, r fileRef) {
	f.byName[m.Name] = m.UID
	f.byID[m.ID] = m.UID
	f.account(&m, 1)
	if e := f.over[m.UID]; e != nil || (len(f.base) > 0 && m.UID <= f.base[len(f.base)-1].UID) {
		// Back into base's range (the same UID after a remove: a rename
		// in place): overlay.
		if f.over == nil {
			f.over = make(map[uint32]*entry)
		}
		f.over[m.UID] = &entry{m: m, f: r}
		return
	}
	f.base = append(f.base, m)
	f.bfiles = append(f.bfiles, r)
}

// update replaces a message in the folder with a new version (same UID
// and ID).
func (f *folder) update(m mailbox.Message, r fileRef) {
	old, _, ok := f.get(m.UID)
	if !ok {
		f.add(m, r)
		return
	}
	f.account(&old, -1)
	f.account(&m, 1)
	if old.Name != m.Name {
		delete(f.byName, old.Name)
		f.byName[m.Name] = m.UID
	}
	if e := f.over[m.UID]; e != nil {
		e.m, e.f = m, r
		return
	}
	if f.over == nil {
		f.over = make(map[uint32]*entry)
	}
	f.over[m.UID] = &entry{m: m, f: r}
}

// setFile records that a message's file was renamed without any change
// visible in the Message (new/ to cur/, or info letters that map to
// nothing). base is not handed out below its length, but bfiles never
// is, so this needs no overlay entry.
func (f *folder) setFile(uid uint32, r fileRef) {
	if e := f.over[uid]; e != nil {
		if !e.gone {
			e.f = r
		}
		return
	}
	if i := f.search(uid); i >= 0 {
		f.bfiles[i] = r
	}
}

// remove takes a message out of the folder.
func (f *folder) remove(uid uint32) {
	m, _, ok := f.get(uid)
	if !ok {
		return
	}
	delete(f.byName, m.Name)
	delete(f.byID, m.ID)
	f.account(&m, -1)
	if f.search(uid) >= 0 {
		if f.over == nil {
			f.over = make(map[uint32]*entry)
		}
		f.over[uid] = &entry{gone: true}
		return
	}
	delete(f.over, uid)
}

// each calls fn for every live message, in no particular order, until fn
// returns false. fn must not change the folder.
func (f *folder) each(fn func(m *mailbox.Message, r fileRef) bool) {
	for i := range f.base {
		if f.over != nil && f.over[f.base[i].UID] != nil {
			continue
		}
		if !fn(&f.base[i], f.bfiles[i]) {
			return
		}
	}
	for _, e := range f.over {
		if !e.gone && !fn(&e.m, e.f) {
			return
		}
	}
}

// list returns the messages sorted by UID. The slice is shared: callers
// must not modify it.
func (f *folder) list() []mailbox.Message {
	if len(f.over) > 0 {
		f.compact()
	}
	return f.base[:len(f.base):len(f.base)]
}

// maybeCompact merges the overlay when it is large both absolutely and
// relative to base, so that its memory stays bounded and the O(n) merge
// costs O(1) amortized per change.
func (f *folder) maybeCompact() {
	if len(f.over) >= compactAt && len(f.over) >= len(f.base)/4 {
		f.compact()
	}
}

// compact builds a new base from base and the overlay.
func (f *folder) compact() {
	n := f.count()
	nb := make([]mailbox.Message, 0, n)
	nf := make([]fileRef, 0, n)
	var extra []*entry
	for uid, e := range f.over {
		if !e.gone && f.search(uid) < 0 {
			extra = append(extra, e)
		}
	}
	slices.SortFunc(extra, func(a, b *entry) int { return cmp.Compare(a.m.UID, b.m.UID) })
	j := 0
	for i := range f.base {
		uid := f.base[i].UID
		for j < len(extra) && extra[j].m.UID < uid {
			nb, nf = append(nb, extra[j].m), append(nf, extra[j].f)
			j++
		}
		if e := f.over[uid]; e != nil {
			if !e.gone {
				nb, nf = append(nb, e.m), append(nf, e.f)
			}
			continue
		}
		nb, nf = append(nb, f.base[i]), append(nf, f.bfiles[i])
	}
	for ; j < len(extra); j++ {
		nb, nf = append(nb, extra[j].m), append(nf, extra[j].f)
	}
	f.base, f.bfiles, f.over = nb, nf, nil
}

// renumber gives the messages the UIDs 1…n in their current order and
// sets uidNext to n+1; the caller gives the folder a new UIDVALIDITY and
// rewrites its records.
func (f *folder) renumber() {
	f.compact() // always builds new slices: the old base may be handed out
	for i := range f.base {
		m := &f.base[i]
		m.UID = uint32(i + 1)
		f.byName[m.Name] = m.UID
		f.byID[m.ID] = m.UID
	}
	f.uidNext = uint32(len(f.base) + 1)
}

// setPath renames the folder in memory: every message's Folder changes.
// This rewrites base, O(n), as a rename of a folder is rare; the
// messages' modseqs stay (the contract lets them), so their index
// records, which do not hold the folder path, need no rewrite.
func (f *folder) setPath(path, dir string) {
	f.compact()
	nb := make([]mailbox.Message, len(f.base))
	for i, m := range f.base {
		m.Folder = path
		nb[i] = m
	}
	f.base = nb
	f.path, f.dir = path, dir
}
