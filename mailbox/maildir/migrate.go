package maildir

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migrateUIDs converts an index from schema 1 to schema 2, in place,
// without reading any message file. In every folder the message records,
// keyed by ID in schema 1, are keyed by UID 1…n in ID order (arrival
// order, the order schema 1 listed them in), the ID moving into the
// record; the folder gets UIDNext n+1 and a fresh UIDVALIDITY. Schema 1
// had no UIDs, so no client can hold one; the fresh UIDVALIDITY still
// tells any that cached something keyed by the old value to start over.
//
// A record that cannot be converted is dropped and its folder marked for
// a rescan, which finds the file again as a new message, as the loader
// does with an unreadable record. An unreadable mailbox state drops the
// whole index, which is then rebuilt from the Maildir.
func migrateUIDs(tx *bolt.Tx) error {
	meta, folders, msgs, props := tx.Bucket(bucketMeta), tx.Bucket(bucketFolders), tx.Bucket(bucketMsgs), tx.Bucket(bucketProps)
	if folders == nil || msgs == nil || props == nil {
		return resetDB(tx) // not a complete index: nothing worth keeping
	}
	state, err := decodeMeta(meta.Get(keyState))
	if err != nil {
		return resetDB(tx)
	}
	type rec struct{ k, v []byte }
	var recs []rec
	err = folders.ForEach(func(k, v []byte) error {
		recs = append(recs, rec{k, v})
		return nil
	})
	if err != nil {
		return err
	}
	for _, fr := range recs {
		f, err := decodeFolderVersion(fr.v, 1)
		if err != nil || len(fr.k) != 4 {
			continue // left for the loader, which drops unreadable folder records
		}
		n, ok, err := migrateFolderMsgs(msgs, props, fr.k)
		if err != nil {
			return err
		}
		if !ok {
			f.scanned = 0 // some records were dropped: find their files again
		}
		f.uidNext = n + 1
		f.uidValidity = nextUIDValidity(&state)
		f.count = uint64(n)
		if err := folders.Put(fr.k, encodeFolder(nil, &f)); err != nil {
			return err
		}
	}
	return meta.Put(keyState, encodeMeta(&state))
}

// migrateFolderMsgs rekeys the schema 1 message records of one folder
// by UID. It returns the number of records kept and whether every record
// was kept.
func migrateFolderMsgs(msgs, props *bolt.Bucket, fid []byte) (n uint32, all bool, err error) {
	old := msgs.Bucket(fid)
	if old == nil {
		return 0, true, nil
	}
	// Converted in memory first: a bucket must not change while it is
	// iterated. A version 2 record is the version 1 record with its
	// version byte raised and the ID (the schema 1 key) inserted after
	// the fixed bytes (version, bits, flags).
	var arena []byte
	var ends []int
	var dropped [][]byte // IDs of records dropped, for their dead properties
	all = true
	c := old.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			continue // a nested bucket: not part of the layout
		}
		if len(k) != 8 || len(v) < 3 || v[0] != 1 || binary.BigEndian.Uint64(k) == 0 {
			all = false
			if len(k) == 8 {
				dropped = append(dropped, append([]byte{'m'}, k...))
			}
			continue
		}
		arena = append(arena, msgVersion, v[1], v[2])
		arena = binary.AppendUvarint(arena, binary.BigEndian.Uint64(k))
		arena = append(arena, v[3:]...)
		ends = append(ends, len(arena))
	}
	if uint64(len(ends)) >= 1<<32-1 {
		return 0, false, fmt.Errorf("maildir: migrating the index: %d messages in one folder", len(ends))
	}
	if err := msgs.DeleteBucket(fid); err != nil {
		return 0, false, err
	}
	for _, k := range dropped {
		if err := props.Delete(k); err != nil {
			return 0, false, err
		}
	}
	bk, err := msgs.CreateBucket(fid)
	if err != nil {
		return 0, false, err
	}
	bk.FillPercent = 0.9 // keys ascend: see txw.msgBucket
	start := 0
	for i, end := range ends {
		// The arena is not written after this, so its slices stay valid
		// until the commit, as bbolt needs.
		if err := bk.Put(uidKey(uint32(i+1)), arena[start:end:end]); err != nil {
			return 0, false, err
		}
		start = end
	}
	return uint32(len(ends)), all, nil
}
