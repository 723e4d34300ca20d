package imap

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"
)

// The index file of one user: what the gateway knows that the upstream
// server does not keep (stable IDs, item names, dead properties, the
// mailbox-wide modseq, MIME structures with offsets), and a cache of what
// it does (sizes, flags, dates, envelopes, and per folder the UIDVALIDITY,
// UIDNEXT, message count and HIGHESTMODSEQ seen at the last sync).
//
// Message records are binary (record.go); the others are JSON.

// schemaVersion is the layout of the index file. An index written by a
// newer davmail is refused (its layout is unknown here, and rebuilding it
// would give every message a new ID); version 1 is migrated when opened;
// a file without a readable version is discarded and rebuilt from
// upstream (IDs and names then start afresh, as after a UIDVALIDITY
// change).
//
//   - 1: every record JSON.
//   - 2: message records binary (record.go); the migration re-encodes
//     them in the opening transaction.
const schemaVersion = 2

var (
	bucketMeta    = []byte("meta")    // keyState → metaRec, keySchema → version
	bucketFolders = []byte("folders") // path → folderRec
	bucketMsgs    = []byte("msgs")    // path "\x00" UID (4 bytes BE) → message record (record.go)
	bucketProps   = []byte("props")   // 'm' ID (8 bytes BE) or 'f' path → []mailbox.Prop
	bucketStructs = []byte("structs") // ID (8 bytes BE) → mailbox.Structure

	keyState  = []byte("state")
	keySchema = []byte("schema")
)

// lockTimeout is how long opening an index waits for another process's
// lock: long enough for a restarting gateway, short enough that a second
// instance on the same directory fails fast.
const lockTimeout = 2 * time.Second

// metaRec is the mailbox-wide state.
type metaRec struct {
	LastID uint64 // IDs are LastID+1…, never reused
	Modseq uint64 // the mailbox's modseq counter
	// RootModseq and RootModified describe the root folder.
	RootModseq   uint64
	RootModified time.Time
}

// folderRec is a folder's persistent state.
type folderRec struct {
	UIDValidity uint32
	UIDNext     uint32
	// HighestModSeq and Exists are upstream's HIGHESTMODSEQ and message
	// count at the last sync: when STATUS answers the same values (and
	// the same UIDNEXT), nothing changed upstream (RFC 7162 §3.1.2.1).
	HighestModSeq uint64
	Exists        uint32
	Modseq        uint64
	Modified      time.Time
	SpecialUse    string
}

func msgKey(path string, uid uint32) []byte {
	return appendMsgKey(make([]byte, 0, len(path)+5), path, uid)
}

// appendMsgKey appends the msgs key of uid in path to b.
func appendMsgKey(b []byte, path string, uid uint32) []byte {
	b = append(b, path...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, uid)
}

// uidOfKey returns the folder path and UID of a msgs key.
func uidOfKey(k []byte) (path []byte, uid uint32, ok bool) {
	if len(k) < 5 || k[len(k)-5] != 0 {
		return nil, 0, false
	}
	return k[:len(k)-5], binary.BigEndian.Uint32(k[len(k)-4:]), true
}

func msgPrefix(path string) []byte { return append([]byte(path), 0) }

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func propKeyMsg(id uint64) []byte { return append([]byte{'m'}, idKey(id)...) }

func propKeyFolder(path string) []byte { return append([]byte{'f'}, path...) }

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// errNewerSchema is wrapped when an index was written by a newer
// davmail.
var errNewerSchema = errors.New("imap: index written by a newer davmail")

// openIndex opens (creating) the index file and checks its schema: a
// newer one is refused, version 1 is migrated, a file without a valid
// version is emptied.
func openIndex(path string) (*bolt.DB, error) {
	opts := &bolt.Options{
		Timeout: lockTimeout,
		// As in the Maildir index: the free list is rebuilt on open
		// rather than written at every commit.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
	if runtime.GOOS != "windows" { // where bbolt would grow the file to the mapping's size
		// Address space, not memory: the file grows into the mapping
		// instead of bbolt remapping (and copying its nodes) at every
		// doubling while a cold listing writes 100,000 records (a cold
		// 10,000-message listing: 0.97 → 0.90 s).
		opts.InitialMmapSize = 256 << 20
	}
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		return nil, fmt.Errorf("imap: index %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			v := b.Get(keySchema)
			if len(v) == 4 {
				switch ver := binary.BigEndian.Uint32(v); {
				case ver == schemaVersion:
					return nil
				case ver > schemaVersion:
					return fmt.Errorf("%w: schema version %d, this davmail knows %d; upgrade davmail, or delete the file to rebuild the index from upstream (new message IDs, dead properties lost)",
						errNewerSchema, ver, schemaVersion)
				case ver == 1:
					return migrateJSONMsgs(tx)
				}
			}
		}
		for _, name := range [][]byte{bucketMeta, bucketFolders, bucketMsgs, bucketProps, bucketStructs} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("imap: index %s: %w", path, err)
	}
	return db, nil
}

// migrateJSONMsgs upgrades an index of schema 1 to 2: each message
// record, JSON there, is re-encoded as a binary record. It runs in the
// opening write transaction: a failure leaves the old index untouched.
// A record that does not decode is dropped (its message is fetched again
// at the next sync of the folder, as in schema 1 an unreadable index was
// rebuilt).
func migrateJSONMsgs(tx *bolt.Tx) error {
	mb := tx.Bucket(bucketMsgs)
	type kv struct{ k, v []byte }
	var recs []kv
	var bad [][]byte
	var a recArena
	err := mb.ForEach(func(k, v []byte) error {
		path, uid, ok := uidOfKey(k)
		var m mailbox.Message
		if !ok || json.Unmarshal(v, &m) != nil {
			bad = append(bad, append([]byte(nil), k...))
			return nil
		}
		m.Folder, m.UID = string(path), uid
		start := len(a.buf)
		a.buf = encodeMsg(a.buf, &m)
		recs = append(recs, kv{append([]byte(nil), k...), a.buf[start:len(a.buf):len(a.buf)]})
		return nil
	})
	if err != nil {
		return err
	}
	// Written after the walk: bbolt does not allow changes during
	// ForEach.
	for _, r := range recs {
		if err := mb.Put(r.k, r.v); err != nil {
			return err
		}
	}
	for _, k := range bad {
		if err := mb.Delete(k); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion))
}

// loadIndex reads the whole index into memory.
func loadIndex(db *bolt.DB) (meta metaRec, folders map[string]*folder, err error) {
	folders = map[string]*folder{}
	err = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyState); v != nil {
			if err := json.Unmarshal(v, &meta); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketFolders).ForEach(func(k, v []byte) error {
			f := &folder{path: string(k), byName: map[string]uint32{}}
			if err := json.Unmarshal(v, &f.folderRec); err != nil {
				return err
			}
			if f.Exists > 0 {
				// A hint: the count at the last sync.
				f.msgs = make([]mailbox.Message, 0, f.Exists)
				f.byName = make(map[string]uint32, f.Exists)
			}
			folders[f.path] = f
			return nil
		}); err != nil {
			return err
		}
		props := tx.Bucket(bucketProps)
		var zr recReader
		var cur *folder // keys sort by path: the folder of the previous record, mostly
		var pk []byte
		// Keys sort by path then UID, so each folder's messages come in
		// List order.
		return tx.Bucket(bucketMsgs).ForEach(func(k, v []byte) error {
			path, uid, ok := uidOfKey(k)
			if !ok {
				return fmt.Errorf("%w: key %q", errRecord, k)
			}
			if cur == nil || cur.path != string(path) {
				if cur = folders[string(path)]; cur == nil {
					return nil // an orphan of an interrupted folder delete or first sync
				}
			}
			m, err := decodeMsg(&zr, v, uid, cur.path)
			if err != nil {
				return fmt.Errorf("message %d of %q: %w", uid, path, err)
			}
			pk = binary.BigEndian.AppendUint64(append(pk[:0], 'm'), m.ID)
			m.HasDeadProps = props.Get(pk) != nil
			cur.msgs = append(cur.msgs, m)
			cur.byName[m.Name] = m.UID
			return nil
		})
	})
	return meta, folders, err
}
