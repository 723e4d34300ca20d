package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"
)

// davClient is the tests' own minimal WebDAV client, used to check server
// state independently of the client under test.
type davClient struct {
	base       *url.URL
	user, pass string
	hc         *http.Client
}

// client returns a davClient that authenticates as user.
func (ts *testServer) client(t *testing.T, user string) *davClient {
	t.Helper()
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Two minutes: the largest corpus message is ~10 MiB, a few seconds
	// even under the race detector; a hung server must not hang the test.
	return &davClient{base: u, user: user, pass: ts.Passwords[user], hc: &http.Client{Timeout: 2 * time.Minute}}
}

// folderPath is the escaped URL path of a user's folder, with a trailing
// slash: INBOX is "Inbox", other folders go by their "/"-separated names,
// each segment percent-encoded ("Entwürfe" → "Entw%C3%BCrfe").
func folderPath(user, folder string) string {
	var b strings.Builder
	b.WriteString("/exchange/" + url.PathEscape(user) + "/")
	if folder == "" {
		return b.String()
	}
	for i, seg := range strings.Split(folder, "/") {
		if i == 0 && seg == "INBOX" {
			seg = "Inbox"
		}
		b.WriteString(url.PathEscape(seg) + "/")
	}
	return b.String()
}

// itemPath is the escaped URL path of a resource named name in the folder
// at the escaped path dir.
func itemPath(dir, name string) string {
	return strings.TrimSuffix(dir, "/") + "/" + url.PathEscape(name)
}

// resolve turns an escaped path or an absolute URL (as hrefs may be) into
// an absolute URL on the server.
func (c *davClient) resolve(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("bad target %q: %v", target, err)
	}
	return c.base.ResolveReference(u).String()
}

// do sends one request; hdr holds name/value pairs.
func (c *davClient) do(t *testing.T, method, target string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, c.resolve(t, target), body)
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

// status sends a request and returns only its status, draining the body.
func (c *davClient) status(t *testing.T, method, target string, hdr ...string) int {
	t.Helper()
	resp := c.do(t, method, target, nil, hdr...)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// getBytes GETs target whole (for the tests' own small files).
func (c *davClient) getBytes(t *testing.T, target string) (int, []byte) {
	t.Helper()
	resp := c.do(t, http.MethodGet, target, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20)) // far above any test file
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", target, err)
	}
	return resp.StatusCode, b
}

// getSum GETs target, streaming the body into SHA-256, and returns the
// status, the body length and its digest.
func (c *davClient) getSum(t *testing.T, target string) (status int, n int64, sum [sha256.Size]byte, err error) {
	t.Helper()
	resp := c.do(t, http.MethodGet, target, nil)
	defer resp.Body.Close()
	h := sha256.New()
	n, err = io.Copy(h, resp.Body)
	copy(sum[:], h.Sum(nil))
	if err == nil && resp.ContentLength >= 0 && resp.ContentLength != n {
		err = fmt.Errorf("Content-Length %d but %d body bytes", resp.ContentLength, n)
	}
	return resp.StatusCode, n, sum, err
}

// davProp is one property element of a PROPFIND answer.
type davProp struct {
	XMLName  xml.Name
	Text     string `xml:",chardata"`
	Children []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// davEntry is one response of a multistatus, with the properties found
// (propstat 200) by name.
type davEntry struct {
	Href  string // as sent
	Path  string // decoded URL path
	Props map[xml.Name]davProp
}

// Names of the properties the tests read.
var (
	propResourceType  = xml.Name{Space: "DAV:", Local: "resourcetype"}
	propContentLength = xml.Name{Space: "DAV:", Local: "getcontentlength"}
	propSubject       = xml.Name{Space: "urn:schemas:httpmail:", Local: "subject"}
	propRead          = xml.Name{Space: "urn:schemas:httpmail:", Local: "read"}
)

// isCollection reports whether the entry's resourcetype holds
// DAV:collection.
func (e davEntry) isCollection() bool {
	for _, c := range e.Props[propResourceType].Children {
		if c.XMLName == (xml.Name{Space: "DAV:", Local: "collection"}) {
			return true
		}
	}
	return false
}

// name is the last path segment of the entry, decoded.
func (e davEntry) name() string { return path.Base(strings.TrimSuffix(e.Path, "/")) }

// propfindBody asks for the properties the tests check.
const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:"><D:prop>` +
	`<D:resourcetype/><D:getcontentlength/><h:subject/><h:read/>` +
	`</D:prop></D:propfind>`

// propfind sends a PROPFIND with the given Depth and returns the status
// and, for a 207, the parsed responses.
func (c *davClient) propfind(t *testing.T, target, depth string) (int, []davEntry) {
	t.Helper()
	resp := c.do(t, "PROPFIND", target, strings.NewReader(propfindBody),
		"Depth", depth, "Content-Type", `text/xml; charset="utf-8"`)
	defer resp.Body.Close()
	// 64 MiB: a Depth-1 listing of the largest corpus folder is < 1 MiB.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatalf("PROPFIND %s: reading body: %v", target, err)
	}
	if resp.StatusCode != http.StatusMultiStatus {
		return resp.StatusCode, nil
	}
	entries, err := parseMultistatus(body)
	if err != nil {
		t.Fatalf("PROPFIND %s: %v\n%s", target, err, clip(body, 2000))
	}
	return resp.StatusCode, entries
}

// parseMultistatus parses an RFC 4918 §14.16 multistatus body.
func parseMultistatus(body []byte) ([]davEntry, error) {
	var ms struct {
		XMLName   xml.Name `xml:"DAV: multistatus"`
		Responses []struct {
			Href      []string `xml:"DAV: href"`
			Propstats []struct {
				Status string `xml:"DAV: status"`
				Prop   struct {
					Props []davProp `xml:",any"`
				} `xml:"DAV: prop"`
			} `xml:"DAV: propstat"`
		} `xml:"DAV: response"`
	}
	if err := xml.Unmarshal(body, &ms); err != nil {
		return nil, fmt.Errorf("bad multistatus: %w", err)
	}
	out := make([]davEntry, 0, len(ms.Responses))
	for _, r := range ms.Responses {
		if len(r.Href) != 1 {
			return nil, fmt.Errorf("response with %d hrefs (want 1 for a PROPFIND)", len(r.Href))
		}
		u, err := url.Parse(strings.TrimSpace(r.Href[0]))
		if err != nil {
			return nil, fmt.Errorf("bad href %q: %w", r.Href[0], err)
		}
		e := davEntry{Href: strings.TrimSpace(r.Href[0]), Path: u.Path, Props: map[xml.Name]davProp{}}
		for _, ps := range r.Propstats {
			code, err := statusCode(ps.Status)
			if err != nil {
				return nil, fmt.Errorf("href %s: %w", e.Href, err)
			}
			if code != http.StatusOK {
				continue
			}
			for _, p := range ps.Prop.Props {
				e.Props[p.XMLName] = p
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// statusCode reads the code of an RFC 4918 §14.28 status line,
// "HTTP/1.1 200 OK".
func statusCode(line string) (int, error) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 599 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	return code, nil
}

// parseBool reads an Exchange boolean ("1"/"0"; "true"/"false" tolerated).
func parseBool(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// clip shortens b for an error message.
func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b[:n], nil)) + "…"
}
