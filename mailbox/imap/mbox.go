package imap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"
)

// folder is the in-memory state of one folder: its persistent record and
// its messages in UID order.
type folder struct {
	path string
	folderRec
	// msgs is sorted by UID. Once handed out by List (shared), it is
	// never modified in place: a change that is not an append copies it
	// first. Appends write past the snapshot's length and are safe.
	msgs   []mailbox.Message
	shared bool
	byName map[string]uint32 // name → UID
}

// find returns the index of uid in msgs.
func (f *folder) find(uid uint32) (int, bool) {
	i := sort.Search(len(f.msgs), func(i int) bool { return f.msgs[i].UID >= uid })
	return i, i < len(f.msgs) && f.msgs[i].UID == uid
}

// byNameIdx returns the index of the message called name.
func (f *folder) byNameIdx(name string) (int, bool) {
	uid, ok := f.byName[name]
	if !ok {
		return 0, false
	}
	return f.find(uid)
}

// mutable makes msgs safe to modify in place.
func (f *folder) mutable() {
	if f.shared {
		f.msgs = slices.Clone(f.msgs)
		f.shared = false
	}
}

// insert adds m in UID order.
func (f *folder) insert(m mailbox.Message) {
	i, _ := f.find(m.UID)
	if i == len(f.msgs) {
		f.msgs = append(f.msgs, m) // past every snapshot's length: safe while shared
	} else {
		f.mutable()
		f.msgs = slices.Insert(f.msgs, i, m)
	}
	f.byName[m.Name] = m.UID
}

// remove drops the message at index i.
func (f *folder) remove(i int) mailbox.Message {
	f.mutable()
	m := f.msgs[i]
	f.msgs = slices.Delete(f.msgs, i, i+1)
	delete(f.byName, m.Name)
	return m
}

func (f *folder) info() mailbox.Folder {
	out := mailbox.Folder{
		Path: f.path, SpecialUse: f.SpecialUse, Messages: len(f.msgs),
		Modseq: f.Modseq, Modified: f.Modified, UIDValidity: f.UIDValidity, UIDNext: f.UIDNext,
	}
	for i := range f.msgs {
		if f.msgs[i].Flags&mailbox.FlagSeen == 0 {
			out.Unseen++
		}
		out.Size += f.msgs[i].Size
	}
	if out.UIDValidity == 0 {
		out.UIDValidity = 1 // a \Noselect folder has none upstream
	}
	if out.UIDNext == 0 {
		out.UIDNext = 1
	}
	return out
}

// loc finds a message by ID.
type loc struct {
	folder string
	uid    uint32
}

// mbox is one user's mailbox. Every operation holds mu for its whole
// duration, upstream I/O included: one user's writes and syncs are
// serialised, which keeps the index and upstream in step without a
// reconciliation protocol. Message content (Open) streams on connections
// of its own without mu.
type mbox struct {
	s    *Store
	user string
	pool *pool
	db   *bolt.DB

	dbPath string

	// lastUsed (Unix ns) and inMem (messages loaded) are read without mu
	// by the Store when it makes room (Store.trim, the janitor).
	lastUsed atomic.Int64
	inMem    atomic.Int64

	mu sync.Mutex
	// loaded is false once an idle mailbox's index was dropped from
	// memory and its file closed (unloadLocked); lock loads it again.
	loaded  bool
	delim   string // upstream hierarchy delimiter, "" until learnt
	meta    metaRec
	folders map[string]*folder
	byID    map[uint64]loc
	// listed is true once the folder list was read from upstream in this
	// process.
	listed bool
	// pending holds the folders whose records the next persist writes.
	pending map[string]*folder
}

func openMbox(s *Store, user string, p *pool, path string) (*mbox, error) {
	m := &mbox{s: s, user: user, pool: p, dbPath: path, pending: map[string]*folder{}}
	if err := m.lock(); err != nil {
		return nil, err
	}
	m.release() // not unlock: the caller holds the Store's mu, which trim takes
	return m, nil
}

// lock takes mu and loads the mailbox if it was unloaded: every
// operation starts with it (and ends with unlock).
func (m *mbox) lock() error {
	m.mu.Lock()
	if m.loaded {
		return nil
	}
	if err := m.load(); err != nil {
		m.mu.Unlock()
		return err
	}
	return nil
}

// load opens the index file and reads it into memory; mu is held.
func (m *mbox) load() error {
	if m.db == nil {
		db, err := openIndex(m.dbPath)
		if err != nil {
			return err
		}
		m.db = db
	}
	meta, folders, err := loadIndex(m.db)
	if err != nil {
		return fmt.Errorf("imap: index of %s: %w", m.user, err)
	}
	m.meta, m.folders = meta, folders
	m.byID = map[uint64]loc{}
	for _, f := range folders {
		for _, msg := range f.msgs {
			m.byID[msg.ID] = loc{f.path, msg.UID}
		}
	}
	// The folder list is read from upstream again on first use, as in a
	// new process.
	m.listed = false
	m.loaded = true
	return nil
}

// unlock ends an operation: release, then let the Store make room if
// the mailboxes together hold more messages than their budget.
func (m *mbox) unlock() {
	m.release()
	m.s.trim(m)
}

// release records the messages held in memory and the time of use, and
// drops mu.
func (m *mbox) release() {
	var n int64
	for _, f := range m.folders {
		n += int64(len(f.msgs))
	}
	m.s.inMem.Add(n - m.inMem.Swap(n))
	m.lastUsed.Store(time.Now().UnixNano())
	m.mu.Unlock()
}

// unloadLocked drops the in-memory index and closes its file, unless
// folder records wait to be written; mu is held. It reports whether it
// did.
func (m *mbox) unloadLocked() bool {
	if !m.loaded || len(m.pending) > 0 {
		return false
	}
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			m.s.log.Warn().Err(err).Str("user", m.user).Msg("closing an idle mailbox index")
		}
		m.db = nil
	}
	m.folders, m.byID = nil, nil
	m.loaded = false
	m.s.inMem.Add(-m.inMem.Swap(0))
	return true
}

func (m *mbox) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db == nil {
		return nil
	}
	err := m.db.Close()
	m.db = nil
	m.loaded = false
	return err
}

// bump advances the mailbox modseq and returns the new value.
func (m *mbox) bump() uint64 {
	m.meta.Modseq++
	return m.meta.Modseq
}

// withConn runs fn on a pooled connection. An idempotent fn that fails
// because the connection broke (the server closed it, a reset) is run
// once more on a new connection.
func (m *mbox) withConn(ctx context.Context, idempotent bool, fn func(cn *conn) error) error {
	for attempt := 0; ; attempt++ {
		cn, err := m.pool.acquire(ctx, m.s)
		if err != nil {
			return err
		}
		if m.delim == "" {
			err = m.learnDelim(ctx, cn)
		}
		if err == nil {
			err = fn(cn)
		}
		broken := cn.broken
		m.pool.release(cn, time.Now())
		if err == nil || !broken || !idempotent || attempt > 0 || ctx.Err() != nil {
			return err
		}
		m.s.log.Debug().Err(err).Str("user", m.user).Msg("imap: connection broke, retrying once")
	}
}

// learnDelim asks the hierarchy delimiter (RFC 3501 §6.3.8: LIST "" "").
func (m *mbox) learnDelim(ctx context.Context, cn *conn) error {
	var l []*imapv2.ListData
	err := cn.do(ctx, func(c *imapclient.Client) (err error) {
		l, err = c.List("", "", nil).Collect()
		return err
	})
	if err != nil {
		return err
	}
	m.delim = "/"
	if len(l) > 0 && l[0].Delim != 0 {
		m.delim = string(l[0].Delim)
	}
	return nil
}

// upstream returns the server's name of a folder path.
func (m *mbox) upstream(path string) string {
	if m.delim == "/" || m.delim == "" {
		return path
	}
	return strings.ReplaceAll(path, "/", m.delim)
}

// local returns the path of an upstream name, false when it cannot be
// represented (a segment holding "/" under another delimiter, or one
// mailbox.ValidSegment refuses).
func (m *mbox) local(name string) (string, bool) {
	segs := []string{name}
	if m.delim != "" {
		segs = strings.Split(name, m.delim)
	}
	for i, s := range segs {
		if !mailbox.ValidSegment(s) {
			return "", false
		}
		if i == 0 && strings.EqualFold(s, mailbox.Inbox) {
			segs[0] = mailbox.Inbox
		}
	}
	return strings.Join(segs, "/"), true
}

// checkPath validates a folder path for creation: valid segments that
// the upstream delimiter can carry.
func (m *mbox) checkPath(path string) error {
	for _, s := range strings.Split(path, "/") {
		if !mailbox.ValidSegment(s) || (m.delim != "/" && m.delim != "" && strings.Contains(s, m.delim)) {
			return fmt.Errorf("folder %q: %w", path, mailbox.ErrInvalidName)
		}
	}
	return nil
}

// statusOpts is what every freshness check asks (RFC 7162 §3.1.2.1:
// HIGHESTMODSEQ in STATUS).
var statusOpts = &imapv2.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}

// refreshFolders reads the folder list with LIST-STATUS (RFC 5819) and
// SPECIAL-USE (RFC 6154), adds and drops local folders to match, and
// syncs every folder whose status moved. m.mu is held.
func (m *mbox) refreshFolders(ctx context.Context) error {
	return m.withConn(ctx, true, func(cn *conn) error {
		if err := cn.syncView(ctx); err != nil {
			return err
		}
		var l []*imapv2.ListData
		err := cn.do(ctx, func(c *imapclient.Client) (err error) {
			l, err = c.List("", "*", &imapv2.ListOptions{ReturnStatus: statusOpts, ReturnSpecialUse: true}).Collect()
			return err
		})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, ld := range l {
			path, ok := m.local(ld.Mailbox)
			if !ok || slices.Contains(ld.Attrs, imapv2.MailboxAttrNonExistent) {
				continue
			}
			seen[path] = true
			f := m.folders[path]
			if f == nil {
				f = m.addFolder(path)
			}
			f.SpecialUse = specialUse(ld.Attrs)
			if ld.Status == nil || slices.Contains(ld.Attrs, imapv2.MailboxAttrNoSelect) {
				continue
			}
			if err := m.syncFolder(ctx, cn, f, ld.Status); err != nil {
				return err
			}
		}
		// A folder's parents are folders too, even when the server has
		// them only as hierarchy levels (Dovecot's Maildir++ lists
		// "Archive" \NonExistent when only .Archive.2024 exists): as in
		// the Maildir backend, they are listed, holding no messages, so
		// clients walking the tree find their children.
		for path := range seen {
			for p := mailbox.Parent(path); p != ""; p = mailbox.Parent(p) {
				if seen[p] {
					break
				}
				seen[p] = true
				if m.folders[p] == nil {
					m.addFolder(p)
				}
			}
		}
		for path, f := range m.folders {
			if !seen[path] {
				if err := m.dropFolder(f); err != nil {
					return err
				}
			}
		}
		m.listed = true
		return nil
	})
}

// specialUse returns the RFC 6154 attribute among attrs.
func specialUse(attrs []imapv2.MailboxAttr) string {
	for _, a := range attrs {
		switch a {
		case imapv2.MailboxAttrSent, imapv2.MailboxAttrTrash, imapv2.MailboxAttrDrafts,
			imapv2.MailboxAttrJunk, imapv2.MailboxAttrArchive:
			return string(a)
		}
	}
	return ""
}

// addFolder creates the local state of a folder found upstream or just
// created, giving it and its parent a new modseq.
func (m *mbox) addFolder(path string) *folder {
	ms := m.bump()
	now := time.Now()
	f := &folder{path: path, byName: map[string]uint32{}}
	f.Modseq, f.Modified = ms, now
	m.folders[path] = f
	m.dirty(f)
	m.touchParent(path, ms, now)
	return f
}

// touchParent gives the parent of path (the root for a top-level folder)
// modseq ms.
func (m *mbox) touchParent(path string, ms uint64, now time.Time) {
	if p := m.folders[mailbox.Parent(path)]; p != nil {
		p.Modseq, p.Modified = ms, now
		m.dirty(p)
	} else {
		m.meta.RootModseq, m.meta.RootModified = ms, now
	}
}

// dirty marks f's record for the next persist.
func (m *mbox) dirty(f *folder) { m.pending[f.path] = f }

// dropFolder forgets a folder that vanished upstream, with its messages,
// dead properties and structures. The parent gets a new modseq.
func (m *mbox) dropFolder(f *folder) error {
	delete(m.folders, f.path)
	delete(m.pending, f.path)
	for _, msg := range f.msgs {
		delete(m.byID, msg.ID)
	}
	m.touchParent(f.path, m.bump(), time.Now())
	return m.db.Update(func(tx *bolt.Tx) error {
		if err := deleteFolderRecords(tx, f); err != nil {
			return err
		}
		return m.persistTx(tx)
	})
}

// deleteFolderRecords removes a folder's records from the index.
func deleteFolderRecords(tx *bolt.Tx, f *folder) error {
	msgs, props, structs := tx.Bucket(bucketMsgs), tx.Bucket(bucketProps), tx.Bucket(bucketStructs)
	for _, msg := range f.msgs {
		if err := msgs.Delete(msgKey(f.path, msg.UID)); err != nil {
			return err
		}
		if err := props.Delete(propKeyMsg(msg.ID)); err != nil {
			return err
		}
		if err := structs.Delete(idKey(msg.ID)); err != nil {
			return err
		}
	}
	if err := props.Delete(propKeyFolder(f.path)); err != nil {
		return err
	}
	return tx.Bucket(bucketFolders).Delete([]byte(f.path))
}

// persistTx writes the meta record and every dirty folder record.
func (m *mbox) persistTx(tx *bolt.Tx) error {
	if err := putJSON(tx.Bucket(bucketMeta), keyState, &m.meta); err != nil {
		return err
	}
	fb := tx.Bucket(bucketFolders)
	for path, f := range m.pending {
		if err := putJSON(fb, []byte(path), &f.folderRec); err != nil {
			return err
		}
	}
	clear(m.pending)
	return nil
}

// persist writes the given messages (by value) and the dirty folders in
// one transaction, after running extra in it (deletions).
func (m *mbox) persist(msgs []mailbox.Message, extra func(tx *bolt.Tx) error) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketMsgs)
		var a recArena
		for i := range msgs {
			if err := a.putMsg(b, &msgs[i]); err != nil {
				return err
			}
		}
		return m.persistTx(tx)
	})
}

// folderOf returns the folder at path after a freshness check: a STATUS
// whose answer, compared with the last sync, tells whether anything
// changed upstream; only then is the folder synced. The root is never
// asked. m.mu is held.
func (m *mbox) folderOf(ctx context.Context, path string) (*folder, error) {
	if !m.listed {
		if err := m.refreshFolders(ctx); err != nil {
			return nil, err
		}
		if f := m.folders[path]; f != nil || path == "" {
			return f, nil
		}
		return nil, fmt.Errorf("folder %q: %w", path, mailbox.ErrNotFound)
	}
	f := m.folders[path]
	if f == nil {
		// Maybe created upstream by someone else since the last listing.
		if err := m.refreshFolders(ctx); err != nil {
			return nil, err
		}
		if f = m.folders[path]; f == nil {
			return nil, fmt.Errorf("folder %q: %w", path, mailbox.ErrNotFound)
		}
		return f, nil
	}
	err := m.withConn(ctx, true, func(cn *conn) error {
		if err := cn.syncView(ctx); err != nil {
			return err
		}
		var st *imapv2.StatusData
		err := cn.do(ctx, func(c *imapclient.Client) (err error) {
			st, err = c.Status(m.upstream(path), statusOpts).Wait()
			return err
		})
		if err != nil {
			if isIMAPError(err) {
				// Gone upstream (NO [NONEXISTENT]) or \Noselect.
				if code := imapCode(err); code == imapv2.ResponseCodeNonExistent || code == "" {
					return m.refreshFolders(ctx)
				}
			}
			return err
		}
		return m.syncFolder(ctx, cn, f, st)
	})
	if err != nil {
		return nil, err
	}
	if f = m.folders[path]; f == nil {
		return nil, fmt.Errorf("folder %q: %w", path, mailbox.ErrNotFound)
	}
	return f, nil
}

// knownFolder returns the local state of path without asking upstream,
// listing folders once per process first.
func (m *mbox) knownFolder(ctx context.Context, path string) (*folder, error) {
	if !m.listed {
		if err := m.refreshFolders(ctx); err != nil {
			return nil, err
		}
	}
	if f := m.folders[path]; f != nil {
		return f, nil
	}
	return m.folderOf(ctx, path)
}

// Folders implements mailbox.Mailbox.
func (m *mbox) Folders(ctx context.Context) ([]mailbox.Folder, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	if err := m.refreshFolders(ctx); err != nil {
		return nil, err
	}
	out := make([]mailbox.Folder, 0, len(m.folders))
	for _, f := range m.folders {
		out = append(out, f.info())
	}
	slices.SortFunc(out, func(a, b mailbox.Folder) int {
		ai, bi := inInbox(a.Path), inInbox(b.Path)
		if ai != bi {
			if ai {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, nil
}

func inInbox(p string) bool { return p == mailbox.Inbox || strings.HasPrefix(p, mailbox.Inbox+"/") }

// Folder implements mailbox.Mailbox.
func (m *mbox) Folder(ctx context.Context, path string) (mailbox.Folder, error) {
	if err := m.lock(); err != nil {
		return mailbox.Folder{}, err
	}
	defer m.unlock()
	if path == "" {
		return mailbox.Folder{Path: "", Modseq: m.meta.RootModseq, Modified: m.meta.RootModified, UIDValidity: 1, UIDNext: 1}, nil
	}
	f, err := m.folderOf(ctx, path)
	if err != nil {
		return mailbox.Folder{}, err
	}
	return f.info(), nil
}

// List implements mailbox.Mailbox.
func (m *mbox) List(ctx context.Context, path string) ([]mailbox.Message, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	if path == "" {
		return nil, nil
	}
	f, err := m.folderOf(ctx, path)
	if err != nil {
		return nil, err
	}
	f.shared = true
	return f.msgs[:len(f.msgs):len(f.msgs)], nil
}

// lookup returns a message by name from the local index, syncing the
// folder once when the name is unknown (a message that arrived upstream).
// m.mu is held.
func (m *mbox) lookup(ctx context.Context, path, name string) (*folder, int, error) {
	f, err := m.knownFolder(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	if i, ok := f.byNameIdx(name); ok {
		return f, i, nil
	}
	if f, err = m.folderOf(ctx, path); err != nil {
		return nil, 0, err
	}
	if i, ok := f.byNameIdx(name); ok {
		return f, i, nil
	}
	return nil, 0, fmt.Errorf("message %s/%s: %w", path, name, mailbox.ErrNotFound)
}

// Stat implements mailbox.Mailbox. It answers from the index; only an
// unknown name costs a sync of the folder.
func (m *mbox) Stat(ctx context.Context, path, name string) (mailbox.Message, error) {
	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	f, i, err := m.lookup(ctx, path, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	return f.msgs[i], nil
}

// StatID implements mailbox.Mailbox, from the index only.
func (m *mbox) StatID(ctx context.Context, id uint64) (mailbox.Message, error) {
	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	if l, ok := m.byID[id]; ok {
		if f := m.folders[l.folder]; f != nil {
			if i, ok := f.find(l.uid); ok {
				return f.msgs[i], nil
			}
		}
	}
	return mailbox.Message{}, fmt.Errorf("message id %d: %w", id, mailbox.ErrNotFound)
}

// StatUID implements mailbox.Mailbox.
func (m *mbox) StatUID(ctx context.Context, path string, uid uint32) (mailbox.Message, error) {
	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	if path == "" {
		return mailbox.Message{}, fmt.Errorf("uid %d in the root: %w", uid, mailbox.ErrNotFound)
	}
	f, err := m.knownFolder(ctx, path)
	if err != nil {
		return mailbox.Message{}, err
	}
	if i, ok := f.find(uid); ok {
		return f.msgs[i], nil
	}
	if uid == 0 || uid < f.UIDNext {
		return mailbox.Message{}, fmt.Errorf("uid %d in %q: %w", uid, path, mailbox.ErrNotFound)
	}
	if f, err = m.folderOf(ctx, path); err != nil {
		return mailbox.Message{}, err
	}
	if i, ok := f.find(uid); ok {
		return f.msgs[i], nil
	}
	return mailbox.Message{}, fmt.Errorf("uid %d in %q: %w", uid, path, mailbox.ErrNotFound)
}

// errNotSelectable reports a folder that cannot hold messages upstream.
var errNotSelectable = errors.New("imap: folder cannot hold messages upstream (\\Noselect)")
