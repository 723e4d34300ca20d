package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cadaverStep is one command of a scripted cadaver session and what
// cadaver printed for it.
type cadaverStep struct {
	Cmd, Out string
}

// cadaverPrompt matches cadaver's prompt with the echoed command,
// "dav:/exchange/alice/> ls Inbox".
var cadaverPrompt = regexp.MustCompile(`^dav:[^>]*> ?(.*)$`)

// parseCadaver splits a scripted session's output by prompt.
func parseCadaver(out string) []cadaverStep {
	var steps []cadaverStep
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := cadaverPrompt.FindStringSubmatch(line); m != nil {
			steps = append(steps, cadaverStep{Cmd: m[1]})
			continue
		}
		if len(steps) > 0 {
			steps[len(steps)-1].Out += line + "\n"
		}
	}
	return steps
}

// runCadaver runs one cadaver session at the user's mailbox root with the
// script on stdin, and fails the test unless every command but the last
// (quit) reports success.
func runCadaver(t *testing.T, bin, home, rootURL string, script ...string) []cadaverStep {
	t.Helper()
	script = append(script, "quit")
	res := runTool(t, toolOpts{
		Dir:     home,
		Env:     []string{"HOME=" + home},
		Stdin:   strings.Join(script, "\n") + "\n",
		Timeout: time.Minute, // each session moves well under 1 MiB
	}, bin, rootURL)
	if res.Err != nil {
		t.Fatalf("cadaver: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	steps := parseCadaver(res.Stdout)
	if len(steps) != len(script) {
		t.Fatalf("cadaver ran %d commands, script has %d (login failed?):\n%s%s", len(steps), len(script), res.Stdout, res.Stderr)
	}
	for i, s := range steps[:len(steps)-1] {
		if s.Cmd != script[i] {
			t.Fatalf("cadaver step %d is %q, want %q", i, s.Cmd, script[i])
		}
		// cd prints nothing when it works; every other command says
		// "succeeded" (ls of an empty collection aside, not used here).
		ok := strings.Contains(s.Out, "succeeded") && !strings.Contains(s.Out, "failed")
		if strings.HasPrefix(s.Cmd, "cd ") {
			ok = strings.TrimSpace(s.Out) == ""
		}
		if !ok {
			t.Errorf("cadaver %q did not succeed:\n%s", s.Cmd, s.Out)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return steps
}

// cadaverListing reads the sizes of the non-collection entries of a
// cadaver ls: "        name      1234  Nov 21 16:51" (name may hold
// spaces; the size is the fourth field from the end).
func cadaverListing(t *testing.T, out string) []int64 {
	t.Helper()
	var sizes []int64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] == "Coll:" || strings.HasPrefix(line, "Listing collection") {
			continue
		}
		n, err := strconv.ParseInt(f[len(f)-4], 10, 64)
		if err != nil {
			t.Fatalf("cadaver ls line without a size: %q", line)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// TestCadaver runs cadaverSuite on the Maildir backend.
func TestCadaver(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "cadaver", "cadaver")
	ts := startServer(t, serverOptions{})
	cadaverSuite(t, bin, ts, readManifest(t, ts.Corpus))
}

// TestIMAPCadaver runs cadaverSuite on the IMAP backend, in front of
// Dovecot.
func TestIMAPCadaver(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "cadaver", "cadaver")
	r := startIMAPRig(t, nil, nil)
	cadaverSuite(t, bin, r.ts, r.manifest)
}

// cadaverSuite scripts cadaver (at bin), the command-line WebDAV client,
// through stdin with credentials from a .netrc: ls, mkcol, put, get,
// move, delete, rmcol, checking the server after each session. manifest
// is the corpus's, with the sizes ts serves.
func cadaverSuite(t *testing.T, bin string, ts *testServer, manifest []manifestEntry) {
	dav := ts.client(t, "alice")
	home := t.TempDir()
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	netrc := "machine " + u.Hostname() + "\nlogin alice\npassword " + ts.Passwords["alice"] + "\n"
	if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte(netrc), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := testMessage("cadaver upload", 100<<10)
	if err := os.WriteFile(filepath.Join(home, "note.eml"), msg, 0o644); err != nil {
		t.Fatal(err)
	}
	root := ts.URL + folderPath("alice", "")

	// Session 1: list the Inbox, create a folder, upload, download.
	steps := runCadaver(t, bin, home, root,
		"ls Inbox",
		"mkcol CadaverE2E",
		"cd CadaverE2E",
		"put note.eml note.EML",
		"get note.EML out.eml",
	)
	var want []int64
	for _, e := range entriesIn(manifest, "alice", "INBOX") {
		want = append(want, e.Size)
	}
	got := cadaverListing(t, steps[0].Out)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("cadaver ls Inbox: %d messages with sizes\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}
	dir := folderPath("alice", "CadaverE2E")
	if code, es := dav.propfind(t, dir, "0"); code != http.StatusMultiStatus || len(es) != 1 || !es[0].isCollection() {
		t.Errorf("after cadaver mkcol: PROPFIND %s = %d, %d entries; want 207 with one collection", dir, code, len(es))
	}
	src := itemPath(dir, "note.EML")
	if code, b := dav.getBytes(t, src); code != http.StatusOK || !bytes.Equal(b, msg) {
		t.Errorf("GET %s after cadaver put: %d, %d bytes (want 200, the %d bytes put)", src, code, len(b), len(msg))
	}
	sameFile(t, filepath.Join(home, "out.eml"), filepath.Join(home, "note.eml"))

	// Session 2: move the message to another folder.
	runCadaver(t, bin, home, root, "move CadaverE2E/note.EML Drafts/cadaver-moved.EML")
	dst := itemPath(folderPath("alice", "Drafts"), "cadaver-moved.EML")
	if code := dav.status(t, http.MethodGet, src); code != http.StatusNotFound {
		t.Errorf("GET %s after cadaver move: %d, want 404", src, code)
	}
	if code, b := dav.getBytes(t, dst); code != http.StatusOK || !bytes.Equal(b, msg) {
		t.Errorf("GET %s after cadaver move: %d, %d bytes (want 200, the %d bytes put)", dst, code, len(b), len(msg))
	}

	// Session 3: delete the message and the folder.
	runCadaver(t, bin, home, root, "delete Drafts/cadaver-moved.EML", "rmcol CadaverE2E")
	if code := dav.status(t, http.MethodGet, dst); code != http.StatusNotFound {
		t.Errorf("GET %s after cadaver delete: %d, want 404", dst, code)
	}
	if code, _ := dav.propfind(t, dir, "0"); code != http.StatusNotFound {
		t.Errorf("PROPFIND %s after cadaver rmcol: %d, want 404", dir, code)
	}
}
