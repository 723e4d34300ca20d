package e2e

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
)

// TestIMAPBrowser is TestBrowser on the IMAP backend: the same corpus
// (startBrowserServer's mkcorpus flags) served by a throwaway Dovecot,
// the gateway in front of it with max-message-size browserMaxMessageSize,
// and the same walk through the web UI in headless Chromium: log in with
// Dovecot's password, open Inbox, open a hostile HTML message (no script
// runs, no remote request), download an attachment and compare it with
// the decoded corpus attachment, open the legacy oversized message and
// read the explanation, the admin page, phone width, log out.
//
// TestBrowser is one function over its own server, so the walk is
// repeated here with the helpers it shares (readBrowserManifest,
// browserLog, waitFrame, waitDownload, corpusAttachment, ...).
func TestIMAPBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	r := startIMAPRig(t, []string{"-messages", "200", "-large", "0", "-oversize", "2MiB"}, func(c *config.Config) {
		c.MaxMessageSize = browserMaxMessageSize
		// With an upstream the users file only names admins (logins go
		// to Dovecot): make alice one, as startBrowserServer does. The
		// password here is never used.
		if err := auth.AddUser(c.Users, "alice", randomPassword(t), auth.RoleAdmin, auth.Replace()); err != nil {
			t.Fatalf("making alice an admin: %v", err)
		}
	})
	ts := r.ts
	manifest := readBrowserManifest(t, r.pristine)
	// A subdirectory, so that TestBrowser's screenshots are not replaced.
	shots := filepath.Join(artifactsDir(t), "imap")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
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
	// Three minutes for the whole browser session, as TestBrowser: each
	// step takes well under a second (a few for the first upstream
	// fetches); the slack is for a cold Chromium start on CI.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer acancel()
	var log browserLog
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
	openMessage := func(e browserEntry) {
		t.Helper()
		do("find "+e.Subject,
			chromedp.Navigate(ts.URL+"/web/folder?"+url.Values{"f": {e.Folder}, "q": {e.Subject}}.Encode()),
			chromedp.WaitVisible(chromedp.CSS(`p.summary`)),
		)
		href := text("link to "+e.Subject, chromedp.Evaluate[string](`(() => { const a = [...document.querySelectorAll('td.c-subject a')].find(a => a.textContent === `+jsString(e.Subject)+`); return a ? a.href : ""; })()`))
		if href == "" {
			t.Fatalf("no link to %q in folder %s", e.Subject, e.Folder)
		}
		do("open "+e.Subject, chromedp.Navigate(href), chromedp.WaitVisible(chromedp.ID(`body-frame`)))
		waitFrame(t, bctx)
	}

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

	// Log in through the form, with Dovecot's password.
	do("login page", chromedp.Navigate(ts.URL+"/web/"), chromedp.WaitVisible(chromedp.ID(`username`)))
	shot("01-login")
	do("submit login",
		chromedp.SendKeys(chromedp.ID(`username`), "alice"),
		chromedp.SendKeys(chromedp.ID(`password`), ts.Passwords["alice"]),
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
	// the decoded attachment of what Dovecot serves (r.ts.Corpus holds
	// imapForm of each file: bare LF as CRLF; a base64 attachment decodes
	// the same either way, a text one gets CRLF line ends).
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
	pristine := corpusAttachment(t, filepath.Join(r.pristine, withAtt.File), attName)
	for _, a := range withAtt.Attachments {
		if a.Name == attName && int64(len(pristine)) != a.Size {
			t.Fatalf("corpus attachment %s: %d bytes decoded, manifest says %d", attName, len(pristine), a.Size)
		}
	}
	want := corpusAttachment(t, filepath.Join(ts.Corpus, withAtt.File), attName)
	openMessage(*withAtt)
	shot("04-attachment-message")
	do("download "+attName, chromedp.Click(`//section[@class="atts"]//a[text()=`+xpathString(attName)+`]`))
	got := waitDownload(t, filepath.Join(downloads, attName), int64(len(want)))
	if !bytes.Equal(got, want) {
		t.Errorf("downloaded %s: %d bytes, differs from the corpus as Dovecot serves it (%d bytes)", attName, len(got), len(want))
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

	// The admin status page (alice is an admin in the users file).
	do("admin", chromedp.Navigate(ts.URL+"/web/admin"), chromedp.WaitVisible(chromedp.CSS(`table.activity`)))
	shot("06-admin")

	// Phone width.
	do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(ts.URL+"/web/folder?f=INBOX"), chromedp.WaitVisible(chromedp.CSS(`table.msgs`)))
	shot("07-inbox-phone", true)
	openMessage(*withAtt)
	shot("08-message-phone", true)
	do("desktop", chromedp.EmulateViewport(1280, 900))

	// Log out: back to the login page, and the session is gone.
	do("logout", chromedp.Click(chromedp.CSS(`.account button`)), chromedp.WaitVisible(chromedp.ID(`username`)))
	if status := text("logout notice", chromedp.Text(chromedp.CSS(`p.notice`))); status != "You have logged out." {
		t.Errorf("after logout: %q", status)
	}
	do("after logout", chromedp.Navigate(ts.URL+"/web/folder?f=INBOX"), chromedp.WaitVisible(chromedp.ID(`username`)))
	shot("09-logged-out")

	requests, dialogs := log.snapshot()
	if len(dialogs) > 0 {
		t.Errorf("script dialogs opened: %q", dialogs)
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, ts.URL+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("request outside the server: %s", u)
		}
	}
	if len(requests) < 10 {
		t.Errorf("only %d requests recorded: the network listener is not working", len(requests))
	}
}
