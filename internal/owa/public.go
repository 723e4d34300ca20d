package owa

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
)

// The public folder vroot.
//
// DavMail sends "PROPFIND /public/" with Depth 0 for DAV:displayname
// right after login (DavExchangeSession.checkPublicFolder,
// exchange-webdav.md §1.1, §7.1 step 8). Any failure there is only a
// logged warning ("Public folders not available"), but a 207 lets it
// carry on without one, so /public/ is served as what it is on this
// gateway: an empty public folder tree. The root answers PROPFIND (any
// depth: it has no children), SEARCH (an empty result) and OPTIONS;
// anything below it is 404; writes are refused with 403, since there is
// nowhere to store public items.

// PROPFIND body caps, with their reasons.
const (
	// maxPublicBody: DavMail's probe body is ~200 bytes and an allprop
	// or a long prop list is under 4 KiB; 64 KiB is plenty.
	maxPublicBody = 64 << 10
	// maxPublicProps: the root has four properties; a client asking for
	// more than 256 is not looking at a public folder root.
	maxPublicProps = 256
	// maxPublicDepth: RFC 4918 propfind bodies are 3 levels deep
	// (propfind/prop/name); 16 leaves room for odd extensions.
	maxPublicDepth = 16
)

const nsDAV = "DAV:"

// maxXMLName caps a property name echoed in a 404 propstat: real ones are
// under 64 bytes; a longer one is dropped rather than echoed.
const maxXMLName = 256

// publicProp is one property of the public root.
type publicProp struct {
	local string // in DAV:
	value string // XML (already escaped)
}

// publicProps are the properties of the public root: what Exchange
// returns for a folder in DAV: (exchange-webdav.md §4.2). Booleans are
// "1"/"0" (§0.3 #5).
var publicProps = []publicProp{
	{"displayname", "Public Folders"},
	{"resourcetype", "<a:collection/>"},
	{"isfolder", "1"},
	{"iscollection", "1"},
	{"hassubs", "0"},
}

// propfindRequest is a parsed PROPFIND body (RFC 4918 §14.20).
type propfindRequest struct {
	allprop, propname bool
	props             []xml.Name
}

// errBadPropfind is the error of a PROPFIND body that is not one.
var errBadPropfind = errors.New("not a DAV:propfind body")

// parsePropfind reads a PROPFIND body. An empty body is allprop
// (RFC 4918 §9.1). Names are namespace-resolved; at most maxPublicProps
// are kept (the others are not answered), the body is read to at most
// maxPublicBody bytes (a *limits.Error beyond) and maxPublicDepth levels.
func parsePropfind(r io.Reader) (propfindRequest, error) {
	var req propfindRequest
	d := xml.NewDecoder(limits.NewReader(r, "public-propfind-body", maxPublicBody))
	depth := 0
	seenRoot := false
	inProp := false
	stray := false // text outside the root element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *limits.Error
			if errors.As(err, &le) {
				return req, le
			}
			return req, errBadPropfind
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxPublicDepth {
				return req, limits.TooComplex("public-propfind-depth", maxPublicDepth, int64(depth), "levels")
			}
			switch {
			case depth == 1:
				if t.Name.Space != nsDAV || t.Name.Local != "propfind" {
					return req, errBadPropfind
				}
				seenRoot = true
			case depth == 2 && t.Name.Space == nsDAV:
				switch t.Name.Local {
				case "allprop":
					req.allprop = true
				case "propname":
					req.propname = true
				case "prop":
					inProp = true
				}
			case depth == 3 && inProp:
				if len(req.props) < maxPublicProps {
					req.props = append(req.props, t.Name)
				}
			}
		case xml.EndElement:
			if depth == 2 {
				inProp = false
			}
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				stray = true
			}
		}
	}
	if stray {
		return req, errBadPropfind
	}
	if !seenRoot {
		// No element at all (an empty or blank body, perhaps an XML
		// declaration): allprop, RFC 4918 §9.1.
		req.allprop = true
		return req, nil
	}
	if !req.allprop && !req.propname && len(req.props) == 0 {
		// <propfind/> or <propfind><prop/></propfind>: nothing asked.
		// RFC 4918 leaves it open; answer as allprop, as IIS did.
		req.allprop = true
	}
	return req, nil
}

// Public serves the public folder vroot (PublicPrefix and the path
// without its final slash). It must be mounted behind authentication.
func (h *Handler) Public() http.Handler {
	const allow = "OPTIONS, GET, HEAD, PROPFIND, SEARCH"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DAV", "1, 2")
		w.Header().Set("MS-Author-Via", "DAV")
		w.Header().Set("MS-WebStorage", msWebStorage)
		root := r.URL.Path == h.public || r.URL.Path == h.public[:len(h.public)-1]
		switch r.Method {
		case http.MethodOptions:
			w.Header().Set("Allow", allow)
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		case http.MethodGet, http.MethodHead, "PROPFIND", "SEARCH":
		default:
			w.Header().Set("Allow", allow)
			http.Error(w, "403 Forbidden: there are no public folders on this server", http.StatusForbidden)
			return
		}
		if !root {
			http.Error(w, "404 Not Found: there are no public folders on this server", http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if r.Method == http.MethodGet {
				io.WriteString(w, "There are no public folders on this server.\n")
			}
		case "SEARCH":
			// An empty tree: every query has no rows. The body is not
			// needed to know that; net/http discards it (up to its own
			// cap) or closes the connection.
			writeMultistatus(w, "")
		case "PROPFIND":
			if d := strings.TrimSpace(r.Header.Get("Depth")); d != "" && d != "0" && d != "1" && !strings.EqualFold(d, "infinity") {
				http.Error(w, "400 Bad Request: Depth must be 0, 1 or infinity", http.StatusBadRequest)
				return
			}
			req, err := parsePropfind(r.Body)
			if err != nil {
				var le *limits.Error
				if errors.As(err, &le) {
					e := reqlog.From(r.Context())
					e.Limit, e.LimitValue, e.LimitSize = le.Limit, le.Value, le.Size
					http.Error(w, le.Error(), le.HTTPStatus())
					return
				}
				http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
				return
			}
			// The root has no children, so every depth lists just it.
			href := origin(r) + h.public
			writeMultistatus(w, publicResponse(href, req))
		}
	})
}

// writeMultistatus writes a 207 with the given <a:response> elements.
// The Content-Type is exactly "text/xml" (what DavMail requires of its
// SEARCH answers, §0.3 #1) and the DAV: prefix is a letter (§0.3 #2).
func writeMultistatus(w http.ResponseWriter, responses string) {
	body := `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
		`<a:multistatus xmlns:a="DAV:">` + responses + "</a:multistatus>\n"
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusMultiStatus)
	io.WriteString(w, body)
}

// publicResponse is the <a:response> of the public root for req: the
// known properties in a "200 OK" propstat, the others in a "404 Resource
// Not Found" one, with Exchange's exact status texts (§0.3 #3).
func publicResponse(href string, req propfindRequest) string {
	var ok, missing strings.Builder
	known := func(n xml.Name) *publicProp {
		if n.Space != nsDAV {
			return nil
		}
		for i := range publicProps {
			if publicProps[i].local == n.Local {
				return &publicProps[i]
			}
		}
		return nil
	}
	switch {
	case req.allprop || req.propname:
		for _, p := range publicProps {
			if req.propname {
				ok.WriteString("<a:" + p.local + "/>")
			} else {
				ok.WriteString("<a:" + p.local + ">" + p.value + "</a:" + p.local + ">")
			}
		}
	default:
		for _, n := range req.props {
			if p := known(n); p != nil {
				ok.WriteString("<a:" + p.local + ">" + p.value + "</a:" + p.local + ">")
				continue
			}
			missing.WriteString(emptyElement(n))
		}
	}
	var b strings.Builder
	b.WriteString("<a:response><a:href>")
	xml.EscapeText(&b, []byte(href))
	b.WriteString("</a:href>")
	if ok.Len() > 0 {
		b.WriteString("<a:propstat><a:prop>" + ok.String() + "</a:prop><a:status>HTTP/1.1 200 OK</a:status></a:propstat>")
	}
	if missing.Len() > 0 {
		b.WriteString("<a:propstat><a:prop>" + missing.String() + "</a:prop><a:status>HTTP/1.1 404 Resource Not Found</a:status></a:propstat>")
	}
	b.WriteString("</a:response>")
	return b.String()
}

// emptyElement writes an empty element for name: in DAV: with the a:
// prefix, in another namespace with the letter prefix "b" declared on the
// element itself (§0.3 #2: never a digit right after "<x"), in no
// namespace unprefixed. A name that cannot be written back as an XML
// name (encoding/xml is lenient on input) is left out.
func emptyElement(n xml.Name) string {
	if !xmlName(n.Local) {
		return ""
	}
	switch n.Space {
	case nsDAV:
		return "<a:" + n.Local + "/>"
	case "":
		// Unprefixed, the name itself follows "<": one with a digit
		// third ("aa0") would be corrupted by DavMail (§0.3 #2), and
		// no DavMail or Exchange property has no namespace, so it is
		// left out rather than answered.
		if len(n.Local) > 2 && '0' <= n.Local[2] && n.Local[2] <= '9' {
			return ""
		}
		return "<" + n.Local + ` xmlns=""/>`
	}
	var b strings.Builder
	b.WriteString("<b:" + n.Local + ` xmlns:b="`)
	xml.EscapeText(&b, []byte(n.Space))
	b.WriteString(`"/>`)
	return b.String()
}

// xmlName reports whether s is a name we can emit: an ASCII letter or "_"
// first, then letters, digits, "_", "-" and "." (a conservative subset of
// XML 1.0 Name without colons).
func xmlName(s string) bool {
	if s == "" || len(s) > maxXMLName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
