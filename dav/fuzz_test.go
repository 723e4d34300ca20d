package dav

import (
	"strings"
	"testing"
	"unicode/utf8"
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
