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
// Records are JSON: the index is read once when the mailbox is opened and
// written per change, so the encoding is not on a hot path, and JSON keeps
// the file inspectable.

// schemaVersion is the layout of the index file; another version is
// discarded and rebuilt from upstream (IDs and names then start afresh,
// as after a UIDVALIDITY change).
const schemaVersion = 1

var (
	bucketMeta    = []byte("meta")    // keyState → metaRec, keySchema → version
	bucketFolders = []byte("folders") // path → folderRec
	bucketMsgs    = []byte("msgs")    // path "\x00" UID (4 bytes BE) → mailbox.Message (JSON)
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
	k := make([]byte, 0, len(path)+5)
	k = append(k, path...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uid)
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

// openIndex opens (creating) the index file and checks its schema; a
// file of another schema is emptied.
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
			if len(v) == 4 && binary.BigEndian.Uint32(v) == schemaVersion {
				return nil
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
			folders[f.path] = f
			return nil
		}); err != nil {
			return err
		}
		props := tx.Bucket(bucketProps)
		// Keys sort by path then UID, so each folder's messages come in
		// List order.
		return tx.Bucket(bucketMsgs).ForEach(func(k, v []byte) error {
			var m mailbox.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			f := folders[m.Folder]
			if f == nil {
				return nil // an orphan of an interrupted folder delete
			}
			m.HasDeadProps = props.Get(propKeyMsg(m.ID)) != nil
			f.msgs = append(f.msgs, m)
			f.byName[m.Name] = m.UID
			return nil
		})
	})
	return meta, folders, err
}
