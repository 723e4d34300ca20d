package imap

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// sampleMsgs are index entries covering every field of a record: zones,
// zero times, keywords, non-ASCII strings, both bits.
func sampleMsgs() []mailbox.Message {
	paris := time.FixedZone("", 3600)
	return []mailbox.Message{
		{
			ID: 1, UID: 7, Flags: mailbox.FlagSeen | mailbox.FlagFlagged, Folder: "INBOX", Name: "Hello.EML",
			Size: 1234, Keywords: []string{"$Label1", "custom"},
			InternalDate: time.Date(2024, 3, 1, 10, 0, 0, 0, paris),
			Modified:     time.Date(2025, 1, 2, 3, 4, 5, 6789, time.UTC), Modseq: 42,
			Envelope: mailbox.Envelope{
				Subject: "Grüße aus Köln", From: "Ann <a@example.org>", To: "b@example.org, c@example.org",
				Cc: "", Date: time.Date(2024, 3, 1, 9, 59, 0, 0, time.FixedZone("", -5*3600)),
				MessageID: "<x@y>", ContentType: "multipart/mixed", HasAttachments: true,
			},
		},
		{ID: 1 << 40, UID: 1<<32 - 1, Folder: "Archive/2024", Name: "a", Envelope: mailbox.Envelope{ContentType: "text/plain"}},
	}
}

// sameMsg compares messages with times by instant and zone offset.
func sameMsg(t *testing.T, got, want mailbox.Message) {
	t.Helper()
	for _, p := range [][2]time.Time{{got.InternalDate, want.InternalDate}, {got.Modified, want.Modified}, {got.Envelope.Date, want.Envelope.Date}} {
		_, og := p[0].Zone()
		_, ow := p[1].Zone()
		if !p[0].Equal(p[1]) || og != ow || p[0].IsZero() != p[1].IsZero() {
			t.Errorf("time %v, want %v", p[0], p[1])
		}
	}
	got.InternalDate, got.Modified, got.Envelope.Date = want.InternalDate, want.Modified, want.Envelope.Date
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestMsgRecord(t *testing.T) {
	var zr recReader
	for _, m := range sampleMsgs() {
		rec := encodeMsg(nil, &m)
		got, err := decodeMsg(&zr, rec, m.UID, m.Folder)
		if err != nil {
			t.Fatalf("decode %q: %v", m.Name, err)
		}
		sameMsg(t, got, m)
		// Every truncation and a trailing byte fail cleanly.
		for i := range rec {
			if _, err := decodeMsg(&zr, rec[:i], m.UID, m.Folder); !errors.Is(err, errRecord) {
				t.Errorf("%q cut at %d of %d: %v, want errRecord", m.Name, i, len(rec), err)
			}
		}
		if _, err := decodeMsg(&zr, append(rec, 'x'), m.UID, m.Folder); !errors.Is(err, errRecord) {
			t.Errorf("%q with a trailing byte: %v", m.Name, err)
		}
	}
	// The arena keeps every value it handed out intact while it grows.
	var a recArena
	var vals [][]byte
	msgs := sampleMsgs()
	for i := 0; i < 100; i++ { // enough appends to move the buffer several times
		m := msgs[i%len(msgs)]
		start := len(a.buf)
		a.buf = encodeMsg(a.buf, &m)
		vals = append(vals, a.buf[start:len(a.buf):len(a.buf)])
	}
	for i, v := range vals {
		if !bytes.Equal(v, encodeMsg(nil, &msgs[i%len(msgs)])) {
			t.Fatalf("arena value %d changed", i)
		}
	}
}

// writeV1Index writes an index in schema 1's layout (every record JSON)
// holding msgs in INBOX, and returns its directory.
func writeV1Index(t *testing.T, user string, schema uint32, msgs []mailbox.Message) string {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, user+".db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketFolders, bucketMsgs, bucketProps, bucketStructs} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, schema)); err != nil {
			return err
		}
		if err := putJSON(meta, keyState, &metaRec{LastID: 1 << 41, Modseq: 50}); err != nil {
			return err
		}
		for _, path := range []string{"INBOX", "Archive/2024"} {
			if err := putJSON(tx.Bucket(bucketFolders), []byte(path), &folderRec{UIDValidity: 9, UIDNext: 100, Exists: 1}); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			if err := putJSON(tx.Bucket(bucketMsgs), msgKey(m.Folder, m.UID), &m); err != nil {
				return err
			}
		}
		// A record schema 1 could not have decoded either: dropped.
		if err := tx.Bucket(bucketMsgs).Put(msgKey("INBOX", 99), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket(bucketProps).Put(propKeyMsg(msgs[0].ID), []byte(`[]`))
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// offlineStore is a store whose upstream is never reached: the calls
// used answer from the index.
func offlineStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := New(Options{Dialer: &Dialer{Addr: "127.0.0.1:1"}, IndexDir: dir, Credentials: staticCreds{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestIndexMigration opens a schema 1 index: its JSON message records
// become binary ones with the same content, IDs and dead properties.
func TestIndexMigration(t *testing.T) {
	want := sampleMsgs()
	dir := writeV1Index(t, "alice", 1, want)
	s := offlineStore(t, dir)
	mb, err := s.Mailbox(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		got, err := mb.StatID(t.Context(), w.ID)
		if err != nil {
			t.Fatalf("message %d after migration: %v", w.ID, err)
		}
		w.HasDeadProps = i == 0
		sameMsg(t, got, w)
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, "alice.db"), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); binary.BigEndian.Uint32(v) != schemaVersion {
			t.Errorf("schema after migration: %x", v)
		}
		n := 0
		tx.Bucket(bucketMsgs).ForEach(func(k, v []byte) error {
			n++
			if json.Valid(v) || v[0] != msgRecVersion {
				t.Errorf("record %q not migrated: %q", k, v)
			}
			return nil
		})
		if n != len(want) {
			t.Errorf("%d message records after migration, want %d (the unreadable one dropped)", n, len(want))
		}
		return nil
	})
}

// TestIndexNewerSchema refuses an index of a newer davmail and leaves
// it as it was.
func TestIndexNewerSchema(t *testing.T) {
	dir := writeV1Index(t, "alice", schemaVersion+1, sampleMsgs())
	s := offlineStore(t, dir)
	if _, err := s.Mailbox(t.Context(), "alice"); !errors.Is(err, errNewerSchema) {
		t.Fatalf("newer index opened: %v, want errNewerSchema", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "alice.db"), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); binary.BigEndian.Uint32(v) != schemaVersion+1 {
			t.Errorf("schema changed to %x", v)
		}
		if v := tx.Bucket(bucketMsgs).Get(msgKey("INBOX", 7)); !json.Valid(v) {
			t.Errorf("record rewritten: %q", v)
		}
		return nil
	})
}

func TestForEachUID(t *testing.T) {
	var set imapv2.UIDSet
	set.AddRange(3, 5)
	set.AddNum(9)
	set.AddRange(1<<32-2, 1<<32-1)
	var got []uint32
	forEachUID(set, func(u uint32) { got = append(got, u) })
	if want := []uint32{3, 4, 5, 9, 1<<32 - 2, 1<<32 - 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("forEachUID: %v, want %v", got, want)
	}
}

// TestAttachments lists messages of every shape cold and checks
// HasAttachments and ContentType against convert.ScanEnvelope of the
// whole message (what the Maildir backend indexes), and that only the
// multipart ones cost a BODYSTRUCTURE FETCH.
func TestAttachments(t *testing.T) {
	s := newTestStore(t, "")
	defer s.Close()
	ctx := testCtx(t)
	login := s.loginName("alice")
	c := rawClient(t, login)
	const hdr = "From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
	cases := []struct {
		name string
		raw  string
		want bool
	}{
		{"plain", hdr + "Content-Type: text/plain\r\n\r\nhi\r\n", false},
		{"pdf-named", hdr + "Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0K\r\n", true},
		{"disposition", hdr + "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nx\r\n", true},
		{"text-named-inline", hdr + "Content-Type: text/plain; name=\"a.txt\"\r\n\r\nx\r\n", false},
		{"mixed", hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=p.png\r\n\r\nxx\r\n--b--\r\n", true},
		{"related-inline", hdr + "Content-Type: multipart/related; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<img src=cid:i>\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <i>\r\n\r\nxx\r\n--b--\r\n", false},
		{"alternative", hdr + "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>t</p>\r\n--b--\r\n", false},
	}
	for _, tc := range cases {
		env, err := convert.ScanEnvelope(bytes.NewReader([]byte(tc.raw)))
		if err != nil || env.HasAttachments != tc.want {
			t.Fatalf("%s: the reference says %v (%v), the case %v", tc.name, env.HasAttachments, err, tc.want)
		}
		appendRaw(t, c, "INBOX", []byte(tc.raw))
	}
	mb, _ := s.Mailbox(ctx, "alice")
	before := s.Stats()
	l, err := mb.List(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != len(cases) {
		t.Fatalf("%d messages listed, want %d", len(l), len(cases))
	}
	for i, tc := range cases {
		env, _ := convert.ScanEnvelope(bytes.NewReader([]byte(tc.raw)))
		if l[i].Envelope.HasAttachments != tc.want || l[i].Envelope.ContentType != env.ContentType {
			t.Errorf("%s: HasAttachments %v ContentType %q, want %v %q", tc.name, l[i].Envelope.HasAttachments, l[i].Envelope.ContentType, tc.want, env.ContentType)
		}
	}
	// One metadata FETCH, one BODYSTRUCTURE FETCH for the three
	// multipart messages.
	if n := s.Stats().Fetches - before.Fetches; n != 2 {
		t.Errorf("%d FETCHes for the cold listing, want 2", n)
	}
}

// TestInterruptedSync removes a message record and the folder's sync
// state from the index, as a sync stopped before writing them leaves it:
// the next listing finds the message again (UID SEARCH, then a FETCH of
// what the index lacks) with the records of the others untouched.
func TestInterruptedSync(t *testing.T) {
	d := needDovecot(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	prefix := "intr" + t.Name()
	open := func() *Store {
		s, err := New(Options{Dialer: &Dialer{Addr: d.Addr}, IndexDir: dir, Credentials: staticCreds{},
			LoginName: func(u string) string { return prefix + "-" + u }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c := rawClient(t, prefix+"-alice")
	for _, sub := range []string{"one", "two", "three"} {
		appendRaw(t, c, "INBOX", msg(sub, "x"))
	}
	s := open()
	mb, _ := s.Mailbox(ctx, "alice")
	first, err := mb.List(ctx, mailbox.Inbox)
	if err != nil || len(first) != 3 {
		t.Fatalf("first listing: %v %v", len(first), err)
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, "alice.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMsgs).Delete(msgKey(mailbox.Inbox, first[1].UID)); err != nil {
			return err
		}
		var fr folderRec
		if err := json.Unmarshal(tx.Bucket(bucketFolders).Get([]byte(mailbox.Inbox)), &fr); err != nil {
			return err
		}
		fr.Exists, fr.HighestModSeq = 0, 0
		return putJSON(tx.Bucket(bucketFolders), []byte(mailbox.Inbox), &fr)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	mb, _ = s.Mailbox(ctx, "alice")
	l, err := mb.List(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 3 || l[1].UID != first[1].UID || l[1].Envelope.Subject != "two" || l[0].ID != first[0].ID || l[2].ID != first[2].ID {
		t.Errorf("after the interrupted sync: %+v", l)
	}
	// And it is in the index now: a restart lists it without a FETCH.
	s.Close()
	s = open()
	mb, _ = s.Mailbox(ctx, "alice")
	if l, err := mb.List(ctx, mailbox.Inbox); err != nil || len(l) != 3 || s.Stats().Fetches != 0 {
		t.Errorf("after a restart: %d messages, %d FETCHes, %v", len(l), s.Stats().Fetches, err)
	}
}
