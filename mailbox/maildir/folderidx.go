package maildir

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// folder is the in-memory index of one folder.
//
// Its messages live in base, sorted by ID, with their files in bfiles
// (parallel, private). base is what List hands out (resliced to its
// length), so it is never written below its length once handed out: a
// message with a new ID, which is larger than every ID in the mailbox, is
// appended (callers' slices cannot see past their length); every other
// change goes to the overlay over, keyed by ID, and is merged into a new
// base lazily, on the next List or when the overlay grows large. A warm
// List of an unchanged folder is thus O(1) with no allocation, and a
// change costs O(log n), never O(n).
type folder struct {
	fid uint32 // key of the folder's record and message bucket; 0 is the root
	folderRec
	dir string // absolute path of the folder's Maildir directory
	// subdirsOK: cur/, new/ and tmp/ are known to exist (see materialize).
	subdirsOK bool

	base   []mailbox.Message
	bfiles []fileRef
	over   map[uint64]*entry
	// byName maps item names to IDs, for every live message. It mirrors
	// the files on disk: it is bounded by what the user may store (the
	// mail system's quota and the callers' size caps), not by a cap here.
	byName map[string]uint64

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
	return &folder{fid: fid, folderRec: rec, dir: dir, byName: make(map[string]uint64)}
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
	}
}

func (f *folder) touch(ms uint64, t time.Time) {
	f.modseq, f.modified = ms, t
}

// search returns the index of id in base, or -1.
func (f *folder) search(id uint64) int {
	i := sort.Search(len(f.base), func(i int) bool { return f.base[i].ID >= id })
	if i < len(f.base) && f.base[i].ID == id {
		return i
	}
	return -1
}

// get returns the message with id.
func (f *folder) get(id uint64) (mailbox.Message, fileRef, bool) {
	if e := f.over[id]; e != nil {
		if e.gone {
			return mailbox.Message{}, fileRef{}, false
		}
		return e.m, e.f, true
	}
	if i := f.search(id); i >= 0 {
		return f.base[i], f.bfiles[i], true
	}
	return mailbox.Message{}, fileRef{}, false
}

// lookup returns the message named name.
func (f *folder) lookup(name string) (mailbox.Message, fileRef, bool) {
	id, ok := f.byName[name]
	if !ok {
		return mailbox.Message{}, fileRef{}, false
	}
	return f.get(id)
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

// add inserts a message that is not in the folder. m.Folder must be set.
func (f *folder) add(m mailbox.Message, r fileRef) {
	f.byName[m.Name] = m.ID
	f.account(&m, 1)
	if e := f.over[m.ID]; e != nil || (len(f.base) > 0 && m.ID <= f.base[len(f.base)-1].ID) {
		// Back into base's range (a move of an older message): overlay.
		if f.over == nil {
			f.over = make(map[uint64]*entry)
		}
		f.over[m.ID] = &entry{m: m, f: r}
		return
	}
	f.base = append(f.base, m)
	f.bfiles = append(f.bfiles, r)
}

// update replaces a message in the folder with a new version (same ID).
func (f *folder) update(m mailbox.Message, r fileRef) {
	old, _, ok := f.get(m.ID)
	if !ok {
		f.add(m, r)
		return
	}
	f.account(&old, -1)
	f.account(&m, 1)
	if old.Name != m.Name {
		delete(f.byName, old.Name)
		f.byName[m.Name] = m.ID
	}
	if e := f.over[m.ID]; e != nil {
		e.m, e.f = m, r
		return
	}
	if f.over == nil {
		f.over = make(map[uint64]*entry)
	}
	f.over[m.ID] = &entry{m: m, f: r}
}

// setFile records that a message's file was renamed without any change
// visible in the Message (new/ to cur/, or info letters that map to
// nothing). base is not handed out below its length, but bfiles never
// is, so this needs no overlay entry.
func (f *folder) setFile(id uint64, r fileRef) {
	if e := f.over[id]; e != nil {
		if !e.gone {
			e.f = r
		}
		return
	}
	if i := f.search(id); i >= 0 {
		f.bfiles[i] = r
	}
}

// remove takes a message out of the folder.
func (f *folder) remove(id uint64) {
	m, _, ok := f.get(id)
	if !ok {
		return
	}
	delete(f.byName, m.Name)
	f.account(&m, -1)
	if f.search(id) >= 0 {
		if f.over == nil {
			f.over = make(map[uint64]*entry)
		}
		f.over[id] = &entry{gone: true}
		return
	}
	delete(f.over, id)
}

// each calls fn for every live message, in no particular order, until fn
// returns false. fn must not change the folder.
func (f *folder) each(fn func(m *mailbox.Message, r fileRef) bool) {
	for i := range f.base {
		if f.over != nil && f.over[f.base[i].ID] != nil {
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

// list returns the messages sorted by ID. The slice is shared: callers
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
	for id, e := range f.over {
		if !e.gone && f.search(id) < 0 {
			extra = append(extra, e)
		}
	}
	slices.SortFunc(extra, func(a, b *entry) int { return cmp.Compare(a.m.ID, b.m.ID) })
	j := 0
	for i := range f.base {
		id := f.base[i].ID
		for j < len(extra) && extra[j].m.ID < id {
			nb, nf = append(nb, extra[j].m), append(nf, extra[j].f)
			j++
		}
		if e := f.over[id]; e != nil {
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
