package convert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/charset"
)

// mkcorpusDir finds the corpus generator: $DAVMAIL_MKCORPUS, else
// ../../shared/tools/mkcorpus (the shared tree next to the repository).
func mkcorpusDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DAVMAIL_MKCORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "tools", "mkcorpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mkcorpus not found at %s (set DAVMAIL_MKCORPUS): %v", dir, err)
		}
		t.Skipf("mkcorpus not found at %s (set DAVMAIL_MKCORPUS); skipping the corpus test", dir)
	}
	return dir
}

type manifestEntry struct {
	User        string `json:"user"`
	Folder      string `json:"folder"`
	File        string `json:"file"`
	Kind        string `json:"kind"`
	Size        int64  `json:"size"`
	MessageID   string `json:"message_id"`
	Subject     string `json:"subject"`
	From        string `json:"from"`
	Date        string `json:"date"`
	Charset     string `json:"charset"`
	Phrase      string `json:"phrase"`
	Attachments []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Size int64  `json:"size"`
	} `json:"attachments"`
	HTML      bool   `json:"html"`
	Malformed string `json:"malformed"`
}

// TestCorpus scans a default mkcorpus corpus and checks every message
// against the manifest's ground truth.
func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus test skipped in -short mode")
	}
	gen := mkcorpusDir(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	out := t.TempDir()
	args := []string{"run", ".", "-out", out} // default corpus: 416 messages, 127 MiB
	minMessages, minAttachments := 400, 50
	if raceEnabled {
		// A smaller corpus (same kinds, malformed catalog included): under
		// the race detector 127 MiB take minutes, and Scan has no
		// concurrency for it to check anyway.
		args = append(args, "-messages", "40", "-large-size", "512KiB")
		minMessages, minAttachments = 80, 10
	}
	cmd := exec.CommandContext(t.Context(), goTool, args...)
	cmd.Dir = gen
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkcorpus: %v\n%s", err, b)
	}
	mf, err := os.Open(filepath.Join(out, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	sc.Buffer(nil, 1<<20)
	n, malformed, withAtt := 0, 0, 0
	for sc.Scan() {
		var e manifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		n++
		if e.Malformed != "" {
			malformed++
		}
		if len(e.Attachments) > 0 {
			withAtt++
		}
		checkCorpusMessage(t, out, &e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < minMessages || malformed < 12 || withAtt < minAttachments {
		t.Errorf("corpus too small: %d messages, %d malformed, %d with attachments", n, malformed, withAtt)
	}
	t.Logf("%d messages checked (%d malformed, %d with attachments)", n, malformed, withAtt)
}

func checkCorpusMessage(t *testing.T, dir string, e *manifestEntry) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, e.File))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Scan(bytes.NewReader(raw), ScanOptions{})
	if err != nil {
		t.Errorf("%s: Scan: %v", e.File, err)
		return
	}
	if st.Size != e.Size {
		t.Errorf("%s: Size %d, manifest %d", e.File, st.Size, e.Size)
	}
	checkStructure(t, raw, st, ScanOptions{})
	if env, err := ScanEnvelope(bytes.NewReader(raw)); err != nil || env != st.Envelope {
		t.Errorf("%s: ScanEnvelope = %+v, %v; Scan's envelope %+v", e.File, env, err, st.Envelope)
	}
	for _, p := range st.Parts {
		if want := refDecodedLen(p.Encoding, raw[p.BodyStart:p.BodyEnd]); p.DecodedSize != want {
			t.Errorf("%s part %q (%s): DecodedSize %d, reference decoder %d", e.File, p.Path, p.Encoding, p.DecodedSize, want)
		}
	}
	if e.Malformed != "" {
		return // the manifest's subject is the case name; never failing is the test
	}
	env := st.Envelope
	if env.Subject != e.Subject {
		t.Errorf("%s: Subject %q, manifest %q", e.File, env.Subject, e.Subject)
	}
	if env.From != e.From {
		t.Errorf("%s: From %q, manifest %q", e.File, env.From, e.From)
	}
	if env.MessageID != e.MessageID {
		t.Errorf("%s: MessageID %q, manifest %q", e.File, env.MessageID, e.MessageID)
	}
	if want, err := time.Parse(time.RFC3339, e.Date); err != nil || !env.Date.Equal(want) || env.Date.Location() != time.UTC {
		t.Errorf("%s: Date %v, manifest %s", e.File, env.Date, e.Date)
	}
	if len(st.Problems) > 0 {
		t.Errorf("%s: problems %v in a well-formed message", e.File, st.Problems)
	}

	// Attachments: every part with a file name, in document order, with
	// its decoded size. The manifest lists the inline image of
	// multipart/related messages too (as X-MS-ENUMATTS would); it is no
	// attachment for HasAttachments.
	type att struct {
		Name, Type string
		Size       int64
	}
	var got, want []att
	for _, p := range st.Parts {
		if p.FileName != "" {
			got = append(got, att{p.FileName, p.ContentType, p.DecodedSize})
		}
	}
	for _, a := range e.Attachments {
		want = append(want, att{a.Name, a.Type, a.Size})
	}
	if !equalAtts(got, want) {
		t.Errorf("%s: attachments %+v, manifest %+v", e.File, got, want)
	}
	wantHas := len(e.Attachments) > 0 && e.Kind != "related"
	if env.HasAttachments != wantHas {
		t.Errorf("%s (%s): HasAttachments %v, want %v", e.File, e.Kind, env.HasAttachments, wantHas)
	}

	// The text body, decoded through NewDecoder and its charset, holds
	// the manifest's phrase: offsets, encodings and charsets all agree.
	if e.Phrase != "" {
		found := false
		for _, p := range st.Parts {
			if p.ContentType != "text/plain" && p.ContentType != "text/html" {
				continue
			}
			var r io.Reader = NewDecoder(p.Encoding, bytes.NewReader(raw[p.BodyStart:p.BodyEnd]))
			if p.Charset != "" {
				if r, err = charset.Reader(p.Charset, r); err != nil {
					t.Fatalf("%s: charset %q: %v", e.File, p.Charset, err)
				}
			}
			text, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("%s part %q: decoding: %v", e.File, p.Path, err)
			}
			if strings.Contains(string(text), e.Phrase) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no text part holds the phrase %q", e.File, e.Phrase)
		}
	}
}

func equalAtts[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
