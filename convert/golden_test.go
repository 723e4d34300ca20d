package convert

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// TestGolden scans every testdata/*.eml and compares the Structure with
// the reviewed testdata/*.golden.json next to it; go test -run Golden
// -update rewrites them (review the diff before committing).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("found %d testdata/*.eml files, want at least 15", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Scan(bytes.NewReader(raw), ScanOptions{})
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			checkStructure(t, raw, st, ScanOptions{})
			got, err := json.MarshalIndent(st, "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".eml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Structure differs from %s (go test -run Golden -update rewrites it):\n%s", golden, lineDiff(string(want), string(got)))
			}
			// ScanEnvelope is Scan's envelope.
			env, err := ScanEnvelope(bytes.NewReader(raw))
			if err != nil || env != st.Envelope {
				t.Errorf("ScanEnvelope = %+v, %v; want %+v", env, err, st.Envelope)
			}
		})
	}
}

// TestDecodedSizeMatchesReference checks the property the index relies
// on: for every part of every testdata message, DecodedSize equals what
// Go's own decoders (base64 over a whitespace-stripping reader,
// mime/quotedprintable) yield for [BodyStart, BodyEnd).
func TestDecodedSizeMatchesReference(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	checked := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Scan(bytes.NewReader(raw), ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Parts {
			want := refDecodedLen(p.Encoding, raw[p.BodyStart:p.BodyEnd])
			if p.DecodedSize != want {
				t.Errorf("%s part %q (%s): DecodedSize %d, reference decoder %d", file, p.Path, p.Encoding, p.DecodedSize, want)
			}
			if xferKindOf(p.Encoding) != xferIdentity {
				checked++
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d encoded parts in testdata; the property is barely exercised", checked)
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
			if shown++; shown == 10 {
				break
			}
		}
	}
	return b.String()
}
