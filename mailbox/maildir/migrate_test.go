package maildir

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"
)

// The schema 1 record encoders, verbatim from the davmail that wrote
// schema 1 indexes (recVersion was 1), so that the migration test reads
// what that davmail wrote, not what this one would.

func encodeMsgV1(b []byte, m *mailbox.Message, r fileRef) []byte {
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
	b = append(b, 1, bits, byte(m.Flags))
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

func encodeFolderV1(b []byte, f *folderRec) []byte {
	var bits byte
	if f.onDisk {
		bits |= frOnDisk
	}
	if f.hasProps {
		bits |= frHasProps
	}
	b = append(b, 1, bits)
	b = binary.AppendUvarint(b, uint64(f.uidValidity))
	b = binary.AppendUvarint(b, f.modseq)
	b = appendTime(b, f.modified)
	b = binary.AppendVarint(b, f.curMtime)
	b = binary.AppendVarint(b, f.newMtime)
	b = binary.AppendVarint(b, f.scanned)
	b = binary.AppendUvarint(b, f.count)
	b = binary.AppendUvarint(b, uint64(len(f.path)))
	return append(b, f.path...)
}

// v1Msg is a message of a hand-built schema 1 index: its file, written
// into the folder's cur/, and its record. A record of nil bytes stands
// for an unreadable one.
type v1Msg struct {
	id      uint64
	file    string // name in cur/
	subject string
	flags   mailbox.Flags
	props   []mailbox.Prop
	garbage bool // the record is unreadable
}

type v1Folder struct {
	fid   uint32
	path  string
	uidv  uint32
	msgs  []v1Msg
	props []mailbox.Prop
}

// messageBytes is the content of a test message file.
func messageBytes(subject string) []byte {
	return []byte("From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")
}

// writeV1Index writes a Maildir for alice under root with the given
// folders and, at index, the schema 1 index the davmail of schema 1
// would have written for it: every folder fully scanned, so that only a
// change on disk (or a dropped record) makes the new davmail look at it.
func writeV1Index(t *testing.T, root, index string, folders []v1Folder) {
	t.Helper()
	md := filepath.Join(root, "alice", "Maildir")
	dirs := map[uint32]string{}
	for _, f := range folders {
		dir := md
		if f.path != mailbox.Inbox {
			dn, err := dirName(f.path)
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(md, dn)
		}
		dirs[f.fid] = dir
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range f.msgs {
			if err := os.WriteFile(filepath.Join(dir, "cur", m.file), messageBytes(m.subject), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	mtime := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.ModTime().UnixNano()
	}
	// A scan time comfortably past every mtime: the folders count as
	// scanned after their last change, beyond the time-stamp granularity.
	scanned := time.Now().Add(5 * time.Second).UnixNano()
	db, err := bolt.Open(filepath.Join(index, "alice.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		buckets := map[string]*bolt.Bucket{}
		for _, name := range [][]byte{bucketMeta, bucketFolders, bucketMsgs, bucketProps} {
			bk, err := tx.CreateBucket(name)
			if err != nil {
				return err
			}
			buckets[string(name)] = bk
		}
		meta := metaRec{lastFid: 0, lastUIDV: 1600000000, modseq: 100, rootMtime: mtime(md), rootScanned: scanned, maildir: md}
		if err := buckets["meta"].Put(keySchema, binary.BigEndian.AppendUint32(nil, 1)); err != nil {
			return err
		}
		root := folderRec{}
		if err := buckets["folders"].Put(fidKey(0), encodeFolderV1(nil, &root)); err != nil {
			return err
		}
		for _, f := range folders {
			meta.lastFid = max(meta.lastFid, f.fid)
			rec := folderRec{path: f.path, onDisk: true, hasProps: len(f.props) > 0, uidValidity: f.uidv, modseq: 90,
				modified: time.Unix(1700000000, 0), curMtime: mtime(filepath.Join(dirs[f.fid], "cur")),
				newMtime: mtime(filepath.Join(dirs[f.fid], "new")), scanned: scanned, count: uint64(len(f.msgs))}
			if err := buckets["folders"].Put(fidKey(f.fid), encodeFolderV1(nil, &rec)); err != nil {
				return err
			}
			if len(f.props) > 0 {
				if err := buckets["props"].Put(folderPropKey(f.fid), encodeProps(nil, f.props)); err != nil {
					return err
				}
			}
			bk, err := buckets["msgs"].CreateBucket(fidKey(f.fid))
			if err != nil {
				return err
			}
			for i, m := range f.msgs {
				meta.lastID = max(meta.lastID, m.id)
				var v []byte
				if m.garbage {
					v = []byte{1, 0xff}
				} else {
					r, ok := newFileRef(m.file, false)
					if !ok {
						t.Fatalf("bad file name %q", m.file)
					}
					msg := mailbox.Message{
						ID: m.id, Name: m.subject + ".EML", Size: int64(len(messageBytes(m.subject))), Flags: m.flags,
						InternalDate: time.Unix(1700000000+int64(i), 0), Modified: time.Unix(1700000000+int64(i), 0), Modseq: uint64(10 + i),
						Envelope:     mailbox.Envelope{Subject: m.subject, From: "a@example.org"},
						HasDeadProps: len(m.props) > 0,
					}
					v = encodeMsgV1(nil, &msg, r)
				}
				if err := bk.Put(binary.BigEndian.AppendUint64(nil, m.id), v); err != nil {
					return err
				}
				if len(m.props) > 0 {
					if err := buckets["props"].Put(msgPropKey(m.id), encodeProps(nil, m.props)); err != nil {
						return err
					}
				}
			}
		}
		return buckets["meta"].Put(keyState, encodeMeta(&meta))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV1 opens a data folder whose index an older davmail wrote
// (schema 1, no UIDs): the index is migrated in place, without parsing a
// message file, each folder's messages getting UIDs 1…n in ID order, and
// everything else (IDs, names, flags, dead properties) staying.
func TestMigrateV1(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	msgProps := []mailbox.Prop{{Space: "http://schemas.microsoft.com/mapi/proptag/", Local: "x0e070003", XML: "9"}}
	folderProps := []mailbox.Prop{{Space: "urn:x", Local: "color", XML: "red"}}
	folders := []v1Folder{
		// File order (by base) differs from ID order on purpose: UIDs
		// follow the IDs, the order schema 1 listed in.
		{fid: 1, path: mailbox.Inbox, uidv: 1600000001, msgs: []v1Msg{
			{id: 1005, file: "1700000001.M1P1.old:2,S", subject: "first file", flags: mailbox.FlagSeen},
			{id: 1001, file: "1700000002.M2P1.old:2,", subject: "second file"},
			{id: 1003, file: "1700000003.M3P1.old:2,F", subject: "third file", flags: mailbox.FlagFlagged, props: msgProps},
		}},
		{fid: 2, path: "Sent", uidv: 1600000002, props: folderProps, msgs: []v1Msg{
			{id: 1004, file: "1700000004.M4P1.old:2,S", subject: "sent b", flags: mailbox.FlagSeen},
			{id: 1002, file: "1700000005.M5P1.old:2,S", subject: "sent a", flags: mailbox.FlagSeen},
		}},
		{fid: 3, path: "Junk", uidv: 1600000003, msgs: []v1Msg{
			{id: 999, file: "1700000006.M6P1.old:2,", subject: "unreadable record", garbage: true, props: msgProps},
		}},
		{fid: 4, path: "Empty", uidv: 1600000004},
	}
	writeV1Index(t, root, index, folders)
	ctx := context.Background()

	s := openStore(t, root, index, false)
	mb := mustMailbox(t, s, "alice")
	want := map[string][]uint64{mailbox.Inbox: {1001, 1003, 1005}, "Sent": {1002, 1004}}
	uidvs := map[string]uint32{}
	for _, f := range folders {
		if f.path == "Junk" {
			continue // its dropped record makes it rescan: looked at last
		}
		fi, err := mb.Folder(ctx, f.path)
		if err != nil {
			t.Fatal(err)
		}
		l := mustList(t, mb, f.path)
		if got := idsOf(l); !slices.Equal(got, want[f.path]) {
			t.Errorf("%s: IDs %v in List order, want %v", f.path, got, want[f.path])
		}
		for i, m := range l {
			if m.UID != uint32(i+1) {
				t.Errorf("%s: message %d has UID %d, want %d", f.path, m.ID, m.UID, i+1)
			}
			if sm, err := mb.StatUID(ctx, f.path, m.UID); err != nil || sm.ID != m.ID {
				t.Errorf("%s: StatUID(%d) = %d, %v", f.path, m.UID, sm.ID, err)
			}
		}
		if fi.UIDNext != uint32(len(l)+1) {
			t.Errorf("%s: UIDNext %d, want %d", f.path, fi.UIDNext, len(l)+1)
		}
		if fi.UIDValidity == f.uidv || fi.UIDValidity == 0 {
			t.Errorf("%s: UIDValidity %d, want a fresh one (was %d)", f.path, fi.UIDValidity, f.uidv)
		}
		uidvs[f.path] = fi.UIDValidity
	}
	if st := s.Stats(); st.Parsed != 0 || st.Loaded != 5 {
		t.Errorf("migration: %+v; want 5 records loaded and no file parsed", st)
	}
	// Names, flags, content and dead properties survived.
	third, err := mb.Stat(ctx, mailbox.Inbox, "third file.EML")
	if err != nil || third.ID != 1003 || third.Flags != mailbox.FlagFlagged || !third.HasDeadProps {
		t.Errorf("migrated message: %+v, %v", third, err)
	}
	if got := mustReadAll(t, mb, mailbox.Inbox, "third file.EML"); string(got) != string(messageBytes("third file")) {
		t.Errorf("migrated message content %q", got)
	}
	if p, err := mb.DeadProps(ctx, mailbox.Inbox, "third file.EML"); err != nil || !slices.Equal(p, msgProps) {
		t.Errorf("migrated message props %+v, %v", p, err)
	}
	if p, err := mb.DeadProps(ctx, "Sent", ""); err != nil || !slices.Equal(p, folderProps) {
		t.Errorf("migrated folder props %+v, %v", p, err)
	}
	if got, err := mb.StatID(ctx, 1004); err != nil || got.Folder != "Sent" || got.UID != 2 {
		t.Errorf("StatID(1004) = %+v, %v", got, err)
	}

	// The unreadable record is dropped with its dead properties; the
	// rescan finds its file as a new message.
	junk := mustList(t, mb, "Junk")
	if len(junk) != 1 || junk[0].Envelope.Subject != "unreadable record" || junk[0].UID != 1 || junk[0].ID <= 1005 || junk[0].HasDeadProps {
		t.Errorf("Junk after migration: %+v", junk)
	}
	if st := s.Stats(); st.Parsed != 1 {
		t.Errorf("parsed %d files; want 1, the file of the dropped record", st.Parsed)
	}

	// New arrivals go on above; the index is schema 2 now.
	m, err := mb.Append(ctx, mailbox.Inbox, strings.NewReader("Subject: new\r\n\r\nx\r\n"), mailbox.AppendOptions{})
	if err != nil || m.UID != 4 {
		t.Errorf("Append after migration: UID %d, %v; want 4", m.UID, err)
	}
	lists := map[string][]mailbox.Message{}
	for _, p := range []string{mailbox.Inbox, "Sent", "Junk", "Empty"} {
		lists[p] = mustList(t, mb, p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, filepath.Join(index, "alice.db"), schemaVersion, 999)

	// Opened again: nothing migrates twice, nothing changes, nothing is
	// parsed.
	s = openStore(t, root, index, false)
	defer s.Close()
	mb = mustMailbox(t, s, "alice")
	for p, before := range lists {
		l := mustList(t, mb, p)
		if !slices.EqualFunc(l, before, func(a, b mailbox.Message) bool { return a.ID == b.ID && a.UID == b.UID && a.Name == b.Name }) {
			t.Errorf("%s after reopening: %+v, before %+v", p, l, before)
		}
		if v, ok := uidvs[p]; ok {
			if fi, err := mb.Folder(ctx, p); err != nil || fi.UIDValidity != v {
				t.Errorf("%s: UIDValidity %d after reopening, %d before (%v)", p, fi.UIDValidity, v, err)
			}
		}
	}
	if st := s.Stats(); st.Parsed != 0 {
		t.Errorf("reopening the migrated index parsed %d files", st.Parsed)
	}
}

// checkSchema checks the schema version of an index file and that the
// dead properties of message goneID are gone.
func checkSchema(t *testing.T, path string, want uint32, goneID uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); len(v) != 4 || binary.BigEndian.Uint32(v) != want {
			t.Errorf("schema %x, want %d", v, want)
		}
		if v := tx.Bucket(bucketProps).Get(msgPropKey(goneID)); v != nil {
			t.Errorf("dead properties of the dropped record %d are still there", goneID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func idsOf(l []mailbox.Message) []uint64 {
	out := make([]uint64, len(l))
	for i, m := range l {
		out[i] = m.ID
	}
	return out
}

func mustReadAll(t *testing.T, mb mailbox.Mailbox, folder, name string) []byte {
	t.Helper()
	c, err := mb.Open(context.Background(), folder, name)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", folder, name, err)
	}
	defer c.Close()
	b := make([]byte, c.Size())
	if _, err := c.ReadAt(b, 0); err != nil {
		t.Fatalf("reading %q: %v", name, err)
	}
	return b
}
