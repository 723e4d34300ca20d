package dav_test

import (
	"context"
	"net/http/httptest"

	"fmt"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

const benchPropfind = `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:displayname/><h:subject/><h:from/><h:to/><h:date/><h:read/><h:hasattachment/></D:prop></D:propfind>`

// BenchmarkPropfindDepth1 measures the multistatus writer over a 10,000
// message folder held in memory (no disk): ns/op is the server's cost of
// the listing; B/op must stay far below the response size (the writer
// streams through a fixed buffer). bench/compare runs the 100,000-message
// Maildir version against Apache.
func BenchmarkPropfindDepth1(b *testing.B) {
	ts := newTestServer(b, dav.Config{MaxResponseSize: 1 << 30})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	for i := 0; i < 10000; i++ {
		raw := fmt.Sprintf("From: Sender %d <s%d@example.com>\r\nTo: alice@example.com\r\nSubject: Bulk notice %d\r\nDate: Tue, 02 Jan 2024 03:04:05 +0000\r\n\r\nbody %d\r\n", i, i, i, i)
		if _, err := mb.Append(context.Background(), mailbox.Inbox, strings.NewReader(raw), mailbox.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("PROPFIND", ts.URL+"/exchange/alice/Inbox/", strings.NewReader(benchPropfind))
		req.SetBasicAuth("alice", "alice-pw")
		req.Header.Set("Depth", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMultiStatus {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric(float64(n), "resp-bytes")
}

// BenchmarkGet shows that bytes allocated per GET do not grow with the
// message size (brief, failure 1): compare B/op across the sizes.
func BenchmarkGet(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			ts := newTestServer(b, dav.Config{MaxMessageSize: 1 << 30, MaxResponseSize: 1 << 30})
			mb, _ := ts.store.Mailbox(context.Background(), "alice")
			raw := "Subject: big\r\n\r\n" + strings.Repeat("x", size)
			m, err := mb.Append(context.Background(), mailbox.Inbox, strings.NewReader(raw), mailbox.AppendOptions{Name: "big.EML"})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(m.Size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest("GET", ts.URL+"/exchange/alice/Inbox/big.EML", nil)
				req.SetBasicAuth("alice", "alice-pw")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkPropfindRoot is the PROPFIND DavMail sends on the mailbox root
// before every IMAP command (exchange-webdav.md §11 step 8): it must cost
// well under a millisecond of server time warm. The handler is called
// directly, so ns/op is server time only (no socket, no client).
func BenchmarkPropfindRoot(b *testing.B) {
	ts := newTestServer(b, dav.Config{})
	mb, _ := ts.store.Mailbox(context.Background(), "alice")
	for _, f := range []string{"Sent", "Trash", "Drafts", "Archive", "Archive/2024"} {
		mb.CreateFolder(context.Background(), f)
	}
	body := `<?xml version="1.0" encoding="UTF-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/><outlookfolderclass xmlns="http://schemas.microsoft.com/exchange/"/><D:hassubs/><D:nosubs/><D:objectcount/><unreadcount xmlns="urn:schemas:httpmail:"/><contenttag xmlns="http://schemas.microsoft.com/repl/"/><D:getlastmodified/><x67510003 xmlns="http://schemas.microsoft.com/mapi/proptag/"/></D:prop></D:propfind>`
	ctx := reqlog.With(context.Background(), &reqlog.Entry{User: "alice", Log: zerolog.Nop()})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequestWithContext(ctx, "PROPFIND", "http://127.0.0.1/exchange/alice/", strings.NewReader(body))
		req.Header.Set("Depth", "0")
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMultiStatus {
			b.Fatal(rec.Code)
		}
	}
}
