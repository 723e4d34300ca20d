package server

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/mailbox/maildir"
)

// writeAttachmentMessage stores, straight into alice's Maildir, a message
// "Report" with one base64 attachment data.bin of size bytes, and returns
// the attachment's bytes.
func writeAttachmentMessage(t *testing.T, cfg config.Config, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{9}).Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	b.WriteString("From: bob@example.com\r\nTo: alice@example.com\r\nSubject: Report\r\nMessage-ID: <report@example.com>\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	b.WriteString("--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n")
	b.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	md := filepath.Join(cfg.MaildirRoot, "alice", "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(md, "cur", "1700000000.M1P1.test:2,S"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAttachmentSettings: attachment-folders and range-over-response-cap,
// set in the configuration, reach the WebDAV handler: the virtual
// <message>.attachments/ collection is listed only with the first, and a
// Range within max-response-size of a larger attachment is served only
// with the second.
func TestAttachmentSettings(t *testing.T) {
	const attSize = 200 << 10 // over the 64 KiB response cap below
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("on=%v", on), func(t *testing.T) {
			var cfg config.Config
			ts := startServer(t, func(c *config.Config) {
				c.MaxResponseSize = 64 << 10
				c.AttachmentFolders = on
				c.RangeOverResponseCap = on
				cfg = *c
			})
			data := writeAttachmentMessage(t, cfg, attSize)
			auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+testPassword))

			resp, body := ts.do(t, "PROPFIND", "/exchange/alice/Inbox/", nil, "Authorization", auth, "Depth", "1")
			if resp.StatusCode != 207 || !strings.Contains(body, "Report.EML") {
				t.Fatalf("PROPFIND Inbox: %d %.300q", resp.StatusCode, body)
			}
			if got := strings.Contains(body, "Report.EML.attachments/"); got != on {
				t.Errorf("attachment collection listed: %v, want %v", got, on)
			}
			resp, _ = ts.do(t, "PROPFIND", "/exchange/alice/Inbox/Report.EML.attachments/", nil, "Authorization", auth, "Depth", "1")
			if want := map[bool]int{false: 404, true: 207}[on]; resp.StatusCode != want {
				t.Errorf("PROPFIND of the attachment collection: %d, want %d", resp.StatusCode, want)
			}

			att := "/exchange/alice/Inbox/Report.EML/data.bin"
			resp, body = ts.do(t, "GET", att, nil, "Authorization", auth)
			if resp.StatusCode != 403 || !strings.Contains(body, "max-response-size") {
				t.Errorf("whole attachment over the cap: %d %.200q, want 403 naming max-response-size", resp.StatusCode, body)
			}
			resp, body = ts.do(t, "GET", att, nil, "Authorization", auth, "Range", "bytes=1000-60999")
			if on {
				if resp.StatusCode != 206 || body != string(data[1000:61000]) {
					t.Errorf("Range within the cap: %d, %d bytes, equal %v; want 206 and the bytes", resp.StatusCode, len(body), body == string(data[1000:61000]))
				}
			} else if resp.StatusCode != 403 {
				t.Errorf("Range within the cap, setting off: %d, want 403", resp.StatusCode)
			}
		})
	}
}

// TestIndexMemorySetting: index-memory-messages reaches the Maildir
// store's budget (the default when unset).
func TestIndexMemorySetting(t *testing.T) {
	for _, tc := range []struct{ set, want int }{{0, maildir.DefaultMaxOpenMessages}, {1234, 1234}} {
		ts := startServer(t, func(c *config.Config) {
			if tc.set != 0 {
				c.IndexMemoryMessages = tc.set
			}
		})
		md, ok := ts.store.(*maildir.Store)
		if !ok {
			t.Fatalf("store is %T", ts.store)
		}
		if got := md.MaxOpenMessages(); got != int64(tc.want) {
			t.Errorf("index-memory-messages %d: store budget %d, want %d", tc.set, got, tc.want)
		}
	}
}
