package maildir

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// TestStructureIndexed: the structure of every corpus message is in the
// index after the first listing, identical to a fresh scan of its file,
// and answering Structure opens no message file.
func TestStructureIndexed(t *testing.T) {
	dir := cachedCorpus(t)
	s := openStore(t, dir, t.TempDir(), false)
	defer s.Close()
	ctx := context.Background()
	mb := mustMailbox(t, s, "alice")
	fs, err := mb.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []mailbox.Message
	for _, f := range fs {
		msgs = append(msgs, mustList(t, mb, f.Path)...)
	}
	if len(msgs) < 20 {
		t.Fatalf("corpus has only %d messages for alice", len(msgs))
	}
	before := s.Stats()
	for _, m := range msgs {
		st, err := mb.Structure(ctx, m.Folder, m.Name)
		if err != nil {
			t.Fatalf("Structure(%q, %q): %v", m.Folder, m.Name, err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "alice", "Maildir", fileOf(t, s, "alice", m.Folder, m.ID)))
		if err != nil {
			t.Fatal(err)
		}
		want, err := convert.Scan(bytes.NewReader(raw), convert.ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st.Parts, want.Parts) || !reflect.DeepEqual(st.Problems, want.Problems) {
			t.Errorf("%s/%s: indexed structure differs from a fresh scan:\n got %+v\nwant %+v", m.Folder, m.Name, st, want)
		}
	}
	after := s.Stats()
	if after.StructFills != before.StructFills || after.Opened != before.Opened || after.Parsed != before.Parsed {
		t.Errorf("Structure scanned or opened files: stats before %+v, after %+v", before, after)
	}
}

// TestStructureMigration: an index from before the structs bucket
// (schema 2) is migrated; a structure missing from the index is scanned
// once, on first use, and kept.
func TestStructureMigration(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	s := openStore(t, root, index, true)
	mb := mustMailbox(t, s, "alice")
	ctx := context.Background()
	raw := "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n"
	m, err := mb.Append(ctx, "INBOX", strings.NewReader(raw), mailbox.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a schema 2 index: no structs bucket.
	db, err := bolt.Open(filepath.Join(index, "alice.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketStructs); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 2))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openStore(t, root, index, false)
	defer s.Close()
	mb = mustMailbox(t, s, "alice")
	for i := range 3 {
		st, err := mb.Structure(ctx, "INBOX", m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Parts) != 2 || st.Parts[1].FileName != "a.png" || st.Parts[1].DecodedSize != 6 {
			t.Fatalf("call %d: structure %+v", i, st.Parts)
		}
	}
	if n := s.Stats().StructFills; n != 1 {
		t.Errorf("StructFills = %d after three calls, want 1 (scanned once, then kept)", n)
	}
}

func FuzzStructureRecord(f *testing.F) {
	for _, raw := range []string{
		"",
		"Subject: a\r\n\r\nbody",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=x.bin\r\n\r\nx\r\n--b--\r\n",
	} {
		st, err := convert.Scan(strings.NewReader(raw), convert.ScanOptions{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeStructure(nil, &mailbox.Structure{Parts: st.Parts, Problems: st.Problems}))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		st, err := decodeStructure(rec)
		if err != nil {
			return
		}
		// What decodes encodes back to a record that decodes the same.
		again, err := decodeStructure(encodeStructure(nil, st))
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, st)
		}
	})
}
