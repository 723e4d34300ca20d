package memstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// maxPathLen caps a folder path in bytes. The Maildir++ backend keeps the
// whole path in one directory name (NAME_MAX, 255 bytes on common file
// systems), so no portable mailbox has longer paths; 1024 leaves room for
// long non-ASCII names while bounding memory and sort cost.
const maxPathLen = 1024

// mbox is one user's mailbox. mu guards everything below it.
type mbox struct {
	s    *Store
	user string

	mu              sync.RWMutex
	folders         map[string]*folder // by path; "" is the root. Capped by Options.MaxFolders.
	byID            map[uint64]*message
	lastID          uint64 // IDs are lastID+1, never reused
	modseq          uint64 // the one Modseq counter of the mailbox
	lastUIDValidity uint32
}

// folder is one folder of a mailbox.
type folder struct {
	path        string
	specialUse  string
	msgs        map[string]*message // by name. Capped (per mailbox) by Options.MaxMessages.
	unseen      int
	size        int64
	modseq      uint64
	modified    time.Time
	uidValidity uint32
	// uidNext is the UID of the next message entering the folder; UIDs
	// below it are never handed out again under this uidValidity.
	uidNext uint32
	byUID   map[uint32]*message // every message by UID, for StatUID
	props   []mailbox.Prop      // sorted by (Space, Local)

	// list is the List snapshot, rebuilt on demand after a change. Once
	// handed out it is never written again, so callers may keep it.
	list []mailbox.Message
}

// message is one stored message. data is immutable once stored.
type message struct {
	m     mailbox.Message
	data  []byte
	props []mailbox.Prop // sorted by (Space, Local)
	st    *mailbox.Structure
}

var _ mailbox.Mailbox = (*mbox)(nil)

func newMbox(s *Store, user string) *mbox {
	mb := &mbox{
		s:       s,
		user:    user,
		folders: make(map[string]*folder),
		byID:    make(map[uint64]*message),
		// UIDVALIDITY (RFC 9051 §2.3.1.1) must not repeat for a folder
		// name, and this store forgets everything on restart: starting
		// from the clock keeps values of successive runs apart.
		lastUIDValidity: uint32(time.Now().Unix()),
	}
	ms, t := mb.bump()
	mb.folders[""] = mb.newFolder("", ms, t)
	mb.folders[mailbox.Inbox] = mb.newFolder(mailbox.Inbox, ms, t)
	return mb
}

// bump takes the next Modseq value and the time of the change. Every
// change takes exactly one value and gives it to everything it touches.
func (mb *mbox) bump() (uint64, time.Time) {
	mb.modseq++
	return mb.modseq, time.Now()
}

func (mb *mbox) newFolder(path string, ms uint64, t time.Time) *folder {
	return &folder{
		path:        path,
		specialUse:  specialUse(path),
		msgs:        make(map[string]*message),
		byUID:       make(map[uint32]*message),
		modseq:      ms,
		modified:    t,
		uidValidity: mb.newUIDValidity(),
		uidNext:     1, // RFC 3501 §2.3.1.1: UIDs are non-zero
	}
}

// newUIDValidity returns a UIDVALIDITY not used before in this mailbox.
func (mb *mbox) newUIDValidity() uint32 {
	mb.lastUIDValidity++
	if mb.lastUIDValidity == 0 { // 0 is not a valid UIDVALIDITY
		mb.lastUIDValidity++
	}
	return mb.lastUIDValidity
}

// takeUID returns the UID for a message entering f and advances
// f.uidNext. When the UIDs of f are used up (uidNext cannot grow past
// the largest uint32), the folder is renumbered first.
func (mb *mbox) takeUID(f *folder) uint32 {
	if f.uidNext == math.MaxUint32 {
		mb.renumber(f)
	}
	uid := f.uidNext
	f.uidNext++
	return uid
}

// renumber gives the messages of f the UIDs 1…n in their current order
// under a new UIDVALIDITY, as RFC 3501 §2.3.1.1 requires when UIDs
// cannot go on ascending. It happens after four billion arrivals in one
// folder at the earliest.
func (mb *mbox) renumber(f *folder) {
	all := make([]*message, 0, len(f.msgs))
	for _, m := range f.msgs {
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b *message) int { return cmp.Compare(a.m.UID, b.m.UID) })
	clear(f.byUID)
	for i, m := range all {
		m.m.UID = uint32(i + 1)
		f.byUID[m.m.UID] = m
	}
	f.uidNext = uint32(len(all) + 1)
	f.uidValidity = mb.newUIDValidity()
	f.list = nil
}

// specialUse returns the RFC 6154 attribute that Dovecot's default
// configuration (conf.d/15-mailboxes.conf) gives to a top-level folder by
// name, plus \Archive for "Archive", which mkcorpus and most clients use.
func specialUse(path string) string {
	switch path {
	case "Drafts":
		return `\Drafts`
	case "Junk":
		return `\Junk`
	case "Trash":
		return `\Trash`
	case "Sent", "Sent Messages":
		return `\Sent`
	case "Archive":
		return `\Archive`
	}
	return ""
}

// touch records a change of f (its membership, counts, props or its own
// path) at modseq ms.
func (f *folder) touch(ms uint64, t time.Time) {
	f.modseq, f.modified = ms, t
	f.list = nil
}

func (f *folder) info() mailbox.Folder {
	return mailbox.Folder{
		Path:        f.path,
		SpecialUse:  f.specialUse,
		Messages:    len(f.msgs),
		Unseen:      f.unseen,
		Size:        f.size,
		Modseq:      f.modseq,
		Modified:    f.modified,
		UIDValidity: f.uidValidity,
		UIDNext:     f.uidNext,
	}
}

// add puts m into f and the ID and UID indexes, keeping the counts.
// m.m.UID must be set (takeUID for a message entering f).
func (mb *mbox) add(f *folder, m *message) {
	m.m.Folder = f.path
	f.msgs[m.m.Name] = m
	f.byUID[m.m.UID] = m
	f.size += m.m.Size
	if m.m.Flags&mailbox.FlagSeen == 0 {
		f.unseen++
	}
	mb.byID[m.m.ID] = m
	f.list = nil
}

// remove takes m out of f and the ID index, keeping the counts. The
// caller releases the bytes if the message is gone for good.
func (mb *mbox) remove(f *folder, m *message) {
	delete(f.msgs, m.m.Name)
	delete(f.byUID, m.m.UID)
	f.size -= m.m.Size
	if m.m.Flags&mailbox.FlagSeen == 0 {
		f.unseen--
	}
	delete(mb.byID, m.m.ID)
	f.list = nil
}

// validPath reports whether p is a non-root folder path this store can
// hold.
func validPath(p string) bool {
	if p == "" || len(p) > maxPathLen {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if !mailbox.ValidSegment(seg) {
			return false
		}
	}
	return true
}

func errFolder(path string, err error) error {
	return fmt.Errorf("memstore: folder %q: %w", path, err)
}

// folder returns the folder at path; the caller holds mu.
func (mb *mbox) folder(path string) (*folder, error) {
	if f := mb.folders[path]; f != nil {
		return f, nil
	}
	return nil, errFolder(path, mailbox.ErrNotFound)
}

// inboxFirst orders folder paths: the INBOX subtree first, then the rest,
// each in byte order of the path.
func inboxFirst(a, b string) int {
	ia := a == mailbox.Inbox || mailbox.IsDescendant(a, mailbox.Inbox)
	ib := b == mailbox.Inbox || mailbox.IsDescendant(b, mailbox.Inbox)
	if ia != ib {
		if ia {
			return -1
		}
		return 1
	}
	return cmp.Compare(a, b)
}

func (mb *mbox) Folders(ctx context.Context) ([]mailbox.Folder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	out := make([]mailbox.Folder, 0, len(mb.folders)-1)
	for p, f := range mb.folders {
		if p != "" {
			out = append(out, f.info())
		}
	}
	slices.SortFunc(out, func(a, b mailbox.Folder) int { return inboxFirst(a.Path, b.Path) })
	return out, nil
}

func (mb *mbox) Folder(ctx context.Context, path string) (mailbox.Folder, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Folder{}, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	f, err := mb.folder(path)
	if err != nil {
		return mailbox.Folder{}, err
	}
	return f.info(), nil
}

func (mb *mbox) CreateFolder(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if path == "" {
		return errFolder(path, mailbox.ErrExists) // the root always exists
	}
	if !validPath(path) {
		return errFolder(path, mailbox.ErrInvalidName)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.folders[path] != nil {
		return errFolder(path, mailbox.ErrExists)
	}
	parent := mb.folders[mailbox.Parent(path)]
	if parent == nil {
		return errFolder(path, mailbox.ErrNoParent)
	}
	if max := mb.s.opts.MaxFolders; max >= 0 && len(mb.folders)-1 >= max {
		return full("memstore-max-folders", int64(max), int64(len(mb.folders)), "folders")
	}
	ms, t := mb.bump()
	mb.folders[path] = mb.newFolder(path, ms, t)
	parent.touch(ms, t)
	return nil
}

// subtree returns path and the paths of all its descendants; the caller
// holds mu.
func (mb *mbox) subtree(path string) []string {
	var out []string
	for p := range mb.folders {
		if p == path || mailbox.IsDescendant(p, path) {
			out = append(out, p)
		}
	}
	return out
}

func (mb *mbox) RenameFolder(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range [...]string{from, to} {
		if p == "" || p == mailbox.Inbox {
			return errFolder(p, mailbox.ErrForbidden)
		}
	}
	if !validPath(from) {
		return errFolder(from, mailbox.ErrNotFound)
	}
	if !validPath(to) {
		return errFolder(to, mailbox.ErrInvalidName)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.folders[from] == nil {
		return errFolder(from, mailbox.ErrNotFound)
	}
	if mailbox.IsDescendant(to, from) {
		return fmt.Errorf("memstore: cannot move folder %q into itself (%q): %w", from, to, mailbox.ErrInvalidName)
	}
	if mb.folders[to] != nil {
		return errFolder(to, mailbox.ErrExists)
	}
	newParent := mb.folders[mailbox.Parent(to)]
	if newParent == nil {
		return errFolder(to, mailbox.ErrNoParent)
	}
	moved := mb.subtree(from)
	for _, p := range moved {
		if len(to)+len(p)-len(from) > maxPathLen {
			return errFolder(to+p[len(from):], mailbox.ErrInvalidName)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	ms, t := mb.bump()
	for _, p := range moved {
		f := mb.folders[p]
		delete(mb.folders, p)
		f.path = to + p[len(from):]
		f.specialUse = specialUse(f.path)
		f.touch(ms, t)
		mb.folders[f.path] = f
		for _, m := range f.msgs {
			// The message's path changed: that is a change of the
			// message (its href), though its ID and content are not.
			m.m.Folder = f.path
			m.m.Modseq, m.m.Modified = ms, t
		}
	}
	mb.folders[mailbox.Parent(from)].touch(ms, t)
	newParent.touch(ms, t)
	return nil
}

func (mb *mbox) DeleteFolder(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if path == "" || path == mailbox.Inbox {
		return errFolder(path, mailbox.ErrForbidden)
	}
	if !validPath(path) {
		return errFolder(path, mailbox.ErrNotFound)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.folders[path] == nil {
		return errFolder(path, mailbox.ErrNotFound)
	}
	var freed int64
	for _, p := range mb.subtree(path) {
		f := mb.folders[p]
		for _, m := range f.msgs {
			delete(mb.byID, m.m.ID)
			freed += m.m.Size
		}
		delete(mb.folders, p)
	}
	mb.s.release(freed)
	ms, t := mb.bump()
	mb.folders[mailbox.Parent(path)].touch(ms, t)
	return nil
}
