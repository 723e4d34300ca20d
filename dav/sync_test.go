package dav_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

func syncBody(token string) string {
	return `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>` + token +
		`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/><D:getcontentlength/></D:prop></D:sync-collection>`
}

var tokenRE = regexp.MustCompile(`<a:sync-token>([^<]*)</a:sync-token>\s*</a:multistatus>`)

// syncOnce runs one sync-collection REPORT and returns the status, the
// member hrefs and the new token.
func syncOnce(t *testing.T, ts *testServer, token string) (int, []string, string, string) {
	t.Helper()
	resp, body := do(t, ts, "REPORT", "/exchange/alice/Inbox/", syncBody(token), "Depth", "0")
	if resp.StatusCode != http.StatusMultiStatus {
		return resp.StatusCode, nil, "", body
	}
	var hrefs []string
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		hrefs = append(hrefs, m[1])
	}
	tm := tokenRE.FindStringSubmatch(body)
	if tm == nil {
		t.Fatalf("no sync-token at the end:\n%s", body)
	}
	return resp.StatusCode, hrefs, tm[1], body
}

func TestSyncCollection(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	a := seed(t, ts, "alice", mailbox.Inbox, "Subject: a\r\n\r\na\r\n", 0)
	b := seed(t, ts, "alice", mailbox.Inbox, "Subject: b\r\n\r\nb\r\n", 0)

	code, hrefs, tok, body := syncOnce(t, ts, "")
	if code != 207 || len(hrefs) != 2 {
		t.Fatalf("initial sync: %d %q\n%s", code, hrefs, body)
	}
	// Nothing changed: nothing listed, same token.
	if code, hrefs, tok2, _ := syncOnce(t, ts, tok); code != 207 || len(hrefs) != 0 || tok2 != tok {
		t.Errorf("idle sync: %d %q %q (was %q)", code, hrefs, tok2, tok)
	}
	// A flag change and a new message: exactly those two.
	if _, err := mb.SetFlags(context.Background(), mailbox.Inbox, a.Name, mailbox.FlagSeen, true); err != nil {
		t.Fatal(err)
	}
	c := seed(t, ts, "alice", mailbox.Inbox, "Subject: c\r\n\r\nc\r\n", 0)
	code, hrefs, tok3, _ := syncOnce(t, ts, tok)
	if code != 207 || len(hrefs) != 2 || !strings.HasSuffix(hrefs[0], "/a.EML") || !strings.HasSuffix(hrefs[1], "/c.EML") {
		t.Errorf("sync after changes: %d %q", code, hrefs)
	}
	// The DAV:sync-token property matches what REPORT hands out.
	_, pf := do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/></D:prop></D:propfind>`, "Depth", "0")
	if !strings.Contains(pf, "<a:sync-token>"+tok3+"</a:sync-token>") {
		t.Errorf("PROPFIND sync-token differs from %q:\n%s", tok3, pf)
	}
	// A removal cannot be described without server state: the token is
	// refused and the client starts over.
	if err := mb.Delete(context.Background(), mailbox.Inbox, b.Name); err != nil {
		t.Fatal(err)
	}
	if code, _, _, body := syncOnce(t, ts, tok3); code != http.StatusForbidden || !strings.Contains(body, "valid-sync-token") {
		t.Errorf("sync after a removal: %d\n%s", code, body)
	}
	if code, hrefs, _, _ := syncOnce(t, ts, ""); code != 207 || len(hrefs) != 2 {
		t.Errorf("full sync after the removal: %d %q", code, hrefs)
	}
	_ = c
	// Bad input.
	if code, _, _, _ := syncOnce(t, ts, "urn:other:token"); code != http.StatusForbidden {
		t.Errorf("foreign token: %d", code)
	}
	if resp, body := do(t, ts, "REPORT", "/exchange/alice/Inbox/", `<D:expand-property xmlns:D="DAV:"/>`); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "supported-report") {
		t.Errorf("unsupported report: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts, "REPORT", "/exchange/alice/Inbox/", strings.Replace(syncBody(""), ">1<", ">infinite<", 1)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sync-level infinite: %d", resp.StatusCode)
	}
}

// TestSyncSoak is the seed-003 proof: 100,000 sync-collection iterations
// (10,000 under the race detector) on a folder that keeps changing, with
// the heap measured after a warm-up and at the end. Tokens are stateless,
// so the server holds nothing per client and the heap stays flat.
func TestSyncSoak(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 10_000
	}
	cfg := dav.Config{}
	ts := newTestServer(t, cfg)
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	var names []string
	for i := range 20 {
		m := seed(t, ts, "alice", mailbox.Inbox, "Subject: m"+string(rune('a'+i))+"\r\n\r\nx\r\n", 0)
		names = append(names, m.Name)
	}
	h := withBasic(ts.h)
	run := func(token string) string {
		req := httptest.NewRequest("REPORT", "/exchange/alice/Inbox/", strings.NewReader(syncBody(token)))
		req.SetBasicAuth("alice", "alice-pw")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMultiStatus {
			t.Fatalf("sync: %d %s", rec.Code, rec.Body.String())
		}
		m := tokenRE.FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Fatal("no token")
		}
		return m[1]
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	token := run("")
	changes := 0
	var start uint64
	for i := range n {
		if i == 1000 {
			start = heap()
		}
		if i%100 == 0 { // the folder changes: a flag flips
			name := names[changes%len(names)]
			if _, err := mb.SetFlags(context.Background(), mailbox.Inbox, name, mailbox.FlagFlagged, changes%2 == 0); err != nil {
				t.Fatal(err)
			}
			changes++
		}
		token = run(token)
	}
	end := heap()
	growth := int64(end) - int64(start)
	t.Logf("%d sync iterations, %d folder changes: heap %d → %d bytes (growth %d)", n, changes, start, end, growth)
	if growth > 5<<20 {
		t.Errorf("heap grew by %d bytes over %d syncs (limit 5 MiB)", growth, n)
	}
}
