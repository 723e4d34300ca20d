package dav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

const nsDAV = "DAV:"

// xmlReader is a streaming, capped XML token reader for request bodies:
// bytes (through limits.Reader), element count and nesting depth are
// bounded, and DTDs are refused, so entity expansion ("billion laughs")
// and external entities cannot happen (encoding/xml knows only the five
// predefined entities anyway).
type xmlReader struct {
	d                  *xml.Decoder
	elems, depth       int
	maxElems, maxDepth int
}

func (h *Handler) newXMLReader(body io.Reader) *xmlReader {
	d := xml.NewDecoder(limits.NewReader(body, "max-xml-bytes", h.cfg.MaxXMLBytes))
	d.Strict = true
	// Accept any declared charset: clients send UTF-8 (DavMail: "UTF-8");
	// anything else we decline rather than guess.
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return in, nil
		}
		return nil, errorf(http.StatusUnsupportedMediaType, "XML charset %q is not supported; send UTF-8", label)
	}
	return &xmlReader{d: d, maxElems: h.cfg.MaxXMLElements, maxDepth: h.cfg.MaxXMLDepth}
}

// Token returns the next token, enforcing the caps. Syntax errors become
// 400; cap violations a *limits.Error (413).
func (x *xmlReader) Token() (xml.Token, error) {
	t, err := x.d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		var le *limits.Error
		var he *httpError
		if errors.As(err, &le) || errors.As(err, &he) {
			return nil, err
		}
		return nil, &httpError{Code: http.StatusBadRequest, Msg: "malformed XML request body: " + err.Error(), Err: err}
	}
	switch t := t.(type) {
	case xml.StartElement:
		x.elems++
		x.depth++
		if x.elems > x.maxElems {
			return nil, limits.TooComplex("max-xml-elements", int64(x.maxElems), int64(x.elems), "elements")
		}
		if x.depth > x.maxDepth {
			return nil, limits.TooComplex("max-xml-depth", int64(x.maxDepth), int64(x.depth), "levels")
		}
		for _, a := range t.Attr {
			// Namespaces in XML 1.0 §3: a prefix may not be bound to
			// the empty name (litmus propfind_invalid2).
			if a.Name.Space == "xmlns" && a.Value == "" {
				return nil, errorf(http.StatusBadRequest, "malformed XML: prefix %q bound to an empty namespace", a.Name.Local)
			}
		}
	case xml.EndElement:
		x.depth--
	case xml.Directive:
		return nil, errorf(http.StatusBadRequest, "DTDs and entity declarations are not accepted in request bodies")
	}
	return t, nil
}

// skip consumes the rest of the current element.
func (x *xmlReader) skip() error {
	depth := 1
	for depth > 0 {
		t, err := x.Token()
		if err != nil {
			return eofIsBad(err)
		}
		switch t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// root returns the first start element, or io.EOF for an empty body.
func (x *xmlReader) root() (xml.StartElement, error) {
	for {
		t, err := x.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if se, ok := t.(xml.StartElement); ok {
			return se, nil
		}
	}
}

// drain reads to the end of the document, so trailing garbage is caught.
func (x *xmlReader) drain() error {
	for {
		t, err := x.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return errorf(http.StatusBadRequest, "malformed XML: more than one root element")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return errorf(http.StatusBadRequest, "malformed XML: text after the root element")
			}
		}
	}
}

func eofIsBad(err error) error {
	if err == io.EOF {
		return errorf(http.StatusBadRequest, "malformed XML: unexpected end of request body")
	}
	return err
}

// propfindRequest is a parsed PROPFIND body (RFC 4918 §14.20).
type propfindRequest struct {
	allprop, propname bool
	props             []xml.Name // prop or include list
}

// parsePropfind reads a PROPFIND body; an empty body means allprop
// (RFC 4918 §9.1).
func (h *Handler) parsePropfind(body io.Reader) (propfindRequest, error) {
	var req propfindRequest
	x := h.newXMLReader(body)
	root, err := x.root()
	if err == io.EOF {
		req.allprop = true
		return req, nil
	}
	if err != nil {
		return req, err
	}
	if root.Name != (xml.Name{Space: nsDAV, Local: "propfind"}) {
		return req, errorf(http.StatusBadRequest, "PROPFIND body must be a DAV:propfind element, not %s", root.Name.Local)
	}
	kinds := 0
	for {
		t, err := x.Token()
		if err != nil {
			return req, eofIsBad(err)
		}
		if _, ok := t.(xml.EndElement); ok {
			break
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name.Space == nsDAV && se.Name.Local == "allprop":
			req.allprop = true
			kinds++
			if err := x.skip(); err != nil {
				return req, err
			}
		case se.Name.Space == nsDAV && se.Name.Local == "propname":
			req.propname = true
			kinds++
			if err := x.skip(); err != nil {
				return req, err
			}
		case se.Name.Space == nsDAV && (se.Name.Local == "prop" || se.Name.Local == "include"):
			if se.Name.Local == "prop" {
				kinds++
			}
			names, err := x.nameList()
			if err != nil {
				return req, err
			}
			req.props = append(req.props, names...)
		default:
			if err := x.skip(); err != nil {
				return req, err
			}
		}
	}
	if kinds != 1 {
		return req, errorf(http.StatusBadRequest, "DAV:propfind must hold exactly one of prop, allprop, propname")
	}
	return req, x.drain()
}

// nameList reads the children of a DAV:prop as property names.
func (x *xmlReader) nameList() ([]xml.Name, error) {
	var names []xml.Name
	for {
		t, err := x.Token()
		if err != nil {
			return nil, eofIsBad(err)
		}
		switch t := t.(type) {
		case xml.EndElement:
			return names, nil
		case xml.StartElement:
			names = append(names, xml.Name{Space: t.Name.Space, Local: decodeXmlConvert(t.Name.Local)})
			if err := x.skip(); err != nil {
				return nil, err
			}
		}
	}
}

// decodeXmlConvert undoes XmlConvert escaping of element names
// ("_x0030_x8570" → "0x8570", §3.1).
func decodeXmlConvert(s string) string {
	if !strings.Contains(s, "_x") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+6 < len(s) && s[i+1] == 'x' && s[i+6] == '_' {
			v := 0
			good := true
			for _, c := range []byte(s[i+2 : i+6]) {
				d := unhex(c)
				if d < 0 {
					good = false
					break
				}
				v = v<<4 | d
			}
			if good {
				b.WriteRune(rune(v))
				i += 6
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// propPatch is one set or remove instruction, in document order
// (RFC 4918 §9.2: instructions are applied in order).
type propPatch struct {
	remove bool
	prop   mailbox.Prop
}

// parsePropertyUpdate reads a DAV:propertyupdate body (RFC 4918 §14.19).
func (h *Handler) parsePropertyUpdate(body io.Reader) ([]propPatch, error) {
	x := h.newXMLReader(body)
	root, err := x.root()
	if err == io.EOF {
		return nil, errorf(http.StatusBadRequest, "PROPPATCH needs a DAV:propertyupdate body")
	}
	if err != nil {
		return nil, err
	}
	if root.Name != (xml.Name{Space: nsDAV, Local: "propertyupdate"}) {
		return nil, errorf(http.StatusBadRequest, "PROPPATCH body must be a DAV:propertyupdate element")
	}
	var patches []propPatch
	for {
		t, err := x.Token()
		if err != nil {
			return nil, eofIsBad(err)
		}
		if _, ok := t.(xml.EndElement); ok {
			break
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Space != nsDAV || (se.Name.Local != "set" && se.Name.Local != "remove") {
			if err := x.skip(); err != nil {
				return nil, err
			}
			continue
		}
		remove := se.Name.Local == "remove"
		// set/remove → prop → properties
		for {
			t, err := x.Token()
			if err != nil {
				return nil, eofIsBad(err)
			}
			if _, ok := t.(xml.EndElement); ok {
				break
			}
			pe, ok := t.(xml.StartElement)
			if !ok {
				continue
			}
			if pe.Name != (xml.Name{Space: nsDAV, Local: "prop"}) {
				if err := x.skip(); err != nil {
					return nil, err
				}
				continue
			}
			for {
				t, err := x.Token()
				if err != nil {
					return nil, eofIsBad(err)
				}
				if _, ok := t.(xml.EndElement); ok {
					break
				}
				el, ok := t.(xml.StartElement)
				if !ok {
					continue
				}
				p := mailbox.Prop{Space: el.Name.Space, Local: decodeXmlConvert(el.Name.Local), Lang: xmlLang(el)}
				inner, err := x.innerXML()
				if err != nil {
					return nil, err
				}
				p.XML = inner
				patches = append(patches, propPatch{remove: remove, prop: p})
			}
		}
	}
	if len(patches) == 0 {
		return nil, errorf(http.StatusBadRequest, "DAV:propertyupdate holds no property")
	}
	return patches, x.drain()
}

func xmlLang(se xml.StartElement) string {
	for _, a := range se.Attr {
		if a.Name.Space == "http://www.w3.org/XML/1998/namespace" && a.Name.Local == "lang" {
			return a.Value
		}
	}
	return ""
}

// innerXML re-serializes the content of the current element with every
// namespace declared on the element that uses it, so the value stays
// correct when written into a response with other prefixes in scope
// (litmus propvalnspace, propmanyns). Text is escaped canonically.
func (x *xmlReader) innerXML() (string, error) {
	var b []byte
	depth := 0
	var stack []xml.Name
	for {
		t, err := x.Token()
		if err != nil {
			return "", eofIsBad(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			stack = append(stack, t.Name)
			b = appendStartElement(b, t, depth)
		case xml.EndElement:
			if depth == 0 {
				return string(b), nil
			}
			b = appendEndElement(b, stack[len(stack)-1], depth)
			stack = stack[:len(stack)-1]
			depth--
		case xml.CharData:
			b = appendXMLText(b, string(t))
		}
	}
}

// appendStartElement writes a start tag with prefix "vN" (N = depth, so
// nested elements never clash) bound to its namespace.
func appendStartElement(b []byte, se xml.StartElement, depth int) []byte {
	b = append(b, '<')
	b = appendValueName(b, se.Name, depth)
	if se.Name.Space != "" {
		b = append(b, " xmlns:"...)
		b = appendValuePrefix(b, depth)
		b = append(b, `="`...)
		b = appendXMLAttr(b, se.Name.Space)
		b = append(b, '"')
	}
	for i, a := range se.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue // declarations are regenerated
		}
		b = append(b, ' ')
		switch a.Name.Space {
		case "":
		case "http://www.w3.org/XML/1998/namespace":
			b = append(b, "xml:"...)
		default:
			p := []byte("a")
			p = append(p, byte('a'+i%26))
			b = append(b, " xmlns:"...)
			b = append(b, p...)
			b = append(b, `="`...)
			b = appendXMLAttr(b, a.Name.Space)
			b = append(b, `" `...)
			b = append(b, p...)
			b = append(b, ':')
		}
		b = append(b, a.Name.Local...)
		b = append(b, `="`...)
		b = appendXMLAttr(b, a.Value)
		b = append(b, '"')
	}
	return append(b, '>')
}

func appendEndElement(b []byte, n xml.Name, depth int) []byte {
	b = append(b, "</"...)
	b = appendValueName(b, n, depth)
	return append(b, '>')
}

func appendValuePrefix(b []byte, depth int) []byte {
	b = append(b, 'v')
	// letters only (§0.3 #2: no digit right after "<" + 2 bytes)
	for d := depth; d > 0; d /= 26 {
		b = append(b, byte('a'+d%26))
	}
	return b
}

func appendValueName(b []byte, n xml.Name, depth int) []byte {
	if n.Space != "" {
		b = appendValuePrefix(b, depth)
		b = append(b, ':')
	}
	return append(b, n.Local...)
}
