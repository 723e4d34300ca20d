package owa

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/davmail/davmail/limits"
)

// davmailProbe is DavMail's PROPFIND of /public/ after login
// (DavExchangeSession.checkPublicFolder): Depth 0, DAV:displayname.
const davmailProbe = `<?xml version="1.0" encoding="UTF-8" standalone="no"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>`

func TestPublicPropfind(t *testing.T) {
	f := newFixture(t)
	h := f.h.Public()

	w := serve(h, request("PROPFIND", "http://127.0.0.1:8080/public/", strings.NewReader(davmailProbe), "Depth", "0"))
	want := `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
		`<a:multistatus xmlns:a="DAV:"><a:response><a:href>http://127.0.0.1:8080/public/</a:href>` +
		`<a:propstat><a:prop><a:displayname>Public Folders</a:displayname></a:prop><a:status>HTTP/1.1 200 OK</a:status></a:propstat>` +
		`</a:response></a:multistatus>` + "\n"
	if w.Code != 207 || w.Body.String() != want {
		t.Fatalf("DavMail probe: %d\n%s\nwant\n%s", w.Code, w.Body.String(), want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type %q", ct)
	}

	// Unknown properties go to a 404 propstat with Exchange's text, with
	// letter prefixes only (no digit three bytes after "<").
	body := `<propfind xmlns="DAV:" xmlns:h="urn:schemas:httpmail:"><prop><displayname/><h:unreadcount/><getetag/><x xmlns=""/><h:_0bad/><h:0x8570/></prop></propfind>`
	w = serve(h, request("PROPFIND", "http://h/public", strings.NewReader(body), "Depth", "1"))
	got := w.Body.String()
	for _, s := range []string{
		`<a:propstat><a:prop><a:displayname>Public Folders</a:displayname></a:prop><a:status>HTTP/1.1 200 OK</a:status></a:propstat>`,
		`<a:propstat><a:prop><b:unreadcount xmlns:b="urn:schemas:httpmail:"/><a:getetag/><x xmlns=""/><b:_0bad xmlns:b="urn:schemas:httpmail:"/></a:prop><a:status>HTTP/1.1 404 Resource Not Found</a:status></a:propstat>`,
		`<a:href>http://h/public/</a:href>`,
	} {
		if !strings.Contains(got, s) {
			t.Errorf("response lacks %s:\n%s", s, got)
		}
	}
	for i := 0; i+3 < len(got); i++ {
		if got[i] == '<' && got[i+3] >= '0' && got[i+3] <= '9' {
			t.Errorf("digit three bytes after '<' at %d: %q", i, got[i:i+10])
		}
	}
	if err := xml.Unmarshal([]byte(got), new(struct{})); err != nil {
		t.Errorf("response is not XML: %v", err)
	}

	// allprop, an empty body, propname.
	for _, b := range []string{`<propfind xmlns="DAV:"><allprop/></propfind>`, "", "  \n", `<?xml version="1.0"?>`, `<propfind xmlns="DAV:"/>`} {
		w = serve(h, request("PROPFIND", "http://h/public/", strings.NewReader(b), "Depth", "infinity"))
		if w.Code != 207 || !strings.Contains(w.Body.String(), "<a:resourcetype><a:collection/></a:resourcetype>") || !strings.Contains(w.Body.String(), "<a:hassubs>0</a:hassubs>") {
			t.Errorf("allprop %q: %d %s", b, w.Code, w.Body.String())
		}
	}
	w = serve(h, request("PROPFIND", "http://h/public/", strings.NewReader(`<propfind xmlns="DAV:"><propname/></propfind>`)))
	if !strings.Contains(w.Body.String(), "<a:displayname/>") {
		t.Errorf("propname: %s", w.Body.String())
	}

	// Client mistakes.
	for _, c := range []struct {
		body, depth string
		status      int
	}{
		{`<propfind xmlns="DAV:"><prop>`, "0", 400},
		{`<foo/>`, "0", 400},
		{`not xml`, "0", 400},
		{davmailProbe, "2", 400},
		{`<propfind xmlns="DAV:"><prop><displayname/></prop></propfind>` + strings.Repeat(" ", maxPublicBody), "0", 413},
		{`<propfind xmlns="DAV:">` + strings.Repeat("<a>", maxPublicDepth), "0", 413},
	} {
		w = serve(h, request("PROPFIND", "http://h/public/", strings.NewReader(c.body), "Depth", c.depth))
		if w.Code != c.status {
			t.Errorf("PROPFIND %.40q Depth %s: %d, want %d", c.body, c.depth, w.Code, c.status)
		}
	}
}

func TestPublicOtherMethods(t *testing.T) {
	f := newFixture(t)
	h := f.h.Public()
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"OPTIONS", "/public/", 200},
		{"GET", "/public/", 200},
		{"HEAD", "/public", 200},
		{"SEARCH", "/public/", 207},
		{"PROPFIND", "/public/Marketing/", 404},
		{"GET", "/public/Marketing/x.EML", 404},
		{"PUT", "/public/x.EML", 403},
		{"MKCOL", "/public/New/", 403},
		{"DELETE", "/public/", 403},
		{"PROPPATCH", "/public/", 403},
	} {
		w := serve(h, request(c.method, "http://h"+c.path, strings.NewReader("")))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
		if c.method == "SEARCH" && (w.Header().Get("Content-Type") != "text/xml" || !strings.Contains(w.Body.String(), `<a:multistatus xmlns:a="DAV:"></a:multistatus>`)) {
			t.Errorf("SEARCH: %q %s", w.Header().Get("Content-Type"), w.Body.String())
		}
		if c.method == "OPTIONS" && !strings.Contains(w.Header().Get("Allow"), "PROPFIND") {
			t.Errorf("OPTIONS Allow %q", w.Header().Get("Allow"))
		}
	}
}

func FuzzParsePropfind(f *testing.F) {
	f.Add(davmailProbe)
	f.Add(`<propfind xmlns="DAV:"><allprop/></propfind>`)
	f.Add(`<propfind xmlns="DAV:"><propname/></propfind>`)
	f.Add(`<D:propfind xmlns:D="DAV:"><D:prop><x:a xmlns:x="urn:x"/><b/></D:prop></D:propfind>`)
	f.Add("")
	f.Add("<a><b><c>")
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parsePropfind(strings.NewReader(body))
		if err != nil {
			var le *limits.Error
			if !errors.Is(err, errBadPropfind) && !errors.As(err, &le) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(req.props) > maxPublicProps {
			t.Fatalf("%d props", len(req.props))
		}
		if !req.allprop && !req.propname && len(req.props) == 0 {
			t.Fatal("nothing asked and not allprop")
		}
		// Whatever was asked, the answer is well-formed XML with letter
		// prefixes only.
		out := publicResponse("http://h/public/", req)
		if err := xml.Unmarshal([]byte(out), new(struct{})); err != nil {
			t.Fatalf("response %q is not XML: %v", out, err)
		}
		for i := 0; i+3 < len(out); i++ {
			if out[i] == '<' && out[i+3] >= '0' && out[i+3] <= '9' {
				t.Fatalf("digit three bytes after '<' in %q", out)
			}
		}
	})
}
