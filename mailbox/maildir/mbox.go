package maildir

import (
	"bufio"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/davmail/davmail/mailbox"
)

// tmpMaxAge is the Maildir rule for files in tmp/: one not accessed for
// 36 hours is a leftover of a crashed writer and may be removed
// (cr.yp.to/proto/maildir.html).
const tmpMaxAge = 36 * time.Hour

// maxCountHint caps the preallocation from a folder record's message
// count, so that a corrupt count cannot make a load allocate without
// bound: 10 million messages is far beyond any real folder.
const maxCountHint = 10_000_000

// maxKeywordsFile caps dovecot-keywords: 26 keywords (a–z) of a few
// hundred bytes at most fit comfortably in 64 KiB.
const maxKeywordsFile = 64 << 10

// mbox is one user's open mailbox: the index file and its in-memory copy.
type mbox struct {
	s      *Store
	user   string
	log    zerolog.Logger
	root   string // Root/<user>/Maildir
	dbPath string

	// Guarded by s.mu.
	refs int
	elem *list.Element
	// counted is what this mailbox adds to the store's inMem.
	counted int64

	// memMsgs is the messages whose index entries this mailbox holds in
	// memory, set at the end of each operation (under mu).
	memMsgs atomic.Int64

	// broken is set when an index update failed: the in-memory state may
	// be ahead of the file, so the mailbox is reloaded once idle.
	broken atomic.Bool

	mu       sync.Mutex // guards everything below
	loaded   bool
	closed   bool
	db       *bolt.DB
	meta     metaRec
	folders  map[string]*folder // by path; "" is the root (fid 0), which holds no messages
	keywords []string           // dovecot-keywords: index 0 is letter 'a'
	kwMtime  int64
}

func newMbox(s *Store, user string) *mbox {
	return &mbox{
		s:      s,
		user:   user,
		log:    s.log.With().Str("user", user).Logger(),
		root:   filepath.Join(s.opts.Root, user, "Maildir"),
		dbPath: filepath.Join(s.opts.IndexDir, user+".db"),
	}
}

// messagesInMemory counts the messages of the folders loaded in memory;
// the caller holds b.mu.
func (b *mbox) messagesInMemory() int64 {
	var n int64
	for _, f := range b.folders {
		n += int64(f.count())
	}
	return n
}

// ensureLoaded loads the mailbox on first use; the caller holds b.mu.
func (b *mbox) ensureLoaded(ctx context.Context) error {
	if b.closed {
		return ErrClosed
	}
	if b.loaded {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.load(); err != nil {
		if b.db != nil {
			b.db.Close()
			b.db = nil
		}
		b.folders = nil
		return err
	}
	b.loaded = true
	return nil
}

func (b *mbox) load() error {
	st, err := os.Stat(b.root)
	switch {
	case os.IsNotExist(err):
		if !b.s.opts.CreateMissing {
			return fmt.Errorf("maildir: mailbox of %q: %w", b.user, mailbox.ErrNotFound)
		}
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(b.root, sub), 0o700); err != nil {
				return fmt.Errorf("maildir: creating mailbox of %q: %w", b.user, err)
			}
		}
		if err := syncDir(filepath.Dir(b.root)); err != nil {
			return err
		}
		b.log.Info().Str("dir", b.root).Msg("created mailbox")
	case err != nil:
		return fmt.Errorf("maildir: mailbox of %q: %w", b.user, err)
	case !st.IsDir():
		return fmt.Errorf("maildir: mailbox of %q: %s is not a directory", b.user, b.root)
	}
	b.s.stats.loads.Add(1)
	b.loadKeywords()
	db, err := b.openDB(b.dbPath)
	if err != nil {
		return err
	}
	b.db = db
	err = b.readIndexSafe()
	if err != nil && !errors.Is(err, errNewerSchema) && !errors.Is(err, ErrClosed) {
		// Unreadable contents: move the file aside and start over.
		aside := b.dbPath + ".corrupt-" + strconv.FormatInt(time.Now().Unix(), 10)
		b.log.Error().Err(err).Str("index", b.dbPath).Str("moved_to", aside).Msg("index unreadable; moved aside, rebuilding from the Maildir")
		db.Close()
		b.db = nil
		if rerr := os.Rename(b.dbPath, aside); rerr != nil {
			return fmt.Errorf("maildir: index %s unreadable (%v) and cannot be moved aside: %w", b.dbPath, err, rerr)
		}
		if b.db, err = b.openDB(b.dbPath); err != nil {
			return err
		}
		err = b.readIndexSafe()
	}
	if err != nil {
		return err
	}
	b.cleanup()
	return nil
}

// readIndexSafe reads the index, turning a panic of bbolt on a corrupt
// file into an error.
func (b *mbox) readIndexSafe() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("maildir: index %s corrupt: %v", b.dbPath, r)
		}
	}()
	return b.readIndex()
}

// readIndex loads the index file into memory.
func (b *mbox) readIndex() error {
	fresh := false
	// Usually the index is current: check that read-only, sparing a
	// write transaction (and its fsyncs) on every load.
	current := false
	err := b.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketFolders) == nil || tx.Bucket(bucketMsgs) == nil || tx.Bucket(bucketProps) == nil || tx.Bucket(bucketStructs) == nil {
			return nil
		}
		if v := meta.Get(keySchema); len(v) != 4 || binary.BigEndian.Uint32(v) != schemaVersion {
			return nil
		}
		if m, err := decodeMeta(meta.Get(keyState)); err == nil && m.maildir == b.root {
			b.meta, current = m, true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !current {
		err = b.db.Update(func(tx *bolt.Tx) error {
			if err := b.initDB(tx); err != nil {
				return err
			}
			v := tx.Bucket(bucketMeta).Get(keyState)
			if v != nil {
				m, err := decodeMeta(v)
				switch {
				case err != nil:
					b.log.Warn().Err(err).Msg("index state unreadable; rebuilding the index")
				case m.maildir != b.root:
					b.log.Warn().Str("built_for", m.maildir).Msg("index was built for another Maildir; rebuilding it")
				default:
					b.meta = m
					return nil
				}
				if err := resetDB(tx); err != nil {
					return err
				}
			}
			fresh = true
			// A new index starts its IDs at the clock in microseconds, so
			// that IDs stay unique even when an index is lost and rebuilt:
			// the old one would have had to assign more than one ID per
			// microsecond of its life to reach the new start.
			b.meta = metaRec{lastID: uint64(time.Now().UnixMicro()), maildir: b.root}
			return (&txw{tx: tx}).putMeta(&b.meta)
		})
		if err != nil {
			return err
		}
	}
	b.folders = make(map[string]*folder)
	type fix struct {
		fid uint32
		uid uint32
		id  uint64 // of a record to delete: its dead properties go too
		m   *mailbox.Message
		r   fileRef
	}
	var fixes []fix         // records to rewrite (renamed duplicates) or delete (m == nil)
	var badFolders []uint32 // folder records to delete
	var dirty []*folder     // folder records to rewrite
	if !fresh {
		err = b.db.View(func(tx *bolt.Tx) error {
			msgs := tx.Bucket(bucketMsgs)
			return tx.Bucket(bucketFolders).ForEach(func(k, v []byte) error {
				if len(k) != 4 {
					return nil
				}
				fid := binary.BigEndian.Uint32(k)
				rec, err := decodeFolder(v)
				var dir string
				if err == nil && rec.path != "" {
					var dn string
					if dn, err = dirName(rec.path); err == nil {
						dir = filepath.Join(b.root, dn)
					}
				}
				if err != nil || (rec.path == "") != (fid == 0) || b.folders[rec.path] != nil {
					b.log.Warn().Uint32("fid", fid).Msg("dropping unreadable folder record from the index")
					badFolders = append(badFolders, fid)
					return nil
				}
				f := newFolder(fid, rec, dir)
				b.folders[rec.path] = f
				if n := min(rec.count, maxCountHint); n > 0 {
					f.base = make([]mailbox.Message, 0, n)
					f.bfiles = make([]fileRef, 0, n)
					f.byName = make(map[string]uint32, n)
					f.byID = make(map[uint64]uint32, n)
				}
				bk := msgs.Bucket(k)
				if bk == nil {
					return nil
				}
				// Keys ascend, so base is built in UID order by appending.
				var maxUID uint32
				c := bk.Cursor()
				for k, v := c.First(); k != nil; k, v = c.Next() {
					if len(k) != 4 || v == nil {
						continue
					}
					uid := binary.BigEndian.Uint32(k)
					m, r, err := decodeMsg(v, uid, f.path)
					if err == nil && (uid == 0 || uid == math.MaxUint32 || f.byID[m.ID] != 0) {
						err = errRecord // a UID no folder can hand out, or the same message twice
					}
					if err != nil {
						// Forget it and rescan: the file is found again.
						fixes = append(fixes, fix{fid: fid, uid: uid, id: recordID(v)})
						f.scanned = 0
						continue
					}
					b.s.stats.loaded.Add(1)
					maxUID = uid
					if m.ID > b.meta.lastID {
						b.meta.lastID = m.ID
					}
					if f.taken(m.Name) {
						m.Name = mailbox.UniqueName(m.Name, f.taken)
						fixes = append(fixes, fix{fid: fid, uid: uid, m: &m, r: r})
					}
					m.Keywords = b.keywordsOf(r.info())
					f.byName[m.Name] = uid
					f.byID[m.ID] = uid
					f.account(&m, 1)
					f.base = append(f.base, m)
					f.bfiles = append(f.bfiles, r)
				}
				if maxUID >= f.uidNext || f.uidValidity == 0 {
					// A record that contradicts its messages: UIDs up to
					// maxUID may have been handed out, later ones too.
					// Go on above them under a new UIDVALIDITY, which
					// tells clients to forget what they knew.
					b.log.Warn().Str("folder", f.path).Uint32("uid_next", f.uidNext).Uint32("max_uid", maxUID).Msg("index folder record inconsistent; new UIDVALIDITY")
					f.uidNext = max(f.uidNext, maxUID+1)
					f.uidValidity = 0 // assigned below, outside this read transaction
					dirty = append(dirty, f)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	if b.folders[""] == nil {
		b.folders[""] = newFolder(0, folderRec{}, "")
		dirty = append(dirty, b.folders[""])
	}
	for _, f := range dirty {
		if f.uidValidity == 0 {
			f.uidValidity = b.newUIDValidity()
		}
	}
	for i := range fixes {
		// The ID of an unreadable record is a best guess: never drop the
		// dead properties of a message that is alive.
		if x := &fixes[i]; x.m == nil && x.id != 0 {
			for _, f := range b.folders {
				if _, ok := f.byID[x.id]; ok {
					x.id = 0
					break
				}
			}
		}
	}
	if len(fixes) > 0 || len(badFolders) > 0 || len(dirty) > 0 {
		b.meta.rootMtime = 0 // rediscover the folder list
		err = b.db.Update(func(tx *bolt.Tx) error {
			w := &txw{tx: tx}
			for _, fid := range badFolders {
				if err := w.delFolder(fid); err != nil {
					return err
				}
			}
			for _, x := range fixes {
				if x.m != nil {
					if err := w.putMsg(x.fid, x.m, x.r); err != nil {
						return err
					}
				} else if err := w.delMsg(x.fid, x.uid, x.id, x.id != 0); err != nil {
					return err
				}
			}
			for _, f := range b.folders {
				if err := w.putFolder(f); err != nil {
					return err
				}
			}
			return w.putMeta(&b.meta)
		})
	}
	return err
}

// cleanup removes what crashed writes leave behind: davmail's own temp
// files in every tmp/, other programs' temp files older than tmpMaxAge,
// and half-made or half-removed folder directories.
func (b *mbox) cleanup() {
	ents, err := os.ReadDir(b.root)
	if err != nil {
		b.log.Warn().Err(err).Msg("cleanup: cannot read the Maildir")
		return
	}
	dirs := []string{b.root}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, trashPrefix) || strings.HasPrefix(name, mkdirPrefix) {
			if err := os.RemoveAll(filepath.Join(b.root, name)); err != nil {
				b.log.Warn().Err(err).Str("dir", name).Msg("cleanup: cannot remove leftover directory")
			} else {
				b.log.Info().Str("dir", name).Msg("cleanup: removed leftover directory")
			}
			continue
		}
		if e.IsDir() && len(name) > 1 && name[0] == '.' && name[1] != '.' {
			dirs = append(dirs, filepath.Join(b.root, name))
		}
	}
	now := time.Now()
	for _, d := range dirs {
		tmp := filepath.Join(d, "tmp")
		names, err := readDirNames(tmp)
		if err != nil {
			continue
		}
		for _, n := range names {
			p := filepath.Join(tmp, n)
			if !strings.HasSuffix(n, tmpMarker) {
				st, err := os.Lstat(p)
				if err != nil || st.IsDir() || now.Sub(st.ModTime()) < tmpMaxAge {
					continue
				}
			}
			if err := os.Remove(p); err == nil {
				b.log.Info().Str("file", p).Msg("cleanup: removed leftover temporary file")
			}
		}
	}
}

// loadKeywords reads dovecot-keywords: lines "<index> <keyword>", index
// 0 being letter 'a' in file names. A missing or unreadable file means
// no keywords.
func (b *mbox) loadKeywords() {
	p := filepath.Join(b.root, "dovecot-keywords")
	st, err := os.Stat(p)
	if err != nil {
		b.keywords, b.kwMtime = nil, 0
		return
	}
	if st.ModTime().UnixNano() == b.kwMtime {
		return
	}
	b.kwMtime = st.ModTime().UnixNano()
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	kw := make([]string, 26) // letters a–z
	sc := bufio.NewScanner(io.LimitReader(f, maxKeywordsFile))
	for sc.Scan() {
		idx, name, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 || n >= len(kw) || name == "" {
			continue
		}
		kw[n] = name
	}
	b.keywords = kw
}

// keywordsOf maps the keyword letters of an info to names.
func (b *mbox) keywordsOf(info string) []string {
	var out []string
	for i := 0; i < len(info); i++ {
		c := info[i]
		if c >= 'a' && c <= 'z' && int(c-'a') < len(b.keywords) && b.keywords[c-'a'] != "" {
			out = append(out, b.keywords[c-'a'])
		}
	}
	return out
}

// close closes the index. The mailbox is unusable afterwards.
func (b *mbox) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.folders = nil
	if b.db == nil {
		return nil
	}
	err := b.db.Close()
	b.db = nil
	return err
}

// commit runs fn in a write transaction and then saves b.meta. If the
// transaction fails, b.meta is restored and the mailbox is marked for
// reloading.
func (b *mbox) commit(fn func(w *txw) error) error {
	saved := b.meta
	err := b.db.Update(func(tx *bolt.Tx) error {
		w := &txw{tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		return w.putMeta(&b.meta)
	})
	if err != nil {
		b.meta = saved
		b.fail(err)
		return fmt.Errorf("maildir: index update: %w", err)
	}
	return nil
}

// fail records a failed index update: the mailbox is reloaded once
// idle, from the index file and the disk.
func (b *mbox) fail(err error) {
	b.log.Error().Err(err).Msg("index update failed; the mailbox will be reloaded")
	b.broken.Store(true)
}

// bump takes the next modseq value and the time of a change; every
// change takes one value and gives it to everything it touches.
func (b *mbox) bump() (uint64, time.Time) {
	b.meta.modseq++
	return b.meta.modseq, time.Now()
}

func (b *mbox) nextID() uint64 {
	b.meta.lastID++
	return b.meta.lastID
}

// newUIDValidity returns a UIDVALIDITY for a new folder, or for one
// whose UIDs start afresh.
func (b *mbox) newUIDValidity() uint32 { return nextUIDValidity(&b.meta) }

// nextUIDValidity returns a new UIDVALIDITY: the clock in seconds, or
// one more than the last when that is later, so it never repeats for
// this mailbox (RFC 9051 §2.3.1.1).
func nextUIDValidity(m *metaRec) uint32 {
	v := uint32(time.Now().Unix())
	if v <= m.lastUIDV {
		v = m.lastUIDV + 1
	}
	if v == 0 {
		v = 1
	}
	m.lastUIDV = v
	return v
}

// uidHeadroom is how close to the end of the UID space a folder may get
// before an operation that adds messages renumbers it first (see
// ensureUIDs): a rescan assigns UIDs to the messages other programs moved
// in without a chance to renumber midway, and no single pass meets a
// million of them.
const uidHeadroom = 1 << 20

// ensureUIDs makes room for n more UIDs in f: when fewer than n plus
// uidHeadroom are left, the folder's messages are renumbered 1…n under
// a new UIDVALIDITY (RFC 3501 §2.3.1.1: UIDs only ascend, so when they
// run out the UIDVALIDITY must change). That happens after four billion
// arrivals in one folder at the earliest. Nothing of f may be in flight
// (collected in an uncommitted change set) when it is called.
func (b *mbox) ensureUIDs(f *folder, n int) error {
	if f.uidsLeft() >= uint64(n)+uidHeadroom {
		return nil
	}
	if uint64(f.count())+uint64(n)+uidHeadroom >= 1<<32-1 {
		return fmt.Errorf("maildir: folder %q: too many messages for 32-bit UIDs", f.path)
	}
	b.log.Warn().Str("folder", f.path).Msg("UIDs of the folder used up; renumbering them under a new UIDVALIDITY")
	return b.commit(func(w *txw) error {
		f.renumber()
		f.uidValidity = b.newUIDValidity()
		f.touch(b.bump())
		if err := w.tx.Bucket(bucketMsgs).DeleteBucket(fidKey(f.fid)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		for i := range f.base {
			if err := w.putMsg(f.fid, &f.base[i], f.bfiles[i]); err != nil {
				return err
			}
		}
		return w.putFolder(f)
	})
}

// folder returns the folder at path, "" being the root.
func (b *mbox) folder(path string) (*folder, error) {
	if f := b.folders[path]; f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrNotFound)
}

// msgFolder returns a folder that can hold messages: the root cannot.
func (b *mbox) msgFolder(path string) (*folder, error) {
	f, err := b.folder(path)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("maildir: the root folder holds no messages: %w", mailbox.ErrForbidden)
	}
	return f, nil
}

func errMessage(folder, name string, err error) error {
	return fmt.Errorf("maildir: message %q in %q: %w", name, folder, err)
}

// filePath returns the path of a message file of f.
func (f *folder) filePath(r fileRef) string {
	return filepath.Join(f.dir, r.sub(), r.name)
}
