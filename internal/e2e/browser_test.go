package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/davmail/davmail/internal/config"
)

// browserMaxMessageSize is the server's max-message-size in the browser
// test: 1 MiB, so that the corpus's legacy message (-oversize 2MiB) is
// over it without generating a 25 MiB file.
const browserMaxMessageSize = 1 << 20

// browserEntry is the part of a manifest line the browser test needs.
type browserEntry struct {
	User        string `json:"user"`
	Folder      string `json:"folder"`
	File        string `json:"file"`
	Kind        string `json:"kind"`
	Size        int64  `json:"size"`
	Subject     string `json:"subject"`
	Phrase      string `json:"phrase"`
	Hostile     bool   `json:"hostile"`
	Attachments []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Size int64  `json:"size"`
	} `json:"attachments"`
}

func readBrowserManifest(t *testing.T, corpus string) []browserEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []browserEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // a manifest line is < 2 KiB
	for sc.Scan() {
		var e browserEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// startBrowserServer is startServer with a small max-message-size and a
// corpus holding a legacy message over it: alice gets mkcorpus's default
// 200 messages (enough for hostile HTML ones), no large attachments, and
// one oversized message.
func startBrowserServer(t *testing.T) *testServer {
	t.Helper()
	return startServer(t, serverOptions{
		CorpusArgs: []string{"-messages", "200", "-large", "0", "-oversize", "2MiB"},
		Users:      []string{"alice"},
		Admins:     []string{"alice"},
		Configure:  func(c *config.Config) { c.MaxMessageSize = browserMaxMessageSize },
	})
}

// artifactsDir is where the screenshots go: $DAVMAIL_ARTIFACTS/browser
// when set (CI keeps it), else a temporary directory of the test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("DAVMAIL_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "browser")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browserLog records what the page did that the test checks: every
// request and every script dialog.
type browserLog struct {
	mu       sync.Mutex
	requests []string
	dialogs  []string
}

func (b *browserLog) add(list *[]string, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*list = append(*list, s)
}

func (b *browserLog) snapshot() (requests, dialogs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...), append([]string(nil), b.dialogs...)
}

// TestBrowser drives the web UI in headless Chromium against the real
// server and a mkcorpus corpus: log in, open Inbox, open a hostile HTML
// message (no script runs, no remote request is made), download an
// attachment and compare it with the corpus, open the legacy oversized
// message and read the explanation, log out. Screenshots of each step
// are saved (artifactsDir).
func TestBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	ts := startBrowserServer(t)
	browserWalk(t, chromium, walkSetup{
		url:      ts.URL,
		password: ts.Passwords["alice"],
		manifest: readBrowserManifest(t, ts.Corpus),
		shots:    artifactsDir(t),
		pristine: ts.Corpus,
		served:   ts.Corpus,
	})
}

// walkSetup is what browserWalk needs of a running gateway.
type walkSetup struct {
	url, password string
	manifest      []browserEntry
	shots         string // directory for the screenshots
	// pristine holds the corpus files as mkcorpus wrote them (their
	// attachments match the manifest); served holds them as the gateway
	// serves them (the same files on Maildir; with CRLF line ends behind
	// Dovecot).
	pristine, served string
}

// browserWalk is the web UI walk in headless Chromium, the same on every
// backend: log in as alice through the form, open Inbox, open a hostile
// HTML message (no script runs, nothing remote loads), download an
// attachment by clicking it and compare it with the corpus, open the
// legacy oversized message and read why it is refused, the admin page,
// phone width, log out. Screenshots go to w.shots.
func browserWalk(t *testing.T, chromium string, w walkSetup) {
	t.Helper()
	manifest, shots := w.manifest, w.shots
	downloads := t.TempDir()

	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	// Three minutes for the whole browser session: each step takes well
	// under a second; the slack is for a cold Chromium start on CI.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer acancel()
	var log browserLog
	// The listener sees every event of the tab from its start: every
	// request (the page's, the frame's, images') and every dialog.
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			log.add(&log.requests, ev.Request.URL)
		case *page.EventJavascriptDialogOpening:
			log.add(&log.dialogs, ev.Message)
		}
	}))
	defer bcancel()

	do := func(step string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(step string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	// shot saves the whole page, or with viewport only what the screen
	// shows (the phone shots).
	shot := func(name string, viewport ...bool) {
		t.Helper()
		capture := chromedp.FullScreenshot(100) // 100: lossless PNG
		if len(viewport) > 0 && viewport[0] {
			capture = chromedp.CaptureScreenshot()
		}
		png, err := chromedp.Run(bctx, capture)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	frameText := func() string {
		t.Helper()
		return text("frame text", chromedp.Evaluate[string](`document.getElementById('body-frame').contentDocument.body.innerText`))
	}
	// openMessage goes to the folder listing filtered by the subject and
	// follows the link whose text is exactly the subject.
	openMessage := func(e browserEntry) {
		t.Helper()
		do("find "+e.Subject,
			chromedp.Navigate(w.url+"/web/folder?"+url.Values{"f": {e.Folder}, "q": {e.Subject}}.Encode()),
			chromedp.WaitVisible(chromedp.CSS(`p.summary`)),
		)
		href := text("link to "+e.Subject, chromedp.Evaluate[string](`(() => { const a = [...document.querySelectorAll('td.c-subject a')].find(a => a.textContent === `+jsString(e.Subject)+`); return a ? a.href : ""; })()`))
		if href == "" {
			t.Fatalf("no link to %q in folder %s", e.Subject, e.Folder)
		}
		do("open "+e.Subject, chromedp.Navigate(href), chromedp.WaitVisible(chromedp.ID(`body-frame`)))
		waitFrame(t, bctx)
	}

	// Start the browser, answer script dialogs (none should open; one
	// that did would block the page), allow downloads.
	do("start")
	go func() {
		for _, err := range chromedp.Events(bctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	}()
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	}); err != nil {
		t.Fatalf("Browser.setDownloadBehavior: %v", err)
	}

	// Log in through the form.
	do("login page", chromedp.Navigate(w.url+"/web/"), chromedp.WaitVisible(chromedp.ID(`username`)))
	shot("01-login")
	do("submit login",
		chromedp.SendKeys(chromedp.ID(`username`), "alice"),
		chromedp.SendKeys(chromedp.ID(`password`), w.password),
		chromedp.Click(chromedp.CSS(`.login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.msgs`)),
	)
	if title := text("title", chromedp.Title()); title != "Inbox – davmail" {
		t.Errorf("title after login %q", title)
	}
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('table.msgs tbody tr').length`))
	if err != nil || rows != 50 {
		t.Errorf("Inbox shows %d rows (%v), want a first page of 50", rows, err)
	}
	shot("02-inbox")

	// A hostile HTML message: no script runs, nothing remote loads.
	var hostile *browserEntry
	for i := range manifest {
		if manifest[i].User == "alice" && manifest[i].Hostile {
			hostile = &manifest[i]
			break
		}
	}
	if hostile == nil {
		t.Fatal("the corpus has no hostile message for alice")
	}
	openMessage(*hostile)
	title := text("title", chromedp.Title())
	frameTitle := text("frame title", chromedp.Evaluate[string](`document.getElementById('body-frame').contentDocument.title`))
	if strings.Contains(title, "pwned") || strings.Contains(frameTitle, "pwned") {
		t.Errorf("a script ran: page title %q, frame title %q", title, frameTitle)
	}
	if ft := frameText(); !strings.Contains(ft, hostile.Phrase) {
		t.Errorf("the frame does not show the message's text %q:\n%s", hostile.Phrase, ft)
	}
	if notice := text("blocked notice", chromedp.Text(chromedp.CSS(`p.remote`))); !strings.Contains(notice, "blocked") {
		t.Errorf("no blocked-images notice, got %q", notice)
	}
	shot("03-hostile")

	// An attachment, downloaded by clicking its link, is byte for byte
	// the one in the corpus file.
	var withAtt *browserEntry
	var attName string
	for i := range manifest {
		e := &manifest[i]
		if e.User != "alice" || e.Kind != "mixed" || e.Size > browserMaxMessageSize {
			continue
		}
		for _, a := range e.Attachments {
			if isASCII(a.Name) {
				withAtt, attName = e, a.Name
				break
			}
		}
		if withAtt != nil {
			break
		}
	}
	if withAtt == nil {
		t.Fatal("no message with an ASCII-named attachment in the corpus")
	}
	pristine := corpusAttachment(t, filepath.Join(w.pristine, withAtt.File), attName)
	for _, a := range withAtt.Attachments {
		if a.Name == attName && int64(len(pristine)) != a.Size {
			t.Fatalf("corpus attachment %s: %d bytes decoded, manifest says %d", attName, len(pristine), a.Size)
		}
	}
	// What the gateway serves: a base64 attachment decodes the same from
	// either form, a text one gets Dovecot's CRLF line ends.
	want := corpusAttachment(t, filepath.Join(w.served, withAtt.File), attName)
	openMessage(*withAtt)
	shot("04-attachment-message")
	do("download "+attName, chromedp.Click(`//section[@class="atts"]//a[text()=`+xpathString(attName)+`]`))
	got := waitDownload(t, filepath.Join(downloads, attName), int64(len(want)))
	if !bytes.Equal(got, want) {
		t.Errorf("downloaded %s: %d bytes, differs from the corpus as served (%d bytes)", attName, len(got), len(want))
	}

	// The legacy oversized message opens with its text and explains what
	// is refused.
	var over *browserEntry
	for i := range manifest {
		if manifest[i].User == "alice" && manifest[i].Kind == "oversize" {
			over = &manifest[i]
		}
	}
	if over == nil {
		t.Fatal("no oversized message for alice in the corpus")
	}
	openMessage(*over)
	explain := text("explanation", chromedp.Text(chromedp.CSS(`p.explain`)))
	atts := text("attachments", chromedp.Text(chromedp.CSS(`section.atts`)))
	if !strings.Contains(explain, "over the limit max-message-size of 1 MiB") || !strings.Contains(explain, "cannot be downloaded whole") {
		t.Errorf("oversized explanation: %q", explain)
	}
	if !strings.Contains(atts, "Not downloadable: 2 MiB is over the limit max-message-size of 1 MiB") {
		t.Errorf("attachment refusal: %q", atts)
	}
	if ft := frameText(); !strings.Contains(ft, over.Phrase) {
		t.Errorf("the oversized message's text is not shown (want %q):\n%s", over.Phrase, ft)
	}
	shot("05-oversized")

	// The admin status page (alice is an admin here).
	do("admin", chromedp.Navigate(w.url+"/web/admin"), chromedp.WaitVisible(chromedp.CSS(`table.activity`)))
	shot("06-admin")

	// Phone width.
	do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(w.url+"/web/folder?f=INBOX"), chromedp.WaitVisible(chromedp.CSS(`table.msgs`)))
	shot("07-inbox-phone", true)
	openMessage(*withAtt)
	shot("08-message-phone", true)
	do("desktop", chromedp.EmulateViewport(1280, 900))

	// Log out: back to the login page, and the session is gone.
	do("logout", chromedp.Click(chromedp.CSS(`.account button`)), chromedp.WaitVisible(chromedp.ID(`username`)))
	if status := text("logout notice", chromedp.Text(chromedp.CSS(`p.notice`))); status != "You have logged out." {
		t.Errorf("after logout: %q", status)
	}
	do("after logout", chromedp.Navigate(w.url+"/web/folder?f=INBOX"), chromedp.WaitVisible(chromedp.ID(`username`)))
	shot("09-logged-out")

	requests, dialogs := log.snapshot()
	if len(dialogs) > 0 {
		t.Errorf("script dialogs opened: %q", dialogs)
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, w.url+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("request outside the server: %s", u)
		}
	}
	if len(requests) < 10 {
		t.Errorf("only %d requests recorded: the network listener is not working", len(requests))
	}
}

// waitFrame waits until the message frame has loaded its document.
func waitFrame(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const f = document.getElementById('body-frame'); const d = f && f.contentDocument; return !!(d && d.readyState === 'complete' && d.body && d.location.href !== 'about:blank'); })()`))
		if err == nil && ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message frame not loaded after 20s (%v)", err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// waitDownload waits for the browser to finish writing path with size
// bytes and returns its content.
func waitDownload(t *testing.T, path string, size int64) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() == size {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(filepath.Dir(path))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("download %s of %d bytes not complete after 30s; directory holds %q", filepath.Base(path), size, names)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// corpusAttachment decodes the attachment called name from a corpus
// message with the standard library (an oracle independent of convert).
func corpusAttachment(t *testing.T, file, name string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() != name {
			continue
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("%s has no attachment %q", file, name)
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// jsString quotes s as a JavaScript string literal (JSON is a subset).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// xpathString quotes s for XPath 1.0, which has no escapes: with
// concat() when s holds both quote kinds.
func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	if !strings.Contains(s, `'`) {
		return `'` + s + `'`
	}
	return `concat("` + strings.ReplaceAll(s, `"`, `", '"', "`) + `")`
}
