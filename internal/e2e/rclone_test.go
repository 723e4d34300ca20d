package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rclone drives rclone with an on-the-fly ":webdav:" remote rooted at one
// user's mailbox, with its own empty config and HOME.
type rclone struct {
	t    *testing.T
	bin  string
	home string
	args []string // remote flags
}

func newRclone(t *testing.T, ts *testServer, user string) *rclone {
	t.Helper()
	bin := needTool(t, "rclone", "rclone")
	home := t.TempDir()
	conf := filepath.Join(home, "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &rclone{t: t, bin: bin, home: home}
	// rclone takes the password only obscured.
	ob := r.run("obscure", ts.Passwords[user])
	r.args = []string{
		"--config", conf,
		"--webdav-url", ts.URL + folderPath(user, ""),
		"--webdav-user", user,
		"--webdav-pass", strings.TrimSpace(ob),
		"--webdav-vendor", "other",
		// Fail fast: one try, so a refused request is reported as it is,
		// not retried ten times.
		"--retries", "1", "--low-level-retries", "1",
		"--contimeout", "10s", "--timeout", "60s",
	}
	return r
}

// run runs one rclone command and returns its standard output; it fails
// the test if rclone fails.
func (r *rclone) run(args ...string) string {
	r.t.Helper()
	res := r.try(args...)
	if res.Err != nil {
		r.t.Fatalf("rclone %s: %v\n%s%s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// try runs one rclone command and returns its result.
func (r *rclone) try(args ...string) toolResult {
	r.t.Helper()
	all := append(append([]string{}, args...), r.args...)
	return runTool(r.t, toolOpts{
		Dir:     r.home,
		Env:     []string{"HOME=" + r.home, "XDG_CACHE_HOME=" + filepath.Join(r.home, "cache"), "XDG_CONFIG_HOME=" + r.home},
		Timeout: 2 * time.Minute, // the biggest transfer here is ~1 MiB
	}, r.bin, all...)
}

// rcloneItem is one entry of `rclone lsjson`.
type rcloneItem struct {
	Name  string
	Size  int64
	IsDir bool
}

func (r *rclone) lsjson(remote string) []rcloneItem {
	r.t.Helper()
	var items []rcloneItem
	out := r.run("lsjson", remote)
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		r.t.Fatalf("rclone lsjson %s: %v\n%s", remote, err, clip([]byte(out), 2000))
	}
	return items
}

// TestRclone runs rcloneSuite on the Maildir backend.
func TestRclone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, serverOptions{})
	rcloneSuite(t, ts, readManifest(t, ts.Corpus))
}

// TestIMAPRclone runs rcloneSuite on the IMAP backend, in front of
// Dovecot.
func TestIMAPRclone(t *testing.T) {
	t.Parallel()
	needTool(t, "rclone", "rclone") // before Dovecot and the corpus
	r := startIMAPRig(t, nil, nil)
	rcloneSuite(t, r.ts, r.manifest)
}

// rcloneSuite drives rclone through the everyday operations of a sync
// tool: list, download, create a folder, upload, download again, move,
// delete, remove and purge folders. Every step is checked on the server
// with the tests' own client. manifest is the corpus's, with the sizes ts
// serves; ts.Corpus holds the bytes ts serves for each of its files.
func rcloneSuite(t *testing.T, ts *testServer, manifest []manifestEntry) {
	rc := newRclone(t, ts, "alice")
	dav := ts.client(t, "alice")
	inbox := entriesIn(manifest, "alice", "INBOX")
	local := t.TempDir()

	// lsjson of the Inbox lists exactly the corpus INBOX: as many
	// messages, with the same sizes.
	items := rc.lsjson(":webdav:Inbox")
	var gotSizes, wantSizes []int64
	bySize := map[int64][]string{}
	for _, it := range items {
		if !it.IsDir {
			gotSizes = append(gotSizes, it.Size)
			bySize[it.Size] = append(bySize[it.Size], it.Name)
		}
	}
	for _, e := range inbox {
		wantSizes = append(wantSizes, e.Size)
	}
	slices.Sort(gotSizes)
	slices.Sort(wantSizes)
	if len(gotSizes) != len(wantSizes) {
		t.Errorf("rclone lsjson Inbox: %d messages, corpus INBOX has %d", len(gotSizes), len(wantSizes))
	}
	if !slices.Equal(gotSizes, wantSizes) {
		t.Errorf("rclone lsjson Inbox sizes differ from the manifest:\n got %v\nwant %v", gotSizes, wantSizes)
	}

	// copyto down: the largest message whose size is unique in the
	// INBOX, so the listing names it unambiguously.
	var pick *manifestEntry
	for i, e := range inbox {
		if len(bySize[e.Size]) == 1 && countSize(inbox, e.Size) == 1 && (pick == nil || e.Size > pick.Size) {
			pick = &inbox[i]
		}
	}
	if pick == nil {
		t.Fatal("no INBOX message of unique size to download")
	}
	down := filepath.Join(local, "down.eml")
	rc.run("copyto", ":webdav:Inbox/"+bySize[pick.Size][0], down)
	sameFile(t, down, filepath.Join(ts.Corpus, pick.File))

	// mkdir: a new folder, visible as a collection.
	rc.run("mkdir", ":webdav:RcloneE2E")
	dir := folderPath("alice", "RcloneE2E")
	if code, es := dav.propfind(t, dir, "0"); code != http.StatusMultiStatus || len(es) != 1 || !es[0].isCollection() {
		t.Fatalf("after rclone mkdir: PROPFIND %s = %d, %d entries; want 207 with one collection", dir, code, len(es))
	}

	// copyto up, then down again: byte-exact both ways.
	msg := testMessage("rclone upload", 300<<10) // several write buffers
	up := filepath.Join(local, "upload.EML")
	if err := os.WriteFile(up, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	rc.run("copyto", up, ":webdav:RcloneE2E/upload.EML")
	src := itemPath(dir, "upload.EML")
	if code, b := dav.getBytes(t, src); code != http.StatusOK || !bytes.Equal(b, msg) {
		t.Fatalf("GET %s after upload: %d, %d bytes (want 200, the %d bytes uploaded)", src, code, len(b), len(msg))
	}
	back := filepath.Join(local, "back.EML")
	rc.run("copyto", ":webdav:RcloneE2E/upload.EML", back)
	sameFile(t, back, up)

	// moveto another folder: gone from the source, whole at the
	// destination.
	rc.run("moveto", ":webdav:RcloneE2E/upload.EML", ":webdav:Drafts/rclone-moved.EML")
	dst := itemPath(folderPath("alice", "Drafts"), "rclone-moved.EML")
	if code := dav.status(t, http.MethodGet, src); code != http.StatusNotFound {
		t.Errorf("GET %s after moveto: %d, want 404", src, code)
	}
	if code, b := dav.getBytes(t, dst); code != http.StatusOK || !bytes.Equal(b, msg) {
		t.Errorf("GET %s after moveto: %d, %d bytes (want 200, the %d bytes uploaded)", dst, code, len(b), len(msg))
	}

	// deletefile.
	rc.run("deletefile", ":webdav:Drafts/rclone-moved.EML")
	if code := dav.status(t, http.MethodGet, dst); code != http.StatusNotFound {
		t.Errorf("GET %s after deletefile: %d, want 404", dst, code)
	}

	// rmdir the now empty folder.
	rc.run("rmdir", ":webdav:RcloneE2E")
	if code, _ := dav.propfind(t, dir, "0"); code != http.StatusNotFound {
		t.Errorf("PROPFIND %s after rmdir: %d, want 404", dir, code)
	}

	// purge a folder tree with a message in a subfolder (rclone creates
	// the parents on upload).
	rc.run("copyto", up, ":webdav:RclonePurge/Sub/x.EML")
	sub := itemPath(folderPath("alice", "RclonePurge/Sub"), "x.EML")
	if code, b := dav.getBytes(t, sub); code != http.StatusOK || !bytes.Equal(b, msg) {
		t.Fatalf("GET %s after upload into new folders: %d, %d bytes", sub, code, len(b))
	}
	rc.run("purge", ":webdav:RclonePurge")
	if code, _ := dav.propfind(t, folderPath("alice", "RclonePurge"), "0"); code != http.StatusNotFound {
		t.Errorf("PROPFIND RclonePurge after purge: %d, want 404", code)
	}

	// The corpus is untouched: the Inbox still lists the same sizes.
	var after []int64
	for _, it := range rc.lsjson(":webdav:Inbox") {
		if !it.IsDir {
			after = append(after, it.Size)
		}
	}
	slices.Sort(after)
	if !slices.Equal(after, wantSizes) {
		t.Errorf("Inbox changed during the test: sizes %v, want %v", after, wantSizes)
	}
}

func countSize(es []manifestEntry, size int64) int {
	n := 0
	for _, e := range es {
		if e.Size == size {
			n++
		}
	}
	return n
}

// sameFile fails the test unless the files at got and want hold the same
// bytes.
func sameFile(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Errorf("%s differs from %s: %d vs %d bytes, first difference at offset %d", got, want, len(g), len(w), i)
	}
}

// testMessage returns a well-formed RFC 5322 message with CRLF line
// endings, a non-ASCII subject and body, and about size bytes of a
// deterministic base64 attachment.
func testMessage(subject string, size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: E2E Test <e2e@example.com>\r\n" +
		"To: Alice <alice@example.com>\r\n" +
		"Subject: " + subject + " =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@e2e.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"e2e-boundary\"\r\n" +
		"\r\n" +
		"--e2e-boundary\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"Grüße aus Zürich — ✓\r\n" +
		"--e2e-boundary\r\n" +
		"Content-Type: application/octet-stream; name=\"data.bin\"\r\n" +
		"Content-Disposition: attachment; filename=\"data.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n")
	// A simple LCG fills the attachment: deterministic, not compressible.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	x := uint32(2463534242)
	line := make([]byte, 0, 78)
	for b.Len() < size {
		line = line[:0]
		for range 76 { // RFC 2045 §6.8: at most 76 characters per line
			x = x*1664525 + 1013904223
			line = append(line, alphabet[x>>26])
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString("--e2e-boundary--\r\n")
	return b.Bytes()
}
