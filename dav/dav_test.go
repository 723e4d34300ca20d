package dav_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

func do(t *testing.T, ts *testServer, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	req.SetBasicAuth("alice", "alice-pw")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func seed(t *testing.T, ts *testServer, user, folder, raw string, flags mailbox.Flags) mailbox.Message {
	t.Helper()
	mb, err := ts.store.Mailbox(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	if folder != mailbox.Inbox {
		if err := mb.CreateFolder(context.Background(), folder); err != nil && !errors.Is(err, mailbox.ErrExists) {
			t.Fatal(err)
		}
	}
	m, err := mb.Append(context.Background(), folder, strings.NewReader(raw), mailbox.AppendOptions{Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const sampleMsg = "From: Émilie <e@example.com>\r\nTo: alice@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= & <friends>\r\nDate: Tue, 02 Jan 2024 03:04:05 +0000\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nPDF\r\n--x--\r\n"

// rawRequest sends a request line exactly as given, so no client library
// normalises the path on the way.
func rawRequest(t *testing.T, ts *testServer, method, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2UtcHc=\r\nDepth: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPathTricks(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	seed(t, ts, "bob", mailbox.Inbox, sampleMsg, 0)
	seed(t, ts, "alice", mailbox.Inbox, sampleMsg, 0)
	for _, p := range []string{
		"/exchange/alice/Inbox/%2e%2e/%2e%2e/bob/Inbox/",
		"/exchange/alice/%2e%2e/bob/",
		"/exchange/alice/Inbox%2f..%2f..%2fbob/",
		"/exchange/alice/Inbox/%00",
		"/exchange/alice/Inbox%5c..%5cbob",
		"/exchange/alice/%c0%ae%c0%ae/bob/",
		"/exchange/alice/Inbox/%zz",
	} {
		if got := rawRequest(t, ts, "PROPFIND", p); got != http.StatusBadRequest {
			t.Errorf("PROPFIND %s = %d, want 400", p, got)
		}
	}
	if got := rawRequest(t, ts, "PROPFIND", "/exchange/bob/Inbox/"); got != http.StatusForbidden {
		t.Errorf("PROPFIND of another user's mailbox = %d, want 403", got)
	}
	if got := rawRequest(t, ts, "PROPFIND", "/exchange/alice/Inbox/"); got != http.StatusMultiStatus {
		t.Errorf("PROPFIND of own Inbox = %d, want 207", got)
	}
}

func TestPropfindMailProps(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	m := seed(t, ts, "alice", mailbox.Inbox, sampleMsg, mailbox.FlagSeen)
	resp, body := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:prop><D:getcontentlength/><h:subject/><h:from/><h:read/><h:hasattachment/><h:date/><h:nope/></D:prop></D:propfind>`, "Depth", "1")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Length"); got != fmt.Sprint(len(body)) {
		t.Errorf("Content-Length %q, body %d bytes", got, len(body))
	}
	for _, want := range []string{
		fmt.Sprintf("<a:getcontentlength>%d</a:getcontentlength>", m.Size),
		"<d:subject>Grüße &amp; &lt;friends&gt;</d:subject>",
		`<d:read b:dt="boolean">1</d:read>`,
		`<d:hasattachment b:dt="boolean">1</d:hasattachment>`,
		`<d:date b:dt="dateTime.tz">2024-01-02T03:04:05.000Z</d:date>`,
		"/exchange/alice/Inbox/Gr%C3%BC%C3%9Fe%20%26%20%3Cfriends%3E.EML</a:href>",
		"<d:nope/></a:prop><a:status>HTTP/1.1 404 Resource Not Found</a:status>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("response lacks %q:\n%s", want, body)
		}
	}
	// No digit three bytes after "<" (exchange-webdav.md §0.3 #2).
	if loc := regexp.MustCompile(`<..[0-9]`).FindString(body); loc != "" {
		t.Errorf("response has a digit 3 bytes after '<': %q", loc)
	}
	// getcontentlength equals the bytes GET returns.
	_, got := do(t, ts, "GET", "/exchange/alice/Inbox/Gr%C3%BC%C3%9Fe%20%26%20%3Cfriends%3E.EML", "")
	if int64(len(got)) != m.Size || got != sampleMsg {
		t.Errorf("GET returned %d bytes, want %d exact", len(got), m.Size)
	}
}

func TestPutLimits(t *testing.T) {
	ts := newTestServer(t, dav.Config{MaxMessageSize: 1000})
	big := strings.Repeat("x", 1001)
	resp, body := do(t, ts, "PUT", "/exchange/alice/Inbox/big.EML", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "max-message-size") || !strings.Contains(body, "1001") {
		t.Errorf("PUT over limit: %d %q", resp.StatusCode, body)
	}
	// Chunked: no Content-Length, counted while streaming.
	req, _ := http.NewRequest("PUT", ts.URL+"/exchange/alice/Inbox/chunked.EML", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.SetBasicAuth("alice", "alice-pw")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked PUT over limit = %d, want 413", r2.StatusCode)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	if l, _ := mb.List(context.Background(), mailbox.Inbox); len(l) != 0 {
		t.Errorf("refused PUTs left %d messages", len(l))
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Inbox/ok.EML", strings.Repeat("x", 1000)); resp.StatusCode != http.StatusCreated {
		t.Errorf("PUT at the limit = %d, want 201", resp.StatusCode)
	}
}

func TestLegacyOversized(t *testing.T) {
	ts := newTestServer(t, dav.Config{MaxMessageSize: 200})
	// Stored before the limit: the store itself accepts it.
	m := seed(t, ts, "alice", mailbox.Inbox, sampleMsg+strings.Repeat("y", 300), 0)
	_, body := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "1")
	if !strings.Contains(body, fmt.Sprintf("<a:getcontentlength>%d</a:getcontentlength>", m.Size)) || !strings.Contains(body, `<h:oversized b:dt="boolean">1</h:oversized>`) {
		t.Errorf("listing lacks exact size or oversized marker:\n%s", body)
	}
	resp, body := do(t, ts, "GET", "/exchange/alice/Inbox/"+strings.ReplaceAll(m.Name, " ", "%20"), "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "max-message-size") || !strings.Contains(body, fmt.Sprint(m.Size)) || !strings.Contains(body, "200") {
		t.Errorf("GET of legacy message: %d %q", resp.StatusCode, body)
	}
}

func TestResponseCap(t *testing.T) {
	ts := newTestServer(t, dav.Config{MaxResponseSize: 2000})
	for i := 0; i < 10; i++ {
		seed(t, ts, "alice", mailbox.Inbox, sampleMsg, 0)
	}
	resp, body := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "1")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "max-response-size") {
		t.Errorf("PROPFIND over the response cap: %d %q", resp.StatusCode, body)
	}
	resp, _ = do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "0")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Errorf("small PROPFIND = %d", resp.StatusCode)
	}
}

func TestXMLCaps(t *testing.T) {
	ts := newTestServer(t, dav.Config{MaxXMLElements: 50, MaxXMLDepth: 8, MaxXMLBytes: 4096})
	many := `<D:propfind xmlns:D="DAV:"><D:prop>` + strings.Repeat("<D:getetag/>", 60) + `</D:prop></D:propfind>`
	deep := `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:p xmlns:x="u">` + strings.Repeat("<x:a>", 10) + strings.Repeat("</x:a>", 10) + `</x:p></D:prop></D:set></D:propertyupdate>`
	huge := `<D:propfind xmlns:D="DAV:"><!--` + strings.Repeat("z", 5000) + `--><D:allprop/></D:propfind>`
	bomb := `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><D:propfind xmlns:D="DAV:"><D:prop>&b;</D:prop></D:propfind>`
	for _, c := range []struct {
		name, method, body string
		want               int
	}{
		{"elements", "PROPFIND", many, 413},
		{"depth", "PROPPATCH", deep, 413},
		{"bytes", "PROPFIND", huge, 413},
		{"entities", "PROPFIND", bomb, 400},
		{"garbage", "PROPFIND", "<D:propfind xmlns:D='DAV:'><D:prop>", 400},
	} {
		resp, body := do(t, ts, c.method, "/exchange/alice/Inbox/", c.body, "Depth", "0", "Content-Type", "text/xml")
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}
}

func TestDepthInfinityCap(t *testing.T) {
	ts := newTestServer(t, dav.Config{MaxDepthInfinity: 5})
	for i := 0; i < 6; i++ {
		seed(t, ts, "alice", mailbox.Inbox, sampleMsg, 0)
	}
	resp, body := do(t, ts, "PROPFIND", "/exchange/alice/", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "propfind-finite-depth") {
		t.Errorf("Depth infinity over cap: %d %s", resp.StatusCode, body)
	}
}

func TestConditionalAndRange(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	do(t, ts, "PUT", "/exchange/alice/Inbox/m.EML", sampleMsg)
	resp, body := do(t, ts, "GET", "/exchange/alice/Inbox/m.EML", "", "Range", "bytes=6-9")
	if resp.StatusCode != http.StatusPartialContent || body != sampleMsg[6:10] {
		t.Errorf("Range: %d %q", resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("no strong ETag: %q", etag)
	}
	if resp, _ := do(t, ts, "GET", "/exchange/alice/Inbox/m.EML", "", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match = %d, want 304", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Inbox/m.EML", "new", "If-Match", `"nope"`); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("PUT If-Match mismatch = %d, want 412", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Inbox/m.EML", "new", "If-None-Match", "*"); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("PUT If-None-Match * on existing = %d, want 412", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Inbox/m.EML", "new", "If-Match", etag); resp.StatusCode != http.StatusOK {
		t.Errorf("PUT If-Match current = %d, want 200", resp.StatusCode)
	}
	// The ETag in an If header (RFC 4918 §10.4), which x/net/webdav ignores.
	resp, _ = do(t, ts, "PUT", "/exchange/alice/Inbox/m.EML", "newer", "If", fmt.Sprintf("([%s])", etag))
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("PUT with If: stale etag = %d, want 412", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "GET", "/exchange/alice/Inbox/m.EML", "", "Range", strings.Repeat("bytes=0-1,", 40)+"bytes=2-3"); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("absurd Range list = %d, want 416", resp.StatusCode)
	}
}

func TestLockReleasedOnDelete(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	do(t, ts, "PUT", "/exchange/alice/Inbox/l.EML", sampleMsg)
	resp, _ := do(t, ts, "LOCK", "/exchange/alice/Inbox/l.EML", `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`)
	tok := resp.Header.Get("Lock-Token")
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("LOCK = %d %q", resp.StatusCode, tok)
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Inbox/l.EML", "x"); resp.StatusCode != http.StatusLocked {
		t.Errorf("PUT on locked without token = %d, want 423", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "DELETE", "/exchange/alice/Inbox/l.EML", "", "If", "("+tok+")"); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE with token = %d, want 200", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Inbox/l.EML", "x"); resp.StatusCode != http.StatusCreated {
		t.Errorf("PUT after DELETE released the lock = %d, want 201", resp.StatusCode)
	}
	if n := ts.h.LockCount(); n != 0 {
		t.Errorf("%d locks left after DELETE", n)
	}
}

func TestProppatchReadSetsSeen(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	m := seed(t, ts, "alice", mailbox.Inbox, sampleMsg, 0)
	href := "/exchange/alice/Inbox/" + strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(m.Name, "&", "%26"), " ", "%20"), "<", "%3C"), ">", "%3E")
	resp, body := do(t, ts, "PROPPATCH", href, `<D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:set><D:prop><h:read>1</h:read></D:prop></D:set></D:propertyupdate>`)
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(body, "200 OK") {
		t.Fatalf("PROPPATCH: %d %s", resp.StatusCode, body)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	got, err := mb.Stat(context.Background(), mailbox.Inbox, m.Name)
	if err != nil || got.Flags&mailbox.FlagSeen == 0 {
		t.Errorf("Seen not set: %v %v", got.Flags, err)
	}
	// A protected live property fails the whole patch (RFC 4918 §9.2).
	resp, body = do(t, ts, "PROPPATCH", href, `<D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:set><D:prop><h:read>0</h:read><D:getcontentlength>5</D:getcontentlength></D:prop></D:set></D:propertyupdate>`)
	if !strings.Contains(body, "403 Forbidden") || !strings.Contains(body, "424 Failed Dependency") {
		t.Errorf("protected property patch: %s", body)
	}
	got, _ = mb.Stat(context.Background(), mailbox.Inbox, m.Name)
	if got.Flags&mailbox.FlagSeen == 0 {
		t.Errorf("failed patch changed the Seen flag")
	}
}

func TestMessagesOnlyInFolders(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/x.EML", "hi"); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT at mailbox root = %d, want 409", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PUT", "/exchange/alice/Nope/x.EML", "hi"); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT in missing folder = %d, want 409", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "DELETE", "/exchange/alice/Inbox/", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("DELETE Inbox = %d, want 403", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "MKCOL", "/exchange/alice/a.b/", ""); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusCreated {
		t.Errorf("MKCOL a.b = %d", resp.StatusCode)
	}
	resp, body := do(t, ts, "PROPFIND", "/exchange/alice/", "", "Depth", "1")
	if resp.StatusCode != http.StatusMultiStatus || !bytes.Contains([]byte(body), []byte("/exchange/alice/Inbox/</a:href>")) {
		t.Errorf("root listing: %d %s", resp.StatusCode, body)
	}
}

func TestAllpropOmitsInapplicable(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	_, body := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "0")
	if strings.Contains(body, "404") || !strings.Contains(body, "<a:collection/>") {
		t.Errorf("allprop on a folder:\n%s", body)
	}
}

func TestExchangeIndexProps(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	seed(t, ts, "alice", mailbox.Inbox, sampleMsg, 0)
	m2 := seed(t, ts, "alice", mailbox.Inbox, sampleMsg, mailbox.FlagSeen|mailbox.FlagFlagged)
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	f, _ := mb.Folder(context.Background(), mailbox.Inbox)
	body := `<D:propfind xmlns:D="DAV:" xmlns:e="http://schemas.microsoft.com/mapi/proptag/" xmlns:r="http://schemas.microsoft.com/repl/"><D:prop><e:x0e230003/><e:x0e080003/><e:x0e070003/><e:x10900003/><e:x10f3001f/><e:x67510003/><r:contenttag/><D:objectcount/><D:isfolder/></D:prop></D:propfind>`
	_, got := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", body, "Depth", "1")
	for _, want := range []string{
		fmt.Sprintf(`<e:x0e230003 b:dt="int">%d</e:x0e230003><e:x0e080003 b:dt="int">%d</e:x0e080003><e:x0e070003 b:dt="int">1</e:x0e070003><e:x10900003 b:dt="int">2</e:x10900003><e:x10f3001f>%s</e:x10f3001f>`, m2.UID, m2.Size, xmlEsc(m2.Name)),
		fmt.Sprintf(`<e:x67510003 b:dt="int">%d</e:x67510003>`, f.UIDNext),
		`<a:objectcount b:dt="int">2</a:objectcount>`,
		`<a:isfolder b:dt="boolean">1</a:isfolder>`,
		`<i:contenttag>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("response lacks %q:\n%s", want, got)
		}
	}
	if m2.UID == 0 || f.UIDNext <= m2.UID {
		t.Errorf("UID %d, UIDNext %d", m2.UID, f.UIDNext)
	}
	// The ctag moves with every change in the folder.
	ctag := regexp.MustCompile(`<i:contenttag>([^<]*)<`)
	before := ctag.FindStringSubmatch(got)[1]
	mb.SetFlags(context.Background(), mailbox.Inbox, m2.Name, mailbox.FlagSeen, false)
	_, got = do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", body, "Depth", "0")
	if after := ctag.FindStringSubmatch(got)[1]; after == before {
		t.Errorf("contenttag %q did not change after a flag change", after)
	}
}

func xmlEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func TestRootSpecialFolders(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	for _, f := range []string{"Sent", "Trash", "Drafts", "Archive"} {
		if err := mb.CreateFolder(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	// What DavMail asks at login (exchange-webdav.md §11 step 7).
	body := `<D:propfind xmlns:D="DAV:"><D:prop><inbox xmlns="urn:schemas:httpmail:"/><deleteditems xmlns="urn:schemas:httpmail:"/><sentitems xmlns="urn:schemas:httpmail:"/><sendmsg xmlns="urn:schemas:httpmail:"/><drafts xmlns="urn:schemas:httpmail:"/><calendar xmlns="urn:schemas:httpmail:"/><outbox xmlns="urn:schemas:httpmail:"/><msgfolderroot xmlns="urn:schemas:httpmail:"/></D:prop></D:propfind>`
	resp, got := do(t, ts, "PROPFIND", "/exchange/alice/", body, "Depth", "0")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("status %d", resp.StatusCode)
	}
	base := ts.URL + "/exchange/alice"
	for _, want := range []string{
		"<d:inbox>" + base + "/Inbox</d:inbox>",
		"<d:deleteditems>" + base + "/Trash</d:deleteditems>",
		"<d:sentitems>" + base + "/Sent</d:sentitems>",
		"<d:drafts>" + base + "/Drafts</d:drafts>",
		"<d:msgfolderroot>" + base + "/</d:msgfolderroot>",
		"<d:sendmsg/>", "<d:calendar/>", "<d:outbox/>", // absent: in the 404 propstat
	} {
		if !strings.Contains(got, want) {
			t.Errorf("root discovery lacks %q:\n%s", want, got)
		}
	}
	// On a folder, the root-only properties are absent.
	_, got = do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", body, "Depth", "0")
	if strings.Contains(got, "<d:inbox>") {
		t.Errorf("folder answers root-only property:\n%s", got)
	}
}

// TestDepthNoroot: Exchange's "1,noroot" lists the members without the
// collection itself (exchange-webdav.md §3.2).
func TestDepthNoroot(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	seed(t, ts, "alice", mailbox.Inbox, sampleMsg, 0)
	_, withRoot := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "1")
	_, noRoot := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "1,noroot")
	if strings.Count(withRoot, "<a:response>") != 2 || strings.Count(noRoot, "<a:response>") != 1 || strings.Contains(noRoot, "/Inbox/</a:href>") {
		t.Errorf("Depth 1: %d responses; 1,noroot: %d responses:\n%s", strings.Count(withRoot, "<a:response>"), strings.Count(noRoot, "<a:response>"), noRoot)
	}
}

// stalledBody yields some bytes, then fails as a connection whose read
// deadline passed does.
type stalledBody struct{ sent bool }

func (s *stalledBody) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		return copy(p, "Subject: x\r\n\r\npartial"), nil
	}
	return 0, os.ErrDeadlineExceeded
}

func (s *stalledBody) Close() error { return nil }

// TestClientMistakes: failures of the client's making get a 4xx, never
// a 5xx.
func TestClientMistakes(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	req := httptest.NewRequest("PUT", "/exchange/alice/Inbox/stalled.EML", nil)
	req.Body = &stalledBody{}
	req.ContentLength = 1000
	req.SetBasicAuth("alice", "alice-pw")
	rec := httptest.NewRecorder()
	withBasic(ts.h).ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestTimeout {
		t.Errorf("PUT with a stalled body: %d %s, want 408", rec.Code, rec.Body.String())
	}
	if resp, _ := do(t, ts, "GET", "/exchange/alice/Inbox/stalled.EML", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the stalled PUT left a message: %d", resp.StatusCode)
	}
	req = httptest.NewRequest("PROPFIND", "/exchange/alice/Inbox/", nil)
	req.Header.Add("Depth", "0")
	req.Header.Add("Depth", "infinity")
	req.SetBasicAuth("alice", "alice-pw")
	rec = httptest.NewRecorder()
	withBasic(ts.h).ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("two Depth headers: %d, want 400", rec.Code)
	}
}
