package dav_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

func targets(hrefs ...string) string {
	var b strings.Builder
	b.WriteString("<D:target>")
	for _, h := range hrefs {
		fmt.Fprintf(&b, "<D:href>%s</D:href>", h)
	}
	b.WriteString("</D:target>")
	return b.String()
}

// TestBatchMethods drives the B* methods as Evolution sends them
// (exchange-webdav.md §3.2): relative and absolute hrefs, Brief, per-target
// statuses, Allow-Rename with a location.
func TestBatchMethods(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	mb.CreateFolder(context.Background(), "Archive")
	for _, n := range []string{"a.EML", "b.EML", "c.EML"} {
		do(t, ts, "PUT", "/exchange/alice/Inbox/"+n, sampleMsg)
	}
	do(t, ts, "PUT", "/exchange/alice/Archive/b.EML", sampleMsg)

	// BPROPPATCH: read=1 on two targets, one relative and one absolute.
	body := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:">` + targets("a.EML", ts.URL+"/exchange/alice/Inbox/b.EML") + `<D:set><D:prop><h:read>1</h:read></D:prop></D:set></D:propertyupdate>`
	resp, b := do(t, ts, "BPROPPATCH", "/exchange/alice/Inbox/", body, "Brief", "t")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("BPROPPATCH %d %s", resp.StatusCode, b)
	}
	for _, n := range []string{"a.EML", "b.EML"} {
		if m, _ := mb.Stat(context.Background(), mailbox.Inbox, n); m.Flags&mailbox.FlagSeen == 0 {
			t.Errorf("%s not marked read", n)
		}
	}
	// BPROPFIND: one response per target, a 404 for a missing one.
	body = `<D:propfind xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:">` + targets("a.EML", "nope.EML") + `<D:prop><h:read/><D:getcontentlength/></D:prop></D:propfind>`
	_, b = do(t, ts, "BPROPFIND", "/exchange/alice/Inbox/", body, "Depth", "0")
	if ms := parseMS(t, b); len(ms.Responses) != 2 || !strings.Contains(b, `<d:read b:dt="boolean">1</d:read>`) || !strings.Contains(b, "404") {
		t.Errorf("BPROPFIND:\n%s", b)
	}
	// BMOVE with Allow-Rename: b.EML exists in Archive, so it lands as b-2.EML.
	body = `<?xml version="1.0"?><move xmlns="DAV:">` + strings.ReplaceAll(targets("b.EML", "c.EML"), "D:", "") + `</move>`
	_, b = do(t, ts, "BMOVE", "/exchange/alice/Inbox/", body, "Destination", ts.URL+"/exchange/alice/Archive/", "Overwrite", "f", "Allow-Rename", "t")
	if !strings.Contains(b, "/exchange/alice/Archive/b-2.EML</a:href></a:location>") || !strings.Contains(b, "/exchange/alice/Archive/c.EML</a:href></a:location>") {
		t.Errorf("BMOVE:\n%s", b)
	}
	if l, _ := mb.List(context.Background(), "Archive"); len(l) != 3 {
		t.Errorf("Archive has %d messages after BMOVE, want 3", len(l))
	}
	// BDELETE ("empty trash"): only failures are reported.
	body = `<?xml version="1.0"?><delete xmlns="DAV:">` + strings.ReplaceAll(targets("/exchange/alice/Archive/b.EML", "/exchange/alice/Archive/gone.EML"), "D:", "") + `</delete>`
	_, b = do(t, ts, "BDELETE", "/exchange/alice/Archive/", body)
	if ms := parseMS(t, b); len(ms.Responses) != 1 || !strings.Contains(b, "gone.EML") || !strings.Contains(b, "404") {
		t.Errorf("BDELETE:\n%s", b)
	}
	// Another user's href is refused for that target only.
	body = `<delete xmlns="DAV:">` + strings.ReplaceAll(targets("/exchange/bob/Inbox/x.EML"), "D:", "") + `</delete>`
	if _, b := do(t, ts, "BDELETE", "/exchange/alice/Archive/", body); !strings.Contains(b, "403") {
		t.Errorf("foreign target:\n%s", b)
	}
	// Over the target cap: 413 before any work.
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("m%d.EML", i)
	}
	body = `<delete xmlns="DAV:">` + strings.ReplaceAll(targets(many...), "D:", "") + `</delete>`
	if resp, b := do(t, ts, "BDELETE", "/exchange/alice/Inbox/", body); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(b, "max-batch-targets") {
		t.Errorf("1001 targets: %d %s", resp.StatusCode, b)
	}
	if l, _ := mb.List(context.Background(), mailbox.Inbox); len(l) != 1 {
		t.Errorf("Inbox has %d messages, want 1 (a.EML)", len(l))
	}
}

// TestSubscribePoll: SUBSCRIBE/POLL as Evolution uses them for new-mail
// notices (exchange-webdav.md §3.2), backed by the folder's Modseq.
func TestSubscribePoll(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	resp, _ := do(t, ts, "SUBSCRIBE", "/exchange/alice/Inbox/", "", "Notification-Type", "update/newmember", "Subscription-Lifetime", "99999")
	id := resp.Header.Get("Subscription-Id")
	if resp.StatusCode != http.StatusOK || id == "" || resp.Header.Get("Subscription-Lifetime") != "3600" {
		t.Fatalf("SUBSCRIBE: %d id %q lifetime %q", resp.StatusCode, id, resp.Header.Get("Subscription-Lifetime"))
	}
	poll := func() string {
		t.Helper()
		resp, b := do(t, ts, "POLL", "/exchange/alice/Inbox/", "", "Subscription-Id", id)
		if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(b, "<li>"+id+"</li>") {
			t.Fatalf("POLL: %d %s", resp.StatusCode, b)
		}
		return b
	}
	if b := poll(); !strings.Contains(b, "204 No Content") {
		t.Errorf("POLL without change:\n%s", b)
	}
	do(t, ts, "PUT", "/exchange/alice/Inbox/new.EML", sampleMsg)
	if b := poll(); !strings.Contains(b, "200 OK") {
		t.Errorf("POLL after a new message:\n%s", b)
	}
	if b := poll(); !strings.Contains(b, "204 No Content") {
		t.Errorf("second POLL without change:\n%s", b)
	}
	// The table is bounded per user: the 101st subscription evicts the oldest.
	for i := 0; i < 100; i++ {
		do(t, ts, "SUBSCRIBE", "/exchange/alice/Inbox/", "")
	}
	if n := ts.h.SubscriptionCount(); n != 100 {
		t.Errorf("%d subscriptions, want the per-user cap of 100", n)
	}
	if resp, _ := do(t, ts, "POLL", "/exchange/alice/Inbox/", "", "Subscription-Id", id); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("POLL of an evicted subscription = %d, want 412", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "UNSUBSCRIBE", "/exchange/alice/Inbox/", "", "Subscription-Id", "999999"); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("UNSUBSCRIBE unknown = %d", resp.StatusCode)
	}
}
