package dav_test

import (
	"context"
	"encoding/xml"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

func searchBody(sql string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(sql))
	return "<?xml version=\"1.0\"?>\n<d:searchrequest xmlns:d=\"DAV:\">\n        <d:sql>" + b.String() + "</d:sql>\n</d:searchrequest>"
}

// multistatus is the parsed shape of a SEARCH answer.
type multistatus struct {
	Responses []struct {
		Href  string `xml:"href"`
		Props []struct {
			Inner []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"propstat>prop"`
	} `xml:"response"`
}

func parseMS(t *testing.T, body string) multistatus {
	t.Helper()
	var ms multistatus
	if err := xml.Unmarshal([]byte(body), &ms); err != nil {
		t.Fatalf("response does not parse: %v\n%s", err, body)
	}
	return ms
}

func searchFixture(t *testing.T) (*testServer, []mailbox.Message) {
	ts := newTestServer(t, dav.Config{})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	for _, f := range []string{"Sent Items", "Archive", "Archive/2024"} {
		if err := mb.CreateFolder(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []mailbox.Message
	for i, s := range []struct {
		subj  string
		flags mailbox.Flags
	}{{"hello world", 0}, {"Hello again", mailbox.FlagSeen}, {"other", mailbox.FlagDeleted}} {
		raw := "From: a@example.com\r\nSubject: " + s.subj + "\r\nMessage-ID: <m" + string(rune('1'+i)) + "@example.com>\r\nDate: Tue, 02 Jan 2024 03:04:05 +0000\r\n\r\nbody\r\n"
		m, err := mb.Append(context.Background(), mailbox.Inbox, strings.NewReader(raw), mailbox.AppendOptions{Flags: s.flags})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	seed(t, ts, "alice", "Sent Items", "Subject: sent\r\n\r\nx\r\n", mailbox.FlagSeen)
	return ts, msgs
}

func TestSearchFolderList(t *testing.T) {
	ts, _ := searchFixture(t)
	// §5.2 (a), exactly as DavMail sends it (one line).
	sql := `SELECT "http://schemas.microsoft.com/exchange/permanenturl","DAV:nosubs","http://schemas.microsoft.com/repl/contenttag","http://schemas.microsoft.com/exchange/outlookfolderclass","DAV:hassubs","DAV:getlastmodified","DAV:displayname","DAV:objectcount","urn:schemas:httpmail:unreadcount","http://schemas.microsoft.com/mapi/proptag/x67510003" FROM SCOPE('Deep TRAVERSAL OF "/exchange/alice/"') WHERE ("DAV:isfolder" = true And "DAV:ishidden" = false And (("http://schemas.microsoft.com/exchange/outlookfolderclass" = 'IPF.Note' Or "http://schemas.microsoft.com/exchange/outlookfolderclass" = 'IPF.Note.Microsoft.Conversation' Or "http://schemas.microsoft.com/exchange/outlookfolderclass" is null))) ORDER BY "http://schemas.microsoft.com/mapi/proptag/x0e230003" DESC`
	resp, body := do(t, ts, "SEARCH", "/exchange/alice/", searchBody(sql), "Content-Type", "text/xml; charset=UTF-8")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type %q, want exactly text/xml (exchange-webdav.md §0.3 #1)", ct)
	}
	if loc := regexp.MustCompile(`<..[0-9]`).FindString(body); loc != "" {
		t.Errorf("digit 3 bytes after '<' (§0.3 #2): %q", loc)
	}
	ms := parseMS(t, body)
	var hrefs []string
	for _, r := range ms.Responses {
		hrefs = append(hrefs, strings.TrimPrefix(r.Href, ts.URL))
	}
	want := []string{"/exchange/alice/Inbox/", "/exchange/alice/Archive/", "/exchange/alice/Archive/2024/", "/exchange/alice/Sent%20Items/"}
	if len(hrefs) != len(want) {
		t.Fatalf("folders %v, want %v", hrefs, want)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(hrefs, " "), w) {
			t.Errorf("folder list lacks %s: %v", w, hrefs)
		}
	}
	if !strings.Contains(body, `<a:getlastmodified b:dt="dateTime.tz">`) || !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</a:getlastmodified>`).MatchString(body) {
		t.Errorf("getlastmodified not in Exchange's millisecond form:\n%s", body)
	}
}

func TestSearchMessages(t *testing.T) {
	ts, msgs := searchFixture(t)
	// §5.2 (b) with the alias, (c)'s conditions, and DavMail's item lookup.
	cols := `"http://schemas.microsoft.com/exchange/permanenturl","http://schemas.microsoft.com/mapi/proptag/x0e230003","urn:schemas:httpmail:read","http://schemas.microsoft.com/mapi/id/{00062008-0000-0000-c000-000000000046}/0x8570" as deleted,"http://schemas.microsoft.com/mapi/proptag/x10f3001f","http://schemas.microsoft.com/mapi/proptag/x0e080003"`
	from := ` FROM SCOPE('Shallow TRAVERSAL OF "/exchange/alice/Inbox"') WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false`
	order := ` ORDER BY "http://schemas.microsoft.com/mapi/proptag/x0e230003" DESC`

	resp, body := do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody("SELECT "+cols+from+")"+order))
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	ms := parseMS(t, body)
	if len(ms.Responses) != 3 || !strings.HasSuffix(ms.Responses[0].Href, "/other.EML") {
		t.Fatalf("want 3 messages, newest UID first:\n%s", body)
	}
	if !strings.Contains(body, `<deleted xmlns="">1</deleted>`) {
		t.Errorf("alias column not answered in no namespace:\n%s", body)
	}

	// (c): unread, subject like, date, header.
	cond := ` And ("urn:schemas:httpmail:read" = false And "urn:schemas:httpmail:subject" like '%hello%' And "DAV:getlastmodified" >= '2024/01/01 00:00:00' And "http://schemas.microsoft.com/mapi/string/{00020386-0000-0000-c000-000000000046}/message-id" = '<m1@example.com>'))`
	_, body = do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody("SELECT "+cols+from+cond+order))
	if ms := parseMS(t, body); len(ms.Responses) != 1 || !strings.HasSuffix(ms.Responses[0].Href, "/hello%20world.EML") {
		t.Errorf("condition search:\n%s", body)
	}

	// Item lookup with Range: rows=0-0.
	lookup := ` And "http://schemas.microsoft.com/mapi/proptag/x10f3001f" = 'Hello again.EML')`
	resp, body = do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody("SELECT "+cols+from+lookup+order), "Range", "rows=0-0")
	if got := resp.Header.Get("Content-Range"); got != "rows 0-0; total=1" {
		t.Errorf("Content-Range %q", got)
	}
	if ms := parseMS(t, body); len(ms.Responses) != 1 {
		t.Errorf("lookup:\n%s", body)
	}
	resp, _ = do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody("SELECT "+cols+from+")"+order), "Range", "rows=10-20")
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("rows beyond the result = %d, want 416", resp.StatusCode)
	}

	// Unencoded scope with a space (DavMail, §11).
	_, body = do(t, ts, "SEARCH", "/exchange/alice/Sent%20Items", searchBody(`SELECT "DAV:displayname" FROM SCOPE('Shallow TRAVERSAL OF "/exchange/alice/Sent Items"') WHERE "DAV:isfolder" = false`))
	if ms := parseMS(t, body); len(ms.Responses) != 1 {
		t.Errorf("scope with a space:\n%s", body)
	}

	// Malformed SQL: a clear 400.
	if resp, body := do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody(`SELECT FROM WHERE`)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "syntax error") {
		t.Errorf("bad SQL: %d %s", resp.StatusCode, body)
	}
	// Another user's scope.
	if resp, _ := do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody(`SELECT "DAV:displayname" FROM SCOPE('Shallow TRAVERSAL OF "/exchange/bob/Inbox"')`)); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Errorf("foreign scope = %d", resp.StatusCode)
	}

	// The permanent URL resolves through PROPPATCH, MOVE and DELETE, also
	// after the message moved.
	perm := regexp.MustCompile(`<f:permanenturl>([^<]+)</f:permanenturl>`).FindAllStringSubmatch(parseAndKeep(t, ts, cols, from, order), -1)
	if len(perm) != 3 {
		t.Fatalf("permanenturl values: %v", perm)
	}
	purl := strings.TrimPrefix(perm[2][1], ts.URL) // oldest: hello world
	if resp, _ := do(t, ts, "MOVE", purl, "", "Destination", "/exchange/alice/Archive/x", "Overwrite", "F"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("MOVE via permanent URL = %d", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PROPPATCH", purl, `<D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:set><D:prop><h:read>1</h:read></D:prop></D:set></D:propertyupdate>`); resp.StatusCode != http.StatusMultiStatus {
		t.Errorf("PROPPATCH via permanent URL after the move = %d", resp.StatusCode)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	if m, err := mb.StatID(context.Background(), msgs[0].ID); err != nil || m.Folder != "Archive" || m.Flags&mailbox.FlagSeen == 0 {
		t.Errorf("after MOVE+PROPPATCH via permanent URL: %+v %v", m, err)
	}
	if resp, _ := do(t, ts, "DELETE", purl, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE via permanent URL = %d", resp.StatusCode)
	}
}

func parseAndKeep(t *testing.T, ts *testServer, cols, from, order string) string {
	_, body := do(t, ts, "SEARCH", "/exchange/alice/Inbox", searchBody("SELECT "+cols+from+")"+order))
	return body
}

func TestProppatchMAPIFlags(t *testing.T) {
	ts, msgs := searchFixture(t)
	href := "/exchange/alice/Inbox/hello%20world.EML"
	// As DavMail writes them (§4.3): the deleted marker XmlConvert-escaped.
	body := `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>` +
		`<_x0030_x8570 xmlns="http://schemas.microsoft.com/mapi/id/{00062008-0000-0000-c000-000000000046}/">1</_x0030_x8570>` +
		`<x10900003 xmlns="http://schemas.microsoft.com/mapi/proptag/">2</x10900003>` +
		`<x10810003 xmlns="http://schemas.microsoft.com/mapi/proptag/">102</x10810003>` +
		`<x0e070003 xmlns="http://schemas.microsoft.com/mapi/proptag/">1</x0e070003>` +
		`</D:prop></D:set></D:propertyupdate>`
	if resp, b := do(t, ts, "PROPPATCH", href, body); resp.StatusCode != http.StatusMultiStatus || strings.Contains(b, "403") {
		t.Fatalf("PROPPATCH: %d %s", resp.StatusCode, b)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	m, _ := mb.StatID(context.Background(), msgs[0].ID)
	want := mailbox.FlagDeleted | mailbox.FlagFlagged | mailbox.FlagAnswered | mailbox.FlagSeen
	if m.Flags != want {
		t.Errorf("flags %q, want %q", m.Flags, want)
	}
	// Undelete by removal; read cleared through httpmail:read.
	body = `<D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:remove><D:prop><_x0030_x8570 xmlns="http://schemas.microsoft.com/mapi/id/{00062008-0000-0000-c000-000000000046}/"/></D:prop></D:remove><D:set><D:prop><h:read>0</h:read></D:prop></D:set></D:propertyupdate>`
	do(t, ts, "PROPPATCH", href, body)
	m, _ = mb.StatID(context.Background(), msgs[0].ID)
	if m.Flags != mailbox.FlagFlagged|mailbox.FlagAnswered {
		t.Errorf("after undelete and unread: %q", m.Flags)
	}
}

// TestDavMailAppendFlow replays exchange-webdav.md §11 step 17: PROPPATCH
// on a missing <uuid>.EML creates it, PUT then stores the content and
// keeps the properties and flags.
func TestDavMailAppendFlow(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	href := "/exchange/alice/Inbox/0f4c9a1e-uuid.EML"
	body := `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x0e070003 xmlns="http://schemas.microsoft.com/mapi/proptag/">9</x0e070003><z:note xmlns:z="urn:z">kept</z:note></D:prop></D:set></D:propertyupdate>`
	resp, b := do(t, ts, "PROPPATCH", href, body)
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(b, "HTTP/1.1 201 Created") {
		t.Fatalf("PROPPATCH create: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, ts, "PUT", href, sampleMsg, "Translate", "f", "Content-Type", "message/rfc822"); resp.StatusCode/100 != 2 {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	m, err := mb.Stat(context.Background(), mailbox.Inbox, "0f4c9a1e-uuid.EML")
	if err != nil || m.Size != int64(len(sampleMsg)) || m.Flags != mailbox.FlagSeen|mailbox.FlagDraft {
		t.Fatalf("after PUT: %+v %v", m, err)
	}
	if props, _ := mb.DeadProps(context.Background(), mailbox.Inbox, m.Name); len(props) != 1 || props[0].XML != "kept" {
		t.Errorf("dead properties after PUT: %+v", props)
	}
	// Brief: t — a fully successful PROPPATCH may answer a bare 200, and a
	// PROPFIND leaves out the 404 propstat.
	resp, _ = do(t, ts, "PROPPATCH", href, `<D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:set><D:prop><h:read>0</h:read></D:prop></D:set></D:propertyupdate>`, "Brief", "t")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("Brief PROPPATCH = %d, want 200", resp.StatusCode)
	}
	_, b = do(t, ts, "PROPFIND", href, `<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:nope/></D:prop></D:propfind>`, "Depth", "0", "Brief", "t")
	if strings.Contains(b, "404") || !strings.Contains(b, "getetag") {
		t.Errorf("Brief PROPFIND:\n%s", b)
	}
	// COPY onto an existing name with Allow-Rename: t keeps both.
	resp, _ = do(t, ts, "COPY", href, "", "Destination", href, "Overwrite", "F", "Allow-Rename", "t")
	if resp.StatusCode != http.StatusForbidden { // same URL: RFC 4918 §9.8.5
		t.Errorf("COPY onto itself = %d", resp.StatusCode)
	}
	do(t, ts, "PUT", "/exchange/alice/Inbox/other.EML", sampleMsg)
	resp, _ = do(t, ts, "COPY", href, "", "Destination", "/exchange/alice/Inbox/other.EML", "Overwrite", "F", "Allow-Rename", "t")
	if resp.StatusCode != http.StatusCreated || !strings.HasSuffix(resp.Header.Get("Location"), "/Inbox/other-2.EML") {
		t.Errorf("Allow-Rename COPY: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestExchangeDateForExchangeClients(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	body := `<D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/></D:prop></D:propfind>`
	_, generic := do(t, ts, "PROPFIND", "/exchange/alice/Inbox", body, "Depth", "0")
	_, exch := do(t, ts, "PROPFIND", "/exchange/alice/Inbox", body, "Depth", "0", "Translate", "f")
	rfc1123 := regexp.MustCompile(`<a:getlastmodified>\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT</a:getlastmodified>`)
	millis := regexp.MustCompile(`<a:getlastmodified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</a:getlastmodified>`)
	if !rfc1123.MatchString(generic) {
		t.Errorf("generic client: want RFC 1123:\n%s", generic)
	}
	if !millis.MatchString(exch) {
		t.Errorf("Exchange client: want yyyy-MM-ddTHH:mm:ss.SSSZ:\n%s", exch)
	}
}
