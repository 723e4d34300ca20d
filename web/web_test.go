package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/memstore"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

const (
	alicePW = "alice password"
	rootPW  = "root password"
)

// env is a UI served by httptest on 127.0.0.1:0 over a memstore, with
// users alice (regular) and root (admin).
type env struct {
	t      testing.TB
	srv    *httptest.Server
	store  *memstore.Store
	h      *Handler
	act    *Activity
	failed atomic.Int32 // LoginFailed calls
}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for _, u := range []struct{ name, pw, role string }{{"alice", alicePW, ""}, {"root", rootPW, ":admin"}} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u.name+":"+string(hash)+u.role)
	}
	usersFile := filepath.Join(dir, "users")
	if err := os.WriteFile(usersFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := auth.NewUsers(usersFile, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: memstore.New(), act: NewActivity(ActivityOptions{})}
	opts := Options{
		Store:    e.store,
		Sessions: auth.NewSessions(auth.SessionOptions{Users: users}),
		Users:    users,
		LoginFailed: func(r *http.Request, user string, err error) bool {
			e.failed.Add(1)
			return true
		},
		Logger:          zerolog.New(zerolog.NewTestWriter(t)),
		MaxMessageSize:  1 << 20,
		MaxResponseSize: 2 << 20,
		Settings:        []Setting{{Name: "max-message-size", Value: "1 MiB"}},
		Activity:        e.act,
	}
	if mod != nil {
		mod(&opts)
	}
	e.h, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// As the access log does: a reqlog entry per request, which the
	// handlers fill in and the activity recorder reads.
	withEntry := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := &reqlog.Entry{ID: "test", Log: zerolog.Nop()}
		e.act.Middleware(e.h).ServeHTTP(w, r.WithContext(reqlog.With(r.Context(), entry)))
	})
	e.srv = httptest.NewServer(withEntry)
	t.Cleanup(e.srv.Close)
	return e
}

// client is a browser-like client with a cookie jar that does not follow
// redirects, so tests see them.
type client struct {
	e  *env
	c  *http.Client
	ua string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, c: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, ua: "test-browser/1.0"}
}

type resp struct {
	*http.Response
	body string
}

func (c *client) do(method, path string, form url.Values, hdr ...string) resp {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return resp{res, string(b)}
}

func (c *client) get(path string) resp { return c.do(http.MethodGet, path, nil) }

func (c *client) login(user, pw string) {
	c.e.t.Helper()
	r := c.do(http.MethodPost, "/web/login", url.Values{"username": {user}, "password": {pw}, "next": {"/web/"}})
	if r.StatusCode != http.StatusSeeOther {
		c.e.t.Fatalf("login %s: %d\n%s", user, r.StatusCode, r.body)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf returns the token of a page.
func (c *client) csrf(page string) string {
	c.e.t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		c.e.t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

func (e *env) seed(user, folder, raw string, flags mailbox.Flags) mailbox.Message {
	e.t.Helper()
	m, err := e.store.Seed(user, folder, []byte(raw), mailbox.AppendOptions{Flags: flags})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func simpleMessage(from, subject string, date time.Time, body string) string {
	return fmt.Sprintf("From: %s\r\nTo: alice@example.com\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, subject, date.Format(time.RFC1123Z), body)
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	r := c.get("/web/")
	if r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "/web/folder?f=INBOX") {
		t.Fatalf("GET /web/: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r = c.get("/web/folder?f=INBOX")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/web/login?next=") {
		t.Fatalf("unauthenticated folder: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r = c.get(r.Header.Get("Location"))
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `name="next" value="/web/folder?f=INBOX"`) {
		t.Fatalf("login page: %d\n%s", r.StatusCode, r.body)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("page CSP %q", csp)
	}

	// A wrong password goes through LoginFailed (the shared throttle) and
	// sets no cookie.
	r = c.do(http.MethodPost, "/web/login", url.Values{"username": {"alice"}, "password": {"wrong"}})
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "not correct") || e.failed.Load() != 1 {
		t.Fatalf("wrong password: %d, failed=%d\n%s", r.StatusCode, e.failed.Load(), r.body)
	}
	if len(r.Cookies()) != 0 {
		t.Errorf("cookies set on a failed login: %v", r.Cookies())
	}
	// A login from another site is refused before the password is checked.
	r = c.do(http.MethodPost, "/web/login", url.Values{"username": {"alice"}, "password": {alicePW}}, "Sec-Fetch-Site", "cross-site")
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", r.StatusCode)
	}

	// The right password: session cookies HttpOnly, SameSite=Lax, and a
	// redirect to a local next only.
	r = c.do(http.MethodPost, "/web/login", url.Values{"username": {"alice"}, "password": {alicePW}, "next": {"//evil.example/"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/web/" {
		t.Fatalf("login: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	names := map[string]bool{}
	for _, ck := range r.Cookies() {
		names[ck.Name] = true
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure {
			t.Errorf("cookie %s: HttpOnly=%v SameSite=%v Secure=%v", ck.Name, ck.HttpOnly, ck.SameSite, ck.Secure)
		}
	}
	if !names[auth.SessionCookie] || !names[auth.CadataCookie] {
		t.Fatalf("session cookies missing: %v", r.Cookies())
	}
	r = c.get("/web/folder?f=INBOX")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `<span class="who">alice</span>`) {
		t.Fatalf("folder after login: %d\n%s", r.StatusCode, r.body)
	}
	if strings.Contains(r.body, "/web/admin") {
		t.Error("a regular user sees the admin link")
	}
	token := c.csrf(r.body)

	// Logout needs the token.
	if r := c.do(http.MethodPost, "/web/logout", url.Values{}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without token: %d", r.StatusCode)
	}
	if r := c.do(http.MethodPost, "/web/logout", url.Values{"csrf": {strings.Repeat("0", 32)}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("logout with a wrong token: %d", r.StatusCode)
	}
	r = c.do(http.MethodPost, "/web/logout", url.Values{"csrf": {token}})
	if r.StatusCode != http.StatusSeeOther || e.h.opts.Sessions.Len() != 0 {
		t.Fatalf("logout: %d, sessions left %d", r.StatusCode, e.h.opts.Sessions.Len())
	}
	if r := c.get("/web/folder?f=INBOX"); r.StatusCode != http.StatusFound {
		t.Fatalf("after logout: %d", r.StatusCode)
	}
}

func TestSessionSharedWithOtherLogins(t *testing.T) {
	// A session made elsewhere (the OWA form) is accepted by the UI: the
	// UI reads the same cookies from the same table.
	e := newEnv(t, nil)
	id, err := e.h.opts.Sessions.Login(context.Background(), "alice", alicePW)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	r := c.do(http.MethodGet, "/web/folder?f=INBOX", nil, "Cookie", "sessionid="+id)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("UI with an OWA session: %d", r.StatusCode)
	}
}

func TestFolderList(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageSize = 10 })
	base := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 25 {
		from := fmt.Sprintf("Sender %02d <s%02d@example.com>", i, i)
		subj := fmt.Sprintf("Subject %02d", i)
		if i%5 == 0 {
			subj += " needle"
		}
		if i == 7 {
			from = "Needle Person <np@example.com>"
		}
		flags := mailbox.FlagSeen
		if i%2 == 0 {
			flags = 0
		}
		e.seed("alice", mailbox.Inbox, simpleMessage(from, subj, base.Add(time.Duration(i)*time.Hour), strings.Repeat("x", i*10)), flags)
	}
	e.seed("alice", "Archive/2024", simpleMessage("a@example.com", "archived", base, "x"), 0)
	c := e.client()
	c.login("alice", alicePW)

	subjects := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<td class="c-subject"><a href="[^"]*">([^<]*)</a>`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	r := c.get("/web/folder?f=INBOX")
	got := subjects(r.body)
	if len(got) != 10 || got[0] != "Subject 24" || got[9] != "Subject 15 needle" {
		t.Fatalf("page 1 newest first: %q", got)
	}
	if !strings.Contains(r.body, "1–10 of 25") || !strings.Contains(r.body, "Page 1 of 3") {
		t.Errorf("pager text missing:\n%s", r.body)
	}
	// The tree shows nested folders and unread counts (13 of 25 unseen).
	if !strings.Contains(r.body, `class="d1"`) || !strings.Contains(r.body, `title="13 unread"`) {
		t.Errorf("folder tree:\n%s", r.body)
	}
	if got := subjects(c.get("/web/folder?f=INBOX&p=3").body); len(got) != 5 || got[4] != "Subject 00 needle" {
		t.Errorf("page 3: %q", got)
	}
	if got := subjects(c.get("/web/folder?f=INBOX&p=99").body); len(got) != 5 {
		t.Errorf("a page past the end shows the last: %q", got)
	}
	if got := subjects(c.get("/web/folder?f=INBOX&sort=subject&dir=asc").body); got[0] != "Subject 00 needle" || got[1] != "Subject 01" {
		t.Errorf("subject ascending: %q", got)
	}
	if got := subjects(c.get("/web/folder?f=INBOX&sort=size").body); got[0] != "Subject 24" {
		t.Errorf("size descending: %q", got)
	}
	if got := subjects(c.get("/web/folder?f=INBOX&sort=from&dir=asc").body); got[0] != "Subject 07" {
		t.Errorf("from ascending (Needle Person first): %q", got)
	}
	// Search matches subject or sender, case-insensitively.
	r = c.get("/web/folder?f=INBOX&q=NEEDLE")
	got = subjects(r.body)
	if len(got) != 6 || !strings.Contains(r.body, "of 6 matching") {
		t.Errorf("search: %q", got)
	}
	if r := c.get("/web/folder?f=Nope"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown folder: %d", r.StatusCode)
	}
}

func TestSelectPageTopKMatchesSort(t *testing.T) {
	// The partial selection used for early pages gives exactly the order
	// of a full sort, ties included.
	var msgs []mailbox.Message
	for i := range 1000 {
		msgs = append(msgs, mailbox.Message{UID: uint32(i + 1), Size: int64(i % 37),
			Envelope: mailbox.Envelope{Subject: fmt.Sprintf("s%d", i%91), Date: time.Unix(int64(i%53), 0)}})
	}
	for _, sortKey := range []string{"date", "size", "subject", "from"} {
		for _, asc := range []bool{false, true} {
			q := listQuery{Sort: sortKey, Asc: asc, Page: 1}
			small, _ := selectPage(msgs, q, 20) // topK: 20*8 < 1000
			full, _ := selectPage(msgs, q, 500) // full sort
			for i := range small {
				if small[i] != full[i] {
					t.Fatalf("%s asc=%v: position %d: topK %d, sort %d", sortKey, asc, i, small[i], full[i])
				}
			}
		}
	}
}

const hostileHTML = "From: Mallory <m@example.net>\r\nSubject: hostile\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
	`<p>Hi</p><script>document.title='pwned'</script><img src="x" onerror="alert(1)"><a href="javascript:alert(2)">click</a>` +
	`<iframe src="http://tracker.example/"></iframe><img src="http://tracker.example/pixel.gif">` + "\r\n"

func TestMessageHostile(t *testing.T) {
	e := newEnv(t, nil)
	m := e.seed("alice", mailbox.Inbox, hostileHTML, 0)
	c := e.client()
	c.login("alice", alicePW)
	r := c.get("/web/msg?" + url.Values{"f": {"INBOX"}, "n": {m.Name}}.Encode())
	if r.StatusCode != http.StatusOK {
		t.Fatalf("message page: %d\n%s", r.StatusCode, r.body)
	}
	if strings.Contains(r.body, "pwned") || strings.Contains(r.body, "tracker.example") {
		t.Fatalf("message content outside the frame:\n%s", r.body)
	}
	iframe := regexp.MustCompile(`<iframe[^>]*>`).FindString(r.body)
	if !strings.Contains(iframe, `sandbox="`) || strings.Contains(iframe, "allow-scripts") {
		t.Fatalf("iframe %q: want a sandbox without allow-scripts", iframe)
	}
	if !strings.Contains(r.body, "1 remote image blocked") {
		t.Errorf("no blocked-image notice:\n%s", r.body)
	}
	src := regexp.MustCompile(`src="(/web/body\?[^"]*)"`).FindStringSubmatch(iframe)
	if src == nil {
		t.Fatalf("no frame src in %q", iframe)
	}
	frame := c.get(html.UnescapeString(src[1]))
	if frame.StatusCode != http.StatusOK {
		t.Fatalf("frame: %d %s", frame.StatusCode, frame.body)
	}
	csp := frame.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "img-src 'self' data:", "sandbox", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("frame CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "allow-scripts") || strings.Contains(csp, "script-src") {
		t.Errorf("frame CSP allows scripts: %q", csp)
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "<iframe", "tracker.example"} {
		if strings.Contains(frame.body, bad) {
			t.Errorf("frame holds %q:\n%s", bad, frame.body)
		}
	}
	if !strings.Contains(frame.body, "<p>Hi</p>") {
		t.Errorf("frame lost the text:\n%s", frame.body)
	}
	// Asking for remote images lets them through, in the frame only.
	frame = c.get(html.UnescapeString(src[1]) + "&remote=1")
	if !strings.Contains(frame.body, "http://tracker.example/pixel.gif") || !strings.Contains(frame.Header.Get("Content-Security-Policy"), "img-src 'self' data: https: http:") {
		t.Errorf("remote images not shown on request:\n%s", frame.body)
	}
	// Another user cannot reach alice's message: the UI opens the
	// logged-in user's own mailbox only.
	other := e.client()
	other.login("root", rootPW)
	if r := other.get("/web/msg?" + url.Values{"f": {"INBOX"}, "n": {m.Name}}.Encode()); r.StatusCode != http.StatusNotFound {
		t.Errorf("root opening alice's message: %d", r.StatusCode)
	}
}

func mixedMessage(att []byte, attName string) string {
	b64 := base64.StdEncoding.EncodeToString(att)
	var lines []string
	for len(b64) > 76 {
		lines = append(lines, b64[:76])
		b64 = b64[76:]
	}
	lines = append(lines, b64)
	return "From: Bob <bob@example.com>\r\nSubject: with attachment\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe, see attached\r\n" +
		"--XX\r\nContent-Type: application/pdf; name=\"" + attName + "\"\r\nContent-Disposition: attachment; filename=\"" + attName + "\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + strings.Join(lines, "\r\n") + "\r\n--XX--\r\n"
}

func TestAttachments(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxMessageSize = 64 << 10; o.MaxResponseSize = 64 << 10 })
	small := bytes.Repeat([]byte("%PDF-small "), 100)
	big := bytes.Repeat([]byte("0123456789"), 10<<10) // 100 KiB: over the 64 KiB limits
	ms := e.seed("alice", mailbox.Inbox, mixedMessage(small, "Résumé.pdf"), 0)
	mb := e.seed("alice", mailbox.Inbox, mixedMessage(big, "big.pdf"), 0)
	c := e.client()
	c.login("alice", alicePW)

	page := c.get("/web/msg?" + url.Values{"f": {"INBOX"}, "n": {ms.Name}}.Encode())
	link := regexp.MustCompile(`<a href="(/web/part\?[^"]*)" download="Résumé.pdf">Résumé.pdf</a>`).FindStringSubmatch(page.body)
	if link == nil {
		t.Fatalf("no attachment link:\n%s", page.body)
	}
	if !strings.Contains(page.body, `href="/exchange/alice/Inbox/`) {
		t.Errorf("no link to the original on WebDAV:\n%s", page.body)
	}
	r := c.get(html.UnescapeString(link[1]))
	if r.StatusCode != http.StatusOK || r.body != string(small) {
		t.Fatalf("download: %d, %d bytes, want %d", r.StatusCode, len(r.body), len(small))
	}
	if r.Header.Get("Content-Length") != fmt.Sprint(len(small)) || r.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("headers: %v", r.Header)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "filename*=utf-8''R%C3%A9sum%C3%A9.pdf") {
		t.Errorf("Content-Disposition %q", cd)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("download headers: %v", r.Header)
	}
	// Resumed downloads: a Range gives the tail.
	if r := c.do("GET", html.UnescapeString(link[1]), nil, "Range", "bytes=-10"); r.StatusCode != http.StatusPartialContent || r.body != string(small[len(small)-10:]) {
		t.Errorf("Range: %d %q", r.StatusCode, r.body)
	}
	// A stale id (the message was replaced) is refused.
	if r := c.get(strings.Replace(html.UnescapeString(link[1]), "id=", "id=9", 1)); r.StatusCode != http.StatusNotFound {
		t.Errorf("stale id: %d", r.StatusCode)
	}

	// The big one: the message is over max-message-size (a legacy
	// message): it opens, shows its text and explains what is refused.
	page = c.get("/web/msg?" + url.Values{"f": {"INBOX"}, "n": {mb.Name}}.Encode())
	if page.StatusCode != http.StatusOK {
		t.Fatalf("oversized message page: %d", page.StatusCode)
	}
	for _, want := range []string{"over the limit max-message-size of 64 KiB", "cannot be downloaded whole", "Not downloadable: 100 KiB is over the limit max-message-size of 64 KiB"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("oversized page lacks %q:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "Download original") {
		t.Error("the original is offered for download although it is over the limit")
	}
	frameSrc := regexp.MustCompile(`src="(/web/body\?[^"]*)"`).FindStringSubmatch(page.body)
	frame := c.get(html.UnescapeString(frameSrc[1]))
	if !strings.Contains(frame.body, "Grüße, see attached") {
		t.Errorf("the text of the oversized message is not shown:\n%s", frame.body)
	}
	// Asking for the refused part directly: 403 naming the limit.
	st, err := mustMailbox(t, e, "alice").Structure(context.Background(), "INBOX", mb.Name)
	if err != nil {
		t.Fatal(err)
	}
	r = c.get("/web/part?" + url.Values{"f": {"INBOX"}, "n": {mb.Name}, "id": {fmt.Sprint(mb.ID)}, "i": {fmt.Sprint(len(st.Parts) - 1)}}.Encode())
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "max-message-size") {
		t.Errorf("refused part: %d\n%s", r.StatusCode, r.body)
	}
}

func mustMailbox(t *testing.T, e *env, user string) mailbox.Mailbox {
	t.Helper()
	mb, err := e.store.Mailbox(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func TestActions(t *testing.T) {
	e := newEnv(t, nil)
	m := e.seed("alice", mailbox.Inbox, simpleMessage("b@example.com", "act on me", time.Now(), "x"), 0)
	e.seed("alice", "Archive", simpleMessage("b@example.com", "act on me", time.Now(), "y"), 0) // same name there
	c := e.client()
	c.login("alice", alicePW)
	page := c.get("/web/msg?" + url.Values{"f": {"INBOX"}, "n": {m.Name}}.Encode())
	token := c.csrf(page.body)
	mb := mustMailbox(t, e, "alice")
	stat := func(folder, name string) mailbox.Message {
		t.Helper()
		got, err := mb.Stat(context.Background(), folder, name)
		if err != nil {
			t.Fatalf("Stat %s/%s: %v", folder, name, err)
		}
		return got
	}
	act := func(op string, extra ...string) resp {
		t.Helper()
		v := url.Values{"csrf": {token}, "f": {"INBOX"}, "n": {m.Name}, "op": {op}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return c.do(http.MethodPost, "/web/action", v)
	}
	// Without the token nothing happens.
	if r := c.do(http.MethodPost, "/web/action", url.Values{"f": {"INBOX"}, "n": {m.Name}, "op": {"flag"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("action without token: %d", r.StatusCode)
	}
	if r := act("flag"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("flag: %d %s", r.StatusCode, r.body)
	}
	if r := act("read", "ajax", "1"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("read (ajax): %d", r.StatusCode)
	}
	if got := stat("INBOX", m.Name).Flags; got&mailbox.FlagFlagged == 0 || got&mailbox.FlagSeen == 0 {
		t.Fatalf("flags after flag+read: %v", got)
	}
	act("unflag")
	act("unread")
	if got := stat("INBOX", m.Name).Flags; got != 0 {
		t.Fatalf("flags after unflag+unread: %v", got)
	}
	// Cross-site POSTs are refused even with the token.
	if r := c.do(http.MethodPost, "/web/action", url.Values{"csrf": {token}, "f": {"INBOX"}, "n": {m.Name}, "op": {"delete"}}, "Sec-Fetch-Site", "cross-site"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site action: %d", r.StatusCode)
	}
	// Move into a folder that holds the same name: it gets "-2".
	if r := act("move", "to", "Archive"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("move: %d %s", r.StatusCode, r.body)
	}
	moved := strings.TrimSuffix(m.Name, ".EML") + "-2.EML"
	if got := stat("Archive", moved); got.ID != m.ID {
		t.Fatalf("moved message has ID %d, want %d", got.ID, m.ID)
	}
	// Delete: to Trash (created as it does not exist), then for good.
	v := url.Values{"csrf": {token}, "f": {"Archive"}, "n": {moved}, "op": {"delete"}}
	if r := c.do(http.MethodPost, "/web/action", v); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", r.StatusCode, r.body)
	}
	stat("Trash", moved)
	v.Set("f", "Trash")
	if r := c.do(http.MethodPost, "/web/action", v); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete from Trash: %d", r.StatusCode)
	}
	if _, err := mb.Stat(context.Background(), "Trash", moved); err == nil {
		t.Fatal("message still in Trash after deleting it there")
	}
	if r := act("nonsense"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown op: %d", r.StatusCode)
	}
}

func TestAdmin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice", alicePW)
	if r := c.get("/web/admin"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("admin page for a regular user: %d", r.StatusCode)
	}
	c.get("/web/folder?f=INBOX")
	root := e.client()
	root.ua = "RootBrowser/2"
	root.login("root", rootPW)
	r := root.get("/web/admin")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("admin page: %d", r.StatusCode)
	}
	for _, want := range []string{"max-message-size", "1 MiB", `<th scope="row">alice</th>`, "test-browser/1.0", `<th scope="row">root</th>`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("admin page lacks %q:\n%s", want, r.body)
		}
	}
}

func TestActivityWindowAndBounds(t *testing.T) {
	now := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	a := NewActivity(ActivityOptions{Now: func() time.Time { return now }})
	a.Record(Event{Time: now.Add(-2 * time.Hour), User: "old", Status: 200})
	a.Record(Event{Time: now.Add(-30 * time.Minute), User: "bob", Status: 413, Refused: true, BytesIn: 100, UserAgent: "A"})
	a.Record(Event{Time: now, User: "bob", Status: 503, Throttled: true, BytesOut: 50, UserAgent: "B"})
	a.Record(Event{Time: now, User: "bob", Status: 200, UserAgent: "B"})
	for i := range maxAgentsPerUser + 5 {
		a.Record(Event{Time: now, User: "carol", Status: 200, UserAgent: fmt.Sprint("agent", i)})
	}
	got := a.LastHour()
	if len(got) != 2 || got[0].User != "carol" || got[1].User != "bob" {
		t.Fatalf("LastHour = %+v", got)
	}
	bob := got[1]
	if bob.Requests != 3 || bob.Refused != 1 || bob.Throttled != 1 || bob.Errors != 1 || bob.BytesIn != 100 || bob.BytesOut != 50 {
		t.Errorf("bob = %+v", bob)
	}
	if len(bob.Agents) != 2 || bob.Agents[0] != (AgentCount{"B", 2}) {
		t.Errorf("bob's agents = %+v", bob.Agents)
	}
	if got[0].Agents[0] != (AgentCount{otherAgents, 5}) {
		t.Errorf("carol's agents past the cap: %+v", got[0].Agents)
	}
	// Users past the per-minute cap are counted together.
	for i := range maxActivityUsers + 10 {
		a.Record(Event{Time: now, User: fmt.Sprint("u", i)})
	}
	found := false
	for _, u := range a.LastHour() {
		if u.User == otherUsers && u.Requests == 12 { // 10 beyond the cap + carol's and bob's slots were taken first
			found = true
		}
	}
	if !found {
		t.Errorf("no %q bucket with the overflow", otherUsers)
	}
}

func TestStaticAndNotFound(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	r := c.get("/web/static/style.css")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("style.css: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := c.get("/web/static/app.js"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "autoread") {
		t.Fatalf("app.js: %d", r.StatusCode)
	}
	if r := c.get("/web/nothing-here"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown page: %d", r.StatusCode)
	}
}
