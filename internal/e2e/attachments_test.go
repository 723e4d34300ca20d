package e2e

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The converted-content proofs of issue 4 over HTTP, against the real
// server and a mkcorpus corpus: every attachment the manifest names is
// listed by X-MS-ENUMATTS with its name, type and decoded size; every
// listed attachment GETs exactly getcontentlength bytes (the "sizes are
// exact" property, over every part of every message); every text body
// holds its manifest phrase in the HTML view after charset decoding.

// attManifest is the part of a manifest line these tests read.
type attManifest struct {
	User        string `json:"user"`
	Folder      string `json:"folder"`
	Subject     string `json:"subject"`
	Size        int64  `json:"size"`
	Phrase      string `json:"phrase"`
	Malformed   string `json:"malformed"`
	Kind        string `json:"kind"`
	Attachments []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Size int64  `json:"size"`
	} `json:"attachments"`
}

func readAttManifest(t *testing.T, corpus string) []attManifest {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []attManifest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e attManifest
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

var (
	propAttName   = xml.Name{Space: "urn:schemas:httpmail:", Local: "attachmentfilename"}
	propAttType   = xml.Name{Space: "DAV:", Local: "getcontenttype"}
	propAttRefuse = xml.Name{Space: "urn:schemas:davmail:", Local: "refused"}
)

// enumAtts lists the attachments of the message at msgPath.
func (c *davClient) enumAtts(t *testing.T, msgPath string) []davEntry {
	t.Helper()
	resp := c.do(t, "X-MS-ENUMATTS", msgPath+"/", nil, "Translate", "f")
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("X-MS-ENUMATTS %s: %d %v\n%s", msgPath, resp.StatusCode, err, clip(body, 500))
	}
	entries, err := parseMultistatus(body)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestAttachmentsOverHTTP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, serverOptions{CorpusArgs: []string{"-messages", "60", "-large", "1", "-large-size", "3MiB", "-oversize", "30MiB"}})
	manifest := readAttManifest(t, ts.Corpus)
	var checkedParts, refusedParts, checkedPhrases, checkedAtts, legacy, views int
	for _, user := range testUsers {
		c := ts.client(t, user)
		folders := map[string]bool{}
		for _, e := range manifest {
			if e.User == user {
				folders[e.Folder] = true
			}
		}
		for folder := range folders {
			dir := folderPath(user, folder)
			code, entries := c.propfind(t, dir, "1")
			if code != http.StatusMultiStatus {
				t.Fatalf("PROPFIND %s: %d", dir, code)
			}
			// Messages by subject and size, the manifest's keys.
			type key struct {
				subject string
				size    int64
			}
			byKey := map[key]davEntry{}
			for _, en := range entries[1:] {
				// Every message, malformed ones included, has a view and
				// an attachment list: degraded, never a server error.
				if code := c.status(t, http.MethodGet, en.Href, "Translate", "t"); code != http.StatusOK {
					t.Errorf("view of %s: %d", en.Path, code)
				}
				if code := c.status(t, "X-MS-ENUMATTS", en.Href+"/"); code != http.StatusMultiStatus {
					t.Errorf("X-MS-ENUMATTS %s: %d", en.Path, code)
				}
				views++
				n, _ := strconv.ParseInt(en.Props[propContentLength].Text, 10, 64)
				byKey[key{en.Props[propSubject].Text, n}] = en
			}
			for _, e := range manifest {
				if e.User != user || e.Folder != folder {
					continue
				}
				en, ok := byKey[key{e.Subject, e.Size}]
				if !ok {
					if e.Malformed == "" {
						t.Errorf("%s/%s: %q (%d bytes) not listed", user, folder, e.Subject, e.Size)
					}
					continue
				}
				msgPath := en.Href
				atts := c.enumAtts(t, msgPath)
				for _, a := range atts {
					// Sizes are exact: GET sends getcontentlength bytes,
					// or the attachment is refused and says why.
					want, _ := strconv.ParseInt(a.Props[propContentLength].Text, 10, 64)
					status, n, _, err := c.getSum(t, a.Href)
					switch {
					case a.Props[propAttRefuse].Text != "":
						if status != http.StatusForbidden {
							t.Errorf("%s: refused attachment (%s) GET %d", a.Href, a.Props[propAttRefuse].Text, status)
						}
						refusedParts++
					case status != http.StatusOK || n != want || err != nil:
						t.Errorf("%s: GET %d, %d bytes (%v), getcontentlength %d", a.Href, status, n, err, want)
					default:
						checkedParts++
					}
				}
				// In document order; a repeated name is listed as
				// "name-2.ext".
				next := 0
				for _, ma := range e.Attachments {
					var a davEntry
					ok := false
					for ; next < len(atts) && !ok; next++ {
						a, ok = atts[next], sameAttName(atts[next].Props[propAttName].Text, ma.Name)
					}
					if !ok {
						t.Errorf("%s: attachment %q not listed (have %d)", msgPath, ma.Name, len(atts))
						continue
					}
					checkedAtts++
					if n, _ := strconv.ParseInt(a.Props[propContentLength].Text, 10, 64); n != ma.Size {
						t.Errorf("%s/%s: size %d, manifest %d", msgPath, ma.Name, n, ma.Size)
					}
					if ct := a.Props[propAttType].Text; !strings.HasPrefix(ct, ma.Type) {
						t.Errorf("%s/%s: type %q, manifest %q", msgPath, ma.Name, ct, ma.Type)
					}
				}
				if e.Size > 25<<20 {
					legacy++
					if code := c.status(t, http.MethodGet, msgPath, "Translate", "f"); code != http.StatusForbidden {
						t.Errorf("legacy oversized %s: raw GET %d, want 403", msgPath, code)
					}
				}
				// The phrase is in the view (converted to UTF-8).
				if e.Phrase != "" && e.Malformed == "" {
					resp := c.do(t, http.MethodGet, msgPath, nil, "Translate", "t")
					view, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(view), htmlEscape(e.Phrase)) {
						t.Errorf("%s: view %d does not hold the phrase %q", msgPath, resp.StatusCode, e.Phrase)
					} else {
						checkedPhrases++
					}
				}
			}
		}
	}
	t.Logf("checked %d attachments against the manifest, %d parts GET = getcontentlength, %d refused with a reason, %d phrases in views, %d legacy oversized, %d views",
		checkedAtts, checkedParts, refusedParts, checkedPhrases, legacy, views)
	if checkedAtts < 20 || checkedParts+refusedParts < checkedAtts || refusedParts < 1 || checkedPhrases < 50 || legacy < 1 {
		t.Errorf("too little checked: the corpus or the listing changed")
	}
}

// sameAttName: listed is want, or want made unique ("a.pdf" → "a-2.pdf").
func sameAttName(listed, want string) bool {
	if listed == want {
		return true
	}
	stem, ext := want, ""
	if i := strings.LastIndexByte(want, '.'); i > 0 {
		stem, ext = want[:i], want[i:]
	}
	n, ok := strings.CutPrefix(listed, stem+"-")
	if !ok {
		return false
	}
	n, ok = strings.CutSuffix(n, ext)
	_, err := strconv.Atoi(n)
	return ok && err == nil
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}
