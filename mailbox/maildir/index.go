package maildir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/davmail/davmail/mailbox"
)

// schemaVersion is the layout of the index file. An index written by a
// newer davmail is refused (its layout is unknown here); an older one is
// migrated in migrate.
//
//   - 1: message records keyed by ID within their folder's bucket.
//   - 2: message records keyed by UID (IMAP UIDs per folder), the ID in
//     the record; folder records with UIDNext.
//   - 3: a bucket of MIME structures by message ID (structure.go). The
//     migration from 2 creates the bucket; the structures of messages
//     indexed before are scanned on first use.
const schemaVersion = 3

// Bucket and key names of the index file.
var (
	bucketMeta    = []byte("meta")    // schema version and mailbox counters
	bucketFolders = []byte("folders") // fid (4 bytes BE) → folder record
	bucketMsgs    = []byte("msgs")    // per folder a sub-bucket fid → (UID (4 bytes BE) → message record)
	bucketProps   = []byte("props")   // 'm'+ID or 'f'+fid → dead properties

	keySchema = []byte("schema")
	keyState  = []byte("state")
)

// lockTimeout is how long opening an index waits for the file lock held
// by another process: long enough for a restarting davmail to let go,
// short enough that a misconfigured second instance fails fast with a
// clear error.
const lockTimeout = 2 * time.Second

// metaRec is the persistent state of a mailbox as a whole.
type metaRec struct {
	lastID   uint64 // IDs are lastID+1…, never reused
	modseq   uint64 // the mailbox's modseq counter
	lastFid  uint32
	lastUIDV uint32
	// rootMtime is the Maildir root's mtime (Unix ns) at the last folder
	// list scan, rootScanned the wall clock before it.
	rootMtime, rootScanned int64
	// maildir is the absolute path the index was built from: an index
	// moved to another Maildir is rebuilt, not trusted.
	maildir string
}

func encodeMeta(m *metaRec) []byte {
	b := []byte{metaVersion}
	b = binary.AppendUvarint(b, m.lastID)
	b = binary.AppendUvarint(b, m.modseq)
	b = binary.AppendUvarint(b, uint64(m.lastFid))
	b = binary.AppendUvarint(b, uint64(m.lastUIDV))
	b = binary.AppendVarint(b, m.rootMtime)
	b = binary.AppendVarint(b, m.rootScanned)
	b = binary.AppendUvarint(b, uint64(len(m.maildir)))
	return append(b, m.maildir...)
}

func decodeMeta(b []byte) (metaRec, error) {
	r := newReader(b)
	var m metaRec
	if r.Byte() != metaVersion {
		return m, errRecord
	}
	m.lastID = r.Uvarint()
	m.modseq = r.Uvarint()
	fid, uv := r.Uvarint(), r.Uvarint()
	m.rootMtime = r.Varint()
	m.rootScanned = r.Varint()
	n := r.Uvarint()
	if r.Err != nil || fid > 1<<32-1 || uv > 1<<32-1 || n != uint64(len(r.B)) {
		return metaRec{}, errRecord
	}
	m.lastFid, m.lastUIDV = uint32(fid), uint32(uv)
	m.maildir = string(r.B)
	return m, nil
}

func fidKey(fid uint32) []byte { return binary.BigEndian.AppendUint32(nil, fid) }
func uidKey(uid uint32) []byte { return binary.BigEndian.AppendUint32(nil, uid) }

func msgPropKey(id uint64) []byte   { return binary.BigEndian.AppendUint64([]byte{'m'}, id) }
func folderPropKey(f uint32) []byte { return binary.BigEndian.AppendUint32([]byte{'f'}, f) }

// checkIndexVersions refuses, at start, an index directory holding a file
// written by a newer davmail (a downgrade): better than failing each
// user's first request. Each file is opened read-only (a shared lock) and
// only its schema key is read; an older schema is left for the migration
// at first use. Files locked by another process are skipped here (Open
// of the mailbox reports that clearly).
func checkIndexVersions(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		return err
	}
	for _, p := range names {
		db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
		if err != nil {
			continue
		}
		var ver uint32
		db.View(func(tx *bolt.Tx) error {
			if meta := tx.Bucket(bucketMeta); meta != nil {
				if v := meta.Get(keySchema); len(v) == 4 {
					ver = binary.BigEndian.Uint32(v)
				}
			}
			return nil
		})
		db.Close()
		if ver > schemaVersion {
			return fmt.Errorf("%w: index %s has schema version %d, this davmail knows %d; upgrade davmail, or delete the index directory's files to rebuild them from the Maildirs",
				errNewerSchema, p, ver, schemaVersion)
		}
	}
	return nil
}

// errNewerSchema is wrapped when an index was written by a newer davmail.
var errNewerSchema = errors.New("maildir: index written by a newer davmail")

// openDB opens (creating if needed) the index file at path. A file that
// is not a valid bbolt database is moved aside to path.corrupt-<time> and
// replaced by an empty one: the index is rebuilt from the Maildir.
func (b *mbox) openDB(path string) (*bolt.DB, error) {
	opts := &bolt.Options{
		Timeout: lockTimeout,
		// The free list is rebuilt on open instead of written on every
		// commit: faster commits, and the file is small enough (tens of
		// MiB for 100,000 messages) that the rebuild is quick.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
	db, err := bolt.Open(path, 0o600, opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("maildir: index %s is locked by another process (is another davmail using the same index directory?): %w", path, err)
	}
	if err != nil {
		if _, serr := os.Stat(path); serr != nil {
			return nil, fmt.Errorf("maildir: index %s: %w", path, err)
		}
		aside := path + ".corrupt-" + strconv.FormatInt(time.Now().Unix(), 10)
		b.log.Error().Err(err).Str("index", path).Str("moved_to", aside).Msg("index unreadable; moved aside, rebuilding from the Maildir")
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("maildir: index %s unreadable (%v) and cannot be moved aside: %w", path, err, rerr)
		}
		db, err = bolt.Open(path, 0o600, opts)
		if err != nil {
			return nil, fmt.Errorf("maildir: index %s: %w", path, err)
		}
	}
	return db, nil
}

// initDB checks the schema of an open index, migrates it if it is
// older, and creates its buckets.
func (b *mbox) initDB(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(keySchema); v != nil {
		if len(v) != 4 {
			return fmt.Errorf("%w: schema key", errRecord)
		}
		ver := binary.BigEndian.Uint32(v)
		if ver > schemaVersion {
			return fmt.Errorf("%w: index %s has schema version %d, this davmail knows %d; upgrade davmail, or delete the file to rebuild the index",
				errNewerSchema, b.dbPath, ver, schemaVersion)
		}
		if err := migrate(tx, ver); err != nil {
			return err
		}
	}
	if err := meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion)); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketFolders, bucketMsgs, bucketProps, bucketStructs} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// migrate upgrades an index from schema version from to schemaVersion,
// one step at a time, inside the opening write transaction: a crash or
// failure leaves the old index untouched.
func migrate(tx *bolt.Tx, from uint32) error {
	for v := from; v < schemaVersion; v++ {
		var err error
		switch v {
		case 1:
			err = migrateUIDs(tx)
		case 2:
			// Nothing to convert: initDB creates the structs bucket.
		default:
			err = fmt.Errorf("maildir: no migration from index schema version %d", v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resetDB empties an index (all buckets but the schema).
func resetDB(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketFolders, bucketMsgs, bucketProps, bucketStructs} {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Delete(keyState)
}

// txw is a write transaction with an arena for encoded values: bbolt
// needs a value to stay valid until the commit, so values are not
// encoded into a reused buffer.
type txw struct {
	tx    *bolt.Tx
	arena []byte
}

func (w *txw) alloc(enc func([]byte) []byte) []byte {
	start := len(w.arena)
	w.arena = enc(w.arena)
	return w.arena[start:len(w.arena):len(w.arena)]
}

func (w *txw) msgBucket(fid uint32) (*bolt.Bucket, error) {
	bk, err := w.tx.Bucket(bucketMsgs).CreateBucketIfNotExists(fidKey(fid))
	if err != nil {
		return nil, err
	}
	bk.FillPercent = 0.9 // UIDs grow: appends fill pages, no room needed for inserts in the middle
	return bk, nil
}

func (w *txw) putMsg(fid uint32, m *mailbox.Message, r fileRef) error {
	bk, err := w.msgBucket(fid)
	if err != nil {
		return err
	}
	return bk.Put(uidKey(m.UID), w.alloc(func(b []byte) []byte { return encodeMsg(b, m, r) }))
}

// delRecord deletes the record of message uid of folder fid and nothing
// else: the message lives on under another key (a move).
func (w *txw) delRecord(fid, uid uint32) error {
	if bk := w.tx.Bucket(bucketMsgs).Bucket(fidKey(fid)); bk != nil {
		return bk.Delete(uidKey(uid))
	}
	return nil
}

// delMsg deletes the record of message uid of folder fid, its structure
// and, if
// hasProps, the dead properties of message id.
func (w *txw) delMsg(fid, uid uint32, id uint64, hasProps bool) error {
	if bk := w.tx.Bucket(bucketMsgs).Bucket(fidKey(fid)); bk != nil {
		if err := bk.Delete(uidKey(uid)); err != nil {
			return err
		}
	}
	if err := w.tx.Bucket(bucketStructs).Delete(structKey(id)); err != nil {
		return err
	}
	if hasProps {
		return w.tx.Bucket(bucketProps).Delete(msgPropKey(id))
	}
	return nil
}

func (w *txw) putFolder(f *folder) error {
	f.folderRec.count = uint64(f.count())
	return w.tx.Bucket(bucketFolders).Put(fidKey(f.fid), w.alloc(func(b []byte) []byte { return encodeFolder(b, &f.folderRec) }))
}

// delFolder deletes a folder's record, its message bucket and its own
// dead properties (not those of its messages).
func (w *txw) delFolder(fid uint32) error {
	if err := w.tx.Bucket(bucketFolders).Delete(fidKey(fid)); err != nil {
		return err
	}
	if err := w.tx.Bucket(bucketMsgs).DeleteBucket(fidKey(fid)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	return w.tx.Bucket(bucketProps).Delete(folderPropKey(fid))
}

func (w *txw) putMeta(m *metaRec) error {
	return w.tx.Bucket(bucketMeta).Put(keyState, encodeMeta(m))
}
