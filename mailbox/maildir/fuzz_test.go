package maildir

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/davmail/davmail/mailbox"
)

func TestMUTF7(t *testing.T) {
	for _, c := range []struct{ dec, enc string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"R&D", "R&-D"},
		{"日本語", "&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 §5.1.3's example
		{"😀 x", "&2D3eAA- x"},
		{"", ""},
	} {
		if got := encodeMUTF7(c.dec); got != c.enc {
			t.Errorf("encode(%q) = %q, want %q", c.dec, got, c.enc)
		}
		if got, ok := decodeMUTF7(c.enc); !ok || got != c.dec {
			t.Errorf("decode(%q) = %q, %v, want %q", c.enc, got, ok, c.dec)
		}
	}
	// Not canonical or not valid: refused.
	for _, bad := range []string{"&", "&AGE-", "&APw-&APw-", "&APw", "&2D0-", "&AP-", "a\x01", "&!-", "é"} {
		if got, ok := decodeMUTF7(bad); ok {
			t.Errorf("decode(%q) = %q, want refusal", bad, got)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "Entwürfe", "R&D", "日本語", "&", "a&b&c", "😀", "\x00", "\uFFFD", "Ä-Ö"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeMUTF7(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("encode(%q) = %q: not printable ASCII", s, enc)
			}
		}
		if utf8.ValidString(s) {
			if dec, ok := decodeMUTF7(enc); !ok || dec != s {
				t.Fatalf("round trip of %q: %q → %q, %v", s, enc, dec, ok)
			}
		}
		// Anything decoded is canonical: it encodes back to the input.
		if dec, ok := decodeMUTF7(s); ok {
			if !utf8.ValidString(dec) || encodeMUTF7(dec) != s {
				t.Fatalf("decode(%q) = %q, which encodes to %q", s, dec, encodeMUTF7(dec))
			}
		}
	})
}

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		name, base, info string
		ok               bool
	}{
		{"1700000001.M1P1.mkcorpus,S=1234,W=1260:2,FS", "1700000001.M1P1.mkcorpus,S=1234,W=1260", "FS", true},
		{"1700000001.M1P1.mkcorpus", "1700000001.M1P1.mkcorpus", "", true},
		{"1700000001.M1P1.x:2,", "1700000001.M1P1.x", "", true},
		{"1700000001.M1P1.x:2,Sab", "1700000001.M1P1.x", "Sab", true},
		{"1700000001.M1P1.x:1,experimental", "1700000001.M1P1.x", "", true},
		{".hidden", "", "", false},
		{":2,S", "", "", false},
		{"", "", "", false},
		{"a/b", "", "", false},
		{strings.Repeat("x", 256), "", "", false},
	} {
		base, info, ok := parseName(c.name)
		if base != c.base || info != c.info || ok != c.ok {
			t.Errorf("parseName(%q) = %q, %q, %v; want %q, %q, %v", c.name, base, info, ok, c.base, c.info, c.ok)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"1700000001.M1P1.mkcorpus,S=1234,W=1260:2,FS", "x", "x:2,", "x:1,2", ":", "a:2,b:2,c", ".x", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		base, info, ok := parseName(name)
		if !ok {
			return
		}
		if base == "" || !strings.HasPrefix(name, base) || strings.ContainsAny(base, ":/\x00") || base[0] == '.' {
			t.Fatalf("parseName(%q): bad base %q", name, base)
		}
		if info != "" && name != base+infoSep+info {
			t.Fatalf("parseName(%q): base %q info %q do not rebuild the name", name, base, info)
		}
		r, ok := newFileRef(name, false)
		if !ok || r.base() != base || r.info() != info {
			t.Fatalf("fileRef of %q: base %q info %q", name, r.base(), r.info())
		}
		// Rewriting flags keeps the base and every non-flag letter.
		for _, fl := range []mailbox.Flags{0, mailbox.FlagSeen | mailbox.FlagDraft, allFlags} {
			ni := mergeInfo(info, fl)
			b2, i2, ok := parseName(base + infoSep + ni)
			if len(base)+len(infoSep)+len(ni) <= nameMax && (!ok || b2 != base || i2 != ni || infoFlags(i2)&allFlags != fl) {
				t.Fatalf("mergeInfo(%q, %v) = %q: parses as %q %q %v", info, fl, ni, b2, i2, ok)
			}
			for i := 0; i < len(info); i++ {
				if c := info[i]; c > 0x20 && c < 0x7f && !strings.ContainsRune(flagLetters, rune(c)) && !strings.ContainsRune(ni, rune(c)) {
					t.Fatalf("mergeInfo(%q, %v) = %q lost %q", info, fl, ni, c)
				}
			}
		}
	})
}

func FuzzPathFromDir(f *testing.F) {
	for _, s := range []string{".Sent", ".Archive.2024", ".Entw&APw-rfe", ".INBOX.sub", ".INBOX", "..x", ".a..b", "cur", ".R&-D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, ok := pathFromDir(name)
		if !ok {
			return
		}
		// A folder path found on disk maps back to the same directory.
		dn, err := dirName(p)
		if err != nil && len(name) <= nameMax {
			t.Fatalf("pathFromDir(%q) = %q, whose dirName fails: %v", name, p, err)
		}
		if err == nil && dn != name {
			t.Fatalf("pathFromDir(%q) = %q, dirName gives %q", name, p, dn)
		}
	})
}

func sampleMessage() (mailbox.Message, fileRef) {
	r, _ := newFileRef("1700000001.M1P1.mkcorpus,S=1234,W=1260:2,FSa", false)
	return mailbox.Message{
		ID: 1700000000123456, UID: 42, Folder: "INBOX", Name: "Grüße.EML", Size: 1234, Flags: mailbox.FlagSeen | mailbox.FlagFlagged,
		InternalDate: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Modified: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Modseq: 77,
		Envelope: mailbox.Envelope{Subject: "Grüße", From: "A <a@example.com>", To: "b@example.com", Date: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
			MessageID: "<x@y>", ContentType: "multipart/mixed", HasAttachments: true},
		HasDeadProps: true,
	}, r
}

func TestRecordRoundTrip(t *testing.T) {
	m, r := sampleMessage()
	enc := encodeMsg(nil, &m, r)
	got, gr, err := decodeMsg(enc, m.UID, m.Folder)
	if err != nil || gr != r {
		t.Fatalf("decode: %v, ref %+v", err, gr)
	}
	if got.ID != m.ID || got.UID != m.UID || recordID(enc) != m.ID {
		t.Errorf("decoded ID %d UID %d (recordID %d), want %d %d", got.ID, got.UID, recordID(enc), m.ID, m.UID)
	}
	if !got.InternalDate.Equal(m.InternalDate) || !got.Modified.Equal(m.Modified) || !got.Envelope.Date.Equal(m.Envelope.Date) {
		t.Errorf("times: %+v", got)
	}
	got.InternalDate, got.Modified, got.Envelope.Date = m.InternalDate, m.Modified, m.Envelope.Date
	if got.Name != m.Name || got.Envelope != m.Envelope || got.Size != m.Size || got.Flags != m.Flags || got.Modseq != m.Modseq || !got.HasDeadProps {
		t.Errorf("decoded %+v, want %+v", got, m)
	}
	// A zero envelope date stays zero.
	m.Envelope.Date = time.Time{}
	got, _, _ = decodeMsg(encodeMsg(nil, &m, r), m.UID, m.Folder)
	if !got.Envelope.Date.IsZero() {
		t.Errorf("zero date decoded as %v", got.Envelope.Date)
	}
	// A record with ID 0 is refused (IDs start above 0).
	m.ID = 0
	if _, _, err := decodeMsg(encodeMsg(nil, &m, r), m.UID, m.Folder); err == nil {
		t.Errorf("a record with ID 0 decoded")
	}
	fr := folderRec{path: "Archive/2024", onDisk: true, hasProps: true, uidValidity: 1700000000, uidNext: 4000000000, modseq: 9, modified: m.Modified, curMtime: -1, newMtime: 5, scanned: 6}
	gf, err := decodeFolder(encodeFolder(nil, &fr))
	if err != nil || gf.path != fr.path || gf.uidValidity != fr.uidValidity || gf.uidNext != fr.uidNext || gf.curMtime != -1 || !gf.onDisk || !gf.hasProps || !gf.modified.Equal(fr.modified) {
		t.Errorf("folder record: %+v, %v", gf, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	m, r := sampleMessage()
	f.Add(encodeMsg(nil, &m, r))
	fr := folderRec{path: "Sent", onDisk: true, uidValidity: 1, uidNext: 7, modseq: 2}
	f.Add(encodeFolder(nil, &fr))
	f.Add(encodeFolderV1(nil, &fr))
	f.Add(encodeMsgV1(nil, &m, r))
	f.Add(encodeProps(nil, []mailbox.Prop{{Space: "DAV:", Local: "x", XML: "<a/>", Lang: "de"}}))
	f.Add(encodeMeta(&metaRec{lastID: 5, maildir: "/x"}))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Never a panic, whatever the index file holds; what decodes
		// encodes back to the same bytes.
		if m, r, err := decodeMsg(b, 1, "INBOX"); err == nil {
			if recordID(b) != m.ID {
				t.Fatalf("recordID %d, decodeMsg ID %d", recordID(b), m.ID)
			}
			if enc := encodeMsg(nil, &m, r); !bytes.Equal(enc, b) && validTimes(m) {
				m2, r2, err := decodeMsg(enc, 1, "INBOX")
				if err != nil || r2 != r || m2.Name != m.Name || m2.Size != m.Size || m2.ID != m.ID {
					t.Fatalf("message record does not round-trip")
				}
			}
		}
		for _, ver := range []byte{1, folderVersion} {
			if fr, err := decodeFolderVersion(b, ver); err == nil {
				if fr2, err := decodeFolder(encodeFolder(nil, &fr)); err != nil || fr2.uidNext != fr.uidNext || fr2.uidValidity != fr.uidValidity {
					t.Fatalf("folder record (version %d) does not round-trip: %v", ver, err)
				}
			}
		}
		if p, err := decodeProps(b); err == nil {
			if p2, err := decodeProps(encodeProps(nil, p)); err != nil || len(p2) != len(p) {
				t.Fatalf("props do not round-trip: %v", err)
			}
		}
		if mr, err := decodeMeta(b); err == nil {
			if mr2, err := decodeMeta(encodeMeta(&mr)); err != nil || mr2 != mr {
				t.Fatalf("meta does not round-trip: %v", err)
			}
		}
	})
}

// validTimes reports whether the times of m survive time.Unix (a fuzzed
// record may hold seconds outside what time.Time represents exactly).
func validTimes(m mailbox.Message) bool {
	for _, x := range []time.Time{m.InternalDate, m.Modified, m.Envelope.Date} {
		if x.Year() < 0 || x.Year() > 9999 {
			return false
		}
	}
	return true
}

func FuzzSubscriptions(f *testing.F) {
	for _, s := range []string{"INBOX\nSent\nEntw&APw-rfe\nINBOX.sub\n", "V\t2\n\nINBOX\nArchive\t2024\n", "", "\n\n\n", "a..b\n&-\n"} {
		f.Add(s, "Archive", "Old")
	}
	f.Fuzz(func(t *testing.T, data, from, to string) {
		s := parseSubscriptions([]byte(data))
		if !validFolderPath(from) || !validFolderPath(to) || mailbox.IsDescendant(to, from) {
			return
		}
		s.add(from)
		s.rename(from, to)
		s2 := parseSubscriptions(s.bytes())
		found := false
		for _, e := range s2.entries {
			if e.path == from || mailbox.IsDescendant(e.path, from) {
				if from != to && !mailbox.IsDescendant(from, to) && !mailbox.IsDescendant(e.path, to) && e.path != to {
					t.Fatalf("after rename %q → %q, %q still subscribed: %q", from, to, e.path, s.bytes())
				}
			}
			if e.path == to {
				found = true
			}
		}
		if !found {
			t.Fatalf("after rename %q → %q, %q not subscribed: %q", from, to, to, s.bytes())
		}
		s2.remove(to)
		for _, e := range parseSubscriptions(s2.bytes()).entries {
			if e.path == to || mailbox.IsDescendant(e.path, to) {
				t.Fatalf("%q still subscribed after removing %q", e.path, to)
			}
		}
	})
}

// validFolderPath reports whether p is a path this store can create.
func validFolderPath(p string) bool {
	_, err := dirName(p)
	return p != "" && err == nil && !strings.ContainsAny(p, "\t\r\n")
}
