package e2e

import (
	"crypto/sha256"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestCorpusOverHTTP checks every message of the corpus over HTTP: a
// Depth-1 PROPFIND of its folder lists it with the right
// getcontentlength, subject and read flag, and a GET of its href returns
// exactly the bytes on disk. Listings are matched to the manifest by
// content, so a folder must list each of its messages once and nothing
// else. Malformed messages must list and download like any other.
func TestCorpusOverHTTP(t *testing.T) {
	t.Parallel()
	corpus := fullCorpus
	if testing.Short() {
		corpus = smallCorpus
	}
	ts := startServer(t, serverOptions{CorpusArgs: corpus})
	manifest := readManifest(t, ts.Corpus)

	type key struct{ user, folder string }
	byFolder := map[key][]manifestEntry{}
	var order []key
	for _, e := range manifest {
		k := key{e.User, e.Folder}
		if _, ok := byFolder[k]; !ok {
			order = append(order, k)
		}
		byFolder[k] = append(byFolder[k], e)
	}
	malformed := map[string]bool{}
	for _, k := range order {
		t.Run(k.user+"/"+k.folder, func(t *testing.T) {
			for _, e := range checkFolder(t, ts, k.user, k.folder, byFolder[k]) {
				if e.Malformed != "" {
					malformed[e.Malformed] = true
				}
			}
		})
	}
	// Every malformed case of the catalog came through.
	var want []string
	for _, e := range manifest {
		if e.Malformed != "" && !slices.Contains(want, e.Malformed) {
			want = append(want, e.Malformed)
		}
	}
	if len(want) == 0 {
		t.Error("the corpus holds no malformed messages: mkcorpus changed?")
	}
	for _, m := range want {
		if !malformed[m] {
			t.Errorf("malformed case %s did not list and download intact", m)
		}
	}

	// Users are isolated: bob's credentials do not open alice's Inbox.
	bob := ts.client(t, "bob")
	if code, _ := bob.propfind(t, folderPath("alice", "INBOX"), "1"); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("bob PROPFIND alice's Inbox: %d, want 403 or 404", code)
	}
	if code := bob.status(t, http.MethodGet, folderPath("alice", "INBOX")); code < 400 || code >= 500 {
		t.Errorf("bob GET alice's Inbox: %d, want a 4xx", code)
	}
	anon := ts.client(t, "alice")
	anon.user = ""
	if code := anon.status(t, "PROPFIND", folderPath("alice", "INBOX"), "Depth", "0"); code != http.StatusUnauthorized {
		t.Errorf("PROPFIND without credentials: %d, want 401", code)
	}
}

// checkFolder checks one folder against its manifest entries and returns
// the entries that were found intact (listed and downloaded exactly).
func checkFolder(t *testing.T, ts *testServer, user, folder string, want []manifestEntry) []manifestEntry {
	t.Helper()
	dav := ts.client(t, user)
	dir := folderPath(user, folder)

	// The manifest entries by content digest (a multiset: equal messages
	// would share a digest).
	byDigest := map[[sha256.Size]byte][]manifestEntry{}
	for _, e := range want {
		d := fileDigest(t, filepath.Join(ts.Corpus, e.File))
		byDigest[d] = append(byDigest[d], e)
	}

	code, entries := dav.propfind(t, dir, "1")
	if code != http.StatusMultiStatus {
		t.Fatalf("PROPFIND %s Depth 1: %d, want 207", dir, code)
	}
	var ok []manifestEntry
	listed := 0
	for _, le := range entries {
		if le.isCollection() {
			continue // the folder itself and its subfolders
		}
		listed++
		status, n, digest, err := dav.getSum(t, le.Href)
		if status != http.StatusOK || err != nil {
			t.Errorf("GET %s (%s): status %d, %d bytes, %v", le.Href, le.name(), status, n, err)
			continue
		}
		cands := byDigest[digest]
		if len(cands) == 0 {
			t.Errorf("%s (%d bytes) matches no corpus message of %s", le.name(), n, folder)
			continue
		}
		e := cands[0]
		byDigest[digest] = cands[1:]
		good := true
		if got := le.Props[propContentLength].Text; got != strconv.FormatInt(e.Size, 10) {
			t.Errorf("%s (%s): getcontentlength %q, want %d", le.name(), e.File, got, e.Size)
			good = false
		}
		if e.Malformed == "" {
			if p, found := le.Props[propSubject]; !found {
				t.Errorf("%s (%s): no httpmail:subject", le.name(), e.File)
				good = false
			} else if p.Text != e.Subject {
				t.Errorf("%s (%s): httpmail:subject %q, want %q", le.name(), e.File, p.Text, e.Subject)
				good = false
			}
			if p, found := le.Props[propRead]; !found {
				t.Errorf("%s (%s): no httpmail:read", le.name(), e.File)
				good = false
			} else if read, err := parseBool(p.Text); err != nil || read != e.seen() {
				t.Errorf("%s (%s): httpmail:read %q, want %v (flags %q)", le.name(), e.File, p.Text, e.seen(), e.Flags)
				good = false
			}
		}
		if good {
			ok = append(ok, e)
		}
	}
	if listed != len(want) {
		t.Errorf("PROPFIND %s lists %d messages, the corpus has %d", dir, listed, len(want))
	}
	for _, es := range byDigest {
		for _, e := range es {
			t.Errorf("corpus message %s (%q, %d bytes) not listed in %s", e.File, e.Subject, e.Size, dir)
		}
	}
	return ok
}

// fileDigest returns the SHA-256 of a file, streamed.
func fileDigest(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}
