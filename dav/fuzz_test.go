package dav

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/net/http/httpguts"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/memstore"
)

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/exchange/alice/Inbox/", "/exchange/alice/%2e%2e/bob", "/exchange/a/b%2fc", "/exchange/a/%00", "/exchange/a/%c0%ae", "/exchange//a//b/", "/exchange", "/x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		user, segs, _, ok := splitPath(p, "/exchange/")
		if !ok {
			return
		}
		for _, s := range append([]string{user}, segs...) {
			if user == "" && len(segs) == 0 {
				break
			}
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") || !utf8.ValidString(s) {
				t.Fatalf("splitPath(%q) accepted segment %q", p, s)
			}
		}
	})
}

func FuzzParseIf(f *testing.F) {
	for _, s := range []string{
		"(<opaquelocktoken:a-b>)", `(<urn:x> ["etag"]) (Not <DAV:no-lock>)`, `<http://h/p> (["e"])`, "(", "()", "<x>", `(Not ["x"])`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lists, ok := parseIf(s)
		if !ok {
			return
		}
		n := 0
		for _, l := range lists {
			if len(l.conds) == 0 {
				t.Fatalf("empty list accepted from %q", s)
			}
			n += len(l.conds)
		}
		if n > maxIfConditions {
			t.Fatalf("%d conditions accepted, cap %d", n, maxIfConditions)
		}
	})
}

func FuzzXMLBodies(f *testing.F) {
	for _, s := range []string{
		`<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>`,
		`<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><x:y xmlns:x="u"/></D:include></D:propfind>`,
		`<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:p xmlns:x="u"><a xmlns="b">t</a></x:p></D:prop></D:set><D:remove><D:prop><q/></D:prop></D:remove></D:propertyupdate>`,
		`<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>me</D:href></D:owner></D:lockinfo>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`,
	} {
		f.Add(s)
	}
	h, err := New(Config{Store: nopStore{}, MaxXMLElements: 200, MaxXMLDepth: 16, MaxXMLBytes: 1 << 14})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h.parsePropfind(strings.NewReader(s))
		if patches, err := h.parsePropertyUpdate(strings.NewReader(s)); err == nil {
			for _, p := range patches {
				// A stored value must parse again as XML content.
				if _, err := h.newXMLReader(strings.NewReader("<r>" + p.prop.XML + "</r>")).root(); err != nil {
					t.Fatalf("re-serialized value %q does not parse: %v", p.prop.XML, err)
				}
			}
		}
		h.parseLockInfo(strings.NewReader(s))
	})
}

// FuzzRequestHeaders sends requests with arbitrary Depth, Destination,
// Range, Overwrite, If, Translate and Brief headers to a handler over a
// small mailbox: whatever the values, the answer is never a 5xx and
// never a panic (issue 6: hostile headers get a clear 4xx).
func FuzzRequestHeaders(f *testing.F) {
	f.Add(uint8(0), uint8(0), "1", "", "", "", "", "", "")
	f.Add(uint8(1), uint8(1), "0", "", "bytes=0-10,5-6,-3", "", "", "t", "")
	f.Add(uint8(2), uint8(1), "infinity", "/exchange/alice/Archive/x.EML", "", "F", "(<opaquelocktoken:x>)", "f", "t")
	f.Add(uint8(3), uint8(2), "1,noroot", "http://other/exchange/bob/Inbox/", "bytes=-0", "T", `(["etag"])`, "", "")
	f.Add(uint8(4), uint8(0), "infinity,noroot", "", "bytes=999999999999999999999-", "", "", "", "")
	st := memstore.New()
	mb, err := st.Mailbox(context.Background(), "alice")
	if err != nil {
		f.Fatal(err)
	}
	if err := mb.CreateFolder(context.Background(), "Archive"); err != nil {
		f.Fatal(err)
	}
	raw := "Subject: m\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Disposition: attachment; filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n"
	if _, err := mb.Append(context.Background(), mailbox.Inbox, strings.NewReader(raw), mailbox.AppendOptions{Name: "m.EML"}); err != nil {
		f.Fatal(err)
	}
	h, err := New(Config{Store: st, Logger: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	methods := []string{"PROPFIND", "GET", "HEAD", "COPY", "LOCK", "REPORT", "X-MS-ENUMATTS", "OPTIONS"}
	paths := []string{"/exchange/alice/Inbox/", "/exchange/alice/Inbox/m.EML", "/exchange/alice/Inbox/m.EML/a.bin", "/exchange/alice/"}
	f.Fuzz(func(t *testing.T, m, p uint8, depth, dest, rng, overwrite, ifh, translate, brief string) {
		method := methods[int(m)%len(methods)]
		req := httptest.NewRequest(method, paths[int(p)%len(paths)], nil)
		for k, v := range map[string]string{"Depth": depth, "Destination": dest, "Range": rng, "Overwrite": overwrite, "If": ifh, "Translate": translate, "Brief": brief} {
			if v != "" && httpguts.ValidHeaderFieldValue(v) {
				req.Header.Set(k, v)
			}
		}
		if method == "COPY" && req.Header.Get("Destination") == "" {
			return
		}
		req = req.WithContext(reqlog.With(req.Context(), &reqlog.Entry{User: "alice", Log: zerolog.Nop()}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 502 && (method == "COPY" || method == "MOVE") {
			return // RFC 4918 §9.8.5: a Destination on another server is 502 by definition
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s with Depth %q Destination %q Range %q Overwrite %q If %q: %d %s", method, req.URL.Path, depth, dest, rng, overwrite, ifh, rec.Code, rec.Body.String())
		}
	})
}
