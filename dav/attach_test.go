package dav_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
)

// attMsg builds a message with a text body, a base64 attachment of
// data named name, a small second attachment and an inline image.
func attMsg(name string, data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	lines = append(lines, enc)
	return "From: a@example.org\r\nSubject: with attachments\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n" +
		"--M\r\nContent-Type: multipart/related; boundary=R\r\n\r\n" +
		"--R\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>see <img src=\"cid:img@x\"></p>\r\n" +
		"--R\r\nContent-Type: image/gif\r\nContent-ID: <img@x>\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n--R--\r\n" +
		"--M\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''" + url.PathEscape(name) + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Join(lines, "\r\n") + "\r\n" +
		"--M\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=notes.txt\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n--M--\r\n"
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var k [32]byte
	k[0] = byte(seed)
	rand.NewChaCha8(k).Read(b)
	return b
}

func msgURL(m mailbox.Message) string {
	return "/exchange/alice/Inbox/" + url.PathEscape(m.Name)
}

var hrefRE = regexp.MustCompile(`<a:href>([^<]*)</a:href>`)

func TestAttachmentGet(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	data := randomBytes(300_000, 1)
	m := seed(t, ts, "alice", mailbox.Inbox, attMsg("Résumé 2024.bin", data), 0)

	resp, body := do(t, ts, "GET", msgURL(m)+"/"+url.PathEscape("Résumé 2024.bin"), "", "Translate", "f")
	if resp.StatusCode != 200 || body != string(data) {
		t.Fatalf("GET attachment: %d, %d bytes, want 200 and %d", resp.StatusCode, len(body), len(data))
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(data)) {
		t.Errorf("Content-Length %q", cl)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="R_sum_ 2024.bin"; filename*=UTF-8''R%C3%A9sum%C3%A9%202024.bin` {
		t.Errorf("Content-Disposition %q", cd)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Errorf("ETag %q is not strong", etag)
	}
	// Range: the last 1000 bytes, and a middle slice.
	resp, body = do(t, ts, "GET", msgURL(m)+"/"+url.PathEscape("Résumé 2024.bin"), "", "Range", "bytes=-1000")
	if resp.StatusCode != 206 || body != string(data[len(data)-1000:]) {
		t.Errorf("Range suffix: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = do(t, ts, "GET", msgURL(m)+"/"+url.PathEscape("Résumé 2024.bin"), "", "Range", "bytes=123457-200000")
	if resp.StatusCode != 206 || body != string(data[123457:200001]) {
		t.Errorf("Range middle: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, _ = do(t, ts, "GET", msgURL(m)+"/"+url.PathEscape("Résumé 2024.bin"), "", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	// Quoted-printable text in its charset: bytes decoded, charset kept.
	resp, body = do(t, ts, "GET", msgURL(m)+"/notes.txt", "")
	if resp.StatusCode != 200 || body != "Gr\xfc\xdfe" || resp.Header.Get("Content-Type") != "text/plain; charset=iso-8859-1" {
		t.Errorf("notes.txt: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	// The permanent URL reaches attachments too.
	resp, body = do(t, ts, "GET", "/exchange/alice/-FlatUrlSpace-/"+strconv.FormatUint(m.ID, 36)+"/notes.txt", "")
	if resp.StatusCode != 200 || body != "Gr\xfc\xdfe" {
		t.Errorf("notes.txt by permanent URL: %d %q", resp.StatusCode, body)
	}
	// Read-only, and nothing can be created below a message.
	if resp, _ := do(t, ts, "PUT", msgURL(m)+"/notes.txt", "x"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT on an attachment: %d, want 405", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "PUT", msgURL(m)+"/new.txt", "x"); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT below a message: %d, want 409", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "GET", msgURL(m)+"/nothing.txt", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an unknown attachment: %d, want 404", resp.StatusCode)
	}
	// The message itself is untouched: raw bytes.
	if resp, body := do(t, ts, "GET", msgURL(m), "", "Translate", "f"); resp.StatusCode != 200 || int64(len(body)) != m.Size {
		t.Errorf("raw GET of the message: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestEnumAtts(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	data := randomBytes(5000, 2)
	m := seed(t, ts, "alice", mailbox.Inbox, attMsg("a b.bin", data), 0)
	resp, body := do(t, ts, "X-MS-ENUMATTS", msgURL(m)+"/", "", "Translate", "f")
	if resp.StatusCode != http.StatusMultiStatus || resp.Header.Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Fatalf("X-MS-ENUMATTS: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var hrefs []string
	for _, mm := range hrefRE.FindAllStringSubmatch(body, -1) {
		hrefs = append(hrefs, mm[1])
	}
	base := ts.URL + msgURL(m) + "/"
	want := []string{base + "attachment-1-2.gif", base + "a%20b.bin", base + "notes.txt"}
	if strings.Join(hrefs, " ") != strings.Join(want, " ") {
		t.Errorf("hrefs\n%q\nwant\n%q", hrefs, want)
	}
	for _, w := range []string{"<d:attachmentfilename>a b.bin</d:attachmentfilename>", "<a:getcontentlength>5000</a:getcontentlength>", "<a:getcontentlength>5</a:getcontentlength>"} {
		if !strings.Contains(body, w) {
			t.Errorf("response lacks %s:\n%s", w, body)
		}
	}
	// Each href GETs exactly getcontentlength bytes.
	for _, h := range hrefs {
		u, _ := url.Parse(h)
		resp, b := do(t, ts, "GET", u.EscapedPath(), "", "Translate", "f")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
			t.Errorf("GET %s: %d, %d bytes, Content-Length %s", h, resp.StatusCode, len(b), resp.Header.Get("Content-Length"))
		}
	}
	// Named MAPI properties.
	pf := `<?xml version="1.0"?><a:propfind xmlns:a="DAV:" xmlns:e="http://schemas.microsoft.com/mapi/proptag/"><a:prop><e:x3704001f/><e:x0e200003/><e:x37050003/><e:x3712001f/></a:prop></a:propfind>`
	resp, body = do(t, ts, "X-MS-ENUMATTS", msgURL(m)+"/", pf)
	for _, w := range []string{`<e:x3704001f>notes.txt</e:x3704001f>`, `<e:x0e200003 b:dt="int">5000</e:x0e200003>`, `<e:x3712001f>img@x</e:x3712001f>`} {
		if !strings.Contains(body, w) {
			t.Errorf("named props lack %s:\n%s", w, body)
		}
	}
	if resp, _ := do(t, ts, "X-MS-ENUMATTS", "/exchange/alice/Inbox/", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("X-MS-ENUMATTS on a folder: %d, want 400", resp.StatusCode)
	}
}

// TestLegacyOversizedParts: a message over max-message-size (stored
// before the limit) is refused whole, but its parts within the limits
// are served, and the refused one says why.
func TestLegacyOversizedParts(t *testing.T) {
	ts := newTestServer(t, dav.Config{MaxMessageSize: 100_000, MaxResponseSize: 1 << 20})
	big := randomBytes(150_000, 3)
	m := seed(t, ts, "alice", mailbox.Inbox, attMsg("big.bin", big), 0)
	resp, body := do(t, ts, "GET", msgURL(m), "", "Translate", "f")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "max-message-size") {
		t.Errorf("whole legacy message: %d %q", resp.StatusCode, body)
	}
	if resp, body := do(t, ts, "GET", msgURL(m)+"/notes.txt", ""); resp.StatusCode != 200 || body != "Gr\xfc\xdfe" {
		t.Errorf("small part of a legacy message: %d %q", resp.StatusCode, body)
	}
	resp, body = do(t, ts, "GET", msgURL(m)+"/big.bin", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "max-message-size") || !strings.Contains(body, fmt.Sprint(len(big))) {
		t.Errorf("part over the limit: %d %q", resp.StatusCode, body)
	}
	_, body = do(t, ts, "X-MS-ENUMATTS", msgURL(m)+"/", "")
	if !strings.Contains(body, "<h:refused>") || strings.Count(body, "<h:refused>") != 1 {
		t.Errorf("listing should mark exactly the big part refused:\n%s", body)
	}
}

func TestAttachmentResponseCap(t *testing.T) {
	data := randomBytes(200_000, 4)
	for _, allowRange := range []bool{false, true} {
		ts := newTestServer(t, dav.Config{MaxResponseSize: 100_000, RangeOverResponseCap: allowRange})
		m := seed(t, ts, "alice", mailbox.Inbox, attMsg("x.bin", data), 0)
		if resp, body := do(t, ts, "GET", msgURL(m)+"/x.bin", ""); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "max-response-size") {
			t.Errorf("allowRange=%v: whole attachment over the cap: %d %q", allowRange, resp.StatusCode, body)
		}
		resp, body := do(t, ts, "GET", msgURL(m)+"/x.bin", "", "Range", "bytes=100000-179999")
		if allowRange {
			if resp.StatusCode != 206 || !bytes.Equal([]byte(body), data[100000:180000]) {
				t.Errorf("range within the cap: %d, %d bytes", resp.StatusCode, len(body))
			}
		} else if resp.StatusCode != http.StatusForbidden {
			t.Errorf("range with RangeOverResponseCap off: %d", resp.StatusCode)
		}
		if resp, _ := do(t, ts, "GET", msgURL(m)+"/x.bin", "", "Range", "bytes=0-150000"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("allowRange=%v: range over the cap: %d", allowRange, resp.StatusCode)
		}
	}
}

func TestAttachmentFolders(t *testing.T) {
	ts := newTestServer(t, dav.Config{AttachmentFolders: true})
	m := seed(t, ts, "alice", mailbox.Inbox, attMsg("x.bin", randomBytes(10, 5)), 0)
	coll := msgURL(m) + ".attachments/"
	resp, body := do(t, ts, "PROPFIND", coll, "", "Depth", "1")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND %s: %d\n%s", coll, resp.StatusCode, body)
	}
	hrefs := hrefRE.FindAllStringSubmatch(body, -1)
	if len(hrefs) != 4 || !strings.HasSuffix(hrefs[0][1], ".attachments/") || !strings.Contains(body, "<a:collection/>") {
		t.Errorf("collection listing:\n%s", body)
	}
	if resp, body := do(t, ts, "GET", coll+"notes.txt", ""); resp.StatusCode != 200 || body != "Gr\xfc\xdfe" {
		t.Errorf("GET through the collection: %d %q", resp.StatusCode, body)
	}
	// Listed beside its message.
	_, body = do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", "", "Depth", "1")
	if !strings.Contains(body, msgURL(m)+".attachments/</a:href>") {
		t.Errorf("folder listing lacks the attachments collection:\n%s", body)
	}
	// Off by default.
	ts2 := newTestServer(t, dav.Config{})
	m2 := seed(t, ts2, "alice", mailbox.Inbox, attMsg("x.bin", randomBytes(10, 5)), 0)
	if resp, _ := do(t, ts2, "PROPFIND", msgURL(m2)+".attachments/", "", "Depth", "1"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("collection with AttachmentFolders off: %d, want 404", resp.StatusCode)
	}
}

func TestMessageView(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	raw := "From: Mallory <m@example.org>\r\nSubject: <b>hi</b>\r\nContent-Type: multipart/related; boundary=R\r\n\r\n" +
		"--R\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"<p onclick=3D\"x()\">Gr=FC=DFe <img src=3D\"cid:pic@x\"><img src=3D\"http://tracker.example/p.gif\"></p><script>alert(1)</script>\r\n" +
		"--R\r\nContent-Type: image/gif\r\nContent-ID: <pic@x>\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n--R--\r\n"
	m := seed(t, ts, "alice", mailbox.Inbox, raw, 0)
	resp, body := do(t, ts, "GET", msgURL(m), "", "Translate", "t")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("view: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %s, body %d bytes", resp.Header.Get("Content-Length"), len(body))
	}
	for _, bad := range []string{"<script", "onclick", "tracker.example", "<b>hi</b>"} {
		if strings.Contains(body, bad) {
			t.Errorf("view contains %q:\n%s", bad, body)
		}
	}
	for _, good := range []string{"Grüße", `src="` + url.PathEscape(m.Name) + `/attachment-2.gif"`, "&lt;b&gt;hi&lt;/b&gt;"} {
		if !strings.Contains(body, good) {
			t.Errorf("view lacks %q:\n%s", good, body)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// Without Translate, a Basic client (a WebDAV mount) gets the raw bytes.
	if resp, body := do(t, ts, "GET", msgURL(m), ""); resp.Header.Get("Content-Type") != "message/rfc822" || body != raw {
		t.Errorf("plain GET: %q, %d bytes", resp.Header.Get("Content-Type"), len(body))
	}
	// The description properties, for one message.
	pf := `<?xml version="1.0"?><a:propfind xmlns:a="DAV:" xmlns:d="urn:schemas:httpmail:" xmlns:g="urn:schemas:mailheader:"><a:prop><d:textdescription/><g:htmldescription/></a:prop></a:propfind>`
	resp, body = do(t, ts, "PROPFIND", msgURL(m), pf, "Depth", "0")
	if resp.StatusCode != 207 || !strings.Contains(body, "<d:textdescription>Grüße</d:textdescription>") || !strings.Contains(body, "<g:htmldescription>&lt;p&gt;Grüße") {
		t.Errorf("description props: %d\n%s", resp.StatusCode, body)
	}
	// Not in a folder listing: listings never open message files.
	_, body = do(t, ts, "PROPFIND", "/exchange/alice/Inbox/", pf, "Depth", "1")
	if strings.Contains(body, "Grüße") {
		t.Errorf("a listing carries message content:\n%s", body)
	}
}

// TestViewMalformed: a malformed message gets a view with a marker
// naming what is wrong, not an error.
func TestViewMalformed(t *testing.T) {
	ts := newTestServer(t, dav.Config{})
	m := seed(t, ts, "alice", mailbox.Inbox, "Subject: broken\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nstill readable\r\n", 0)
	resp, body := do(t, ts, "GET", msgURL(m), "", "Translate", "t")
	if resp.StatusCode != 200 || !strings.Contains(body, "missing-final-boundary") || !strings.Contains(body, "still readable") {
		t.Errorf("view of a malformed message: %d\n%s", resp.StatusCode, body)
	}
}
