package convert

import (
	"bytes"
)

// Parsing of Content-Type and Content-Disposition values: RFC 2045 §5.1
// (type/subtype; attribute=value), RFC 2183 (disposition), RFC 2231
// (parameter value continuations, charsets and languages), leniently:
// comments are skipped, a missing ";" between parameters is tolerated,
// unquoted values run to the next ";" (spaces included, as some mailers
// write file names), unterminated quoted strings run to the end, the
// first of duplicate parameters wins, and RFC 2047 encoded words inside
// values are decoded (not allowed by RFC 2047 §5, but Outlook and others
// write them and every mail reader decodes them).

const (
	// maxParams caps the parameters kept per header field. Real headers
	// carry a handful; RFC 2231 continuations of one long file name may
	// use a few dozen.
	maxParams = 64
	// maxSections caps RFC 2231 continuation sections of one parameter.
	maxSections = 64
	// maxParamValue caps a decoded parameter value (and so a file name).
	// File systems allow 255 bytes per name; 1 KiB leaves room for 4-byte
	// UTF-8 and for other parameters while bounding the index entry.
	maxParamValue = 1024
	// maxBoundary caps a multipart boundary. RFC 2046 §5.1.1 allows 70
	// characters; some writers exceed it, none by this much.
	maxBoundary = 256
)

type rawParam struct {
	name    []byte // lower-case attribute, RFC 2231 suffix removed
	value   []byte // quotes and escapes removed
	section int    // RFC 2231 section number, -1 when none
	ext     bool   // RFC 2231 extended value (charset'lang'%XX)
}

// paramParser parses one field value; its buffers are reused across
// fields.
type paramParser struct {
	typ       []byte // lower-case media type ("text/plain") or disposition type
	typeOK    bool   // the type was syntactically valid
	params    []rawParam
	scratch   []byte
	dec       []byte
	paramsArr [6]rawParam // typical fields have fewer parameters: no allocation
}

func isTokenByte(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=':
		return false
	}
	return true
}

// skipCFWS skips whitespace and RFC 5322 comments starting at i; the
// result is at most len(v).
func skipCFWS(v []byte, i int) int {
	return min(skipCFWS1(v, i), len(v))
}

func skipCFWS1(v []byte, i int) int {
	for i < len(v) {
		switch v[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '(':
			depth := 0
			for i < len(v) {
				c := v[i]
				i++
				if c == '\\' {
					i++
				} else if c == '(' {
					depth++
				} else if c == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
		default:
			return i
		}
	}
	return i
}

func token(v []byte, i int) int {
	for i < len(v) && isTokenByte(v[i]) {
		i++
	}
	return i
}

// parse parses v. For Content-Type (media=true) the type is
// "type/subtype"; for Content-Disposition it is a single token.
func (p *paramParser) parse(v []byte, media bool) {
	if p.params == nil {
		p.params = p.paramsArr[:0]
	}
	p.params = p.params[:0]
	p.typeOK = false
	// Values are slices of sc; when appending outgrows it, the earlier
	// slices keep pointing at the old array, which stays valid.
	sc := p.scratch[:0]
	i := skipCFWS(v, 0)
	j := token(v, i)
	typ := v[i:j]
	p.typeOK = j > i
	i = skipCFWS(v, j)
	if media {
		if p.typeOK && i < len(v) && v[i] == '/' {
			i = skipCFWS(v, i+1)
			k := token(v, i)
			if k == i {
				p.typeOK = false
			}
			start := len(sc)
			sc = append(sc, typ...)
			sc = append(sc, '/')
			sc = append(sc, v[i:k]...)
			typ = sc[start:]
			i = skipCFWS(v, k)
		} else {
			p.typeOK = false
		}
	}
	if !media || !p.typeOK {
		start := len(sc)
		sc = append(sc, typ...)
		typ = sc[start:]
	}
	p.typ = asciiLower(typ)

	for i < len(v) && len(p.params) < maxParams {
		if v[i] == ';' {
			i = skipCFWS(v, i+1)
			continue
		}
		// attribute
		j := token(v, i)
		if j == i {
			// Not an attribute: skip to the next ";".
			if k := bytes.IndexByte(v[i:], ';'); k >= 0 {
				i += k
			} else {
				i = len(v)
			}
			continue
		}
		attr := v[i:j]
		i = skipCFWS(v, j)
		if i >= len(v) || v[i] != '=' {
			continue
		}
		i = skipCFWS(v, i+1)
		var val []byte
		vstart := len(sc)
		if i < len(v) && v[i] == '"' {
			i++
			for i < len(v) && v[i] != '"' {
				c := v[i]
				if c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
					// Only \" and \\ are unescaped: Windows paths in file
					// names ("C:\dir\x.doc") keep their backslashes.
					i++
					c = v[i]
				}
				sc = append(sc, c)
				i++
			}
			i++ // closing quote (or past the end)
			val = sc[vstart:]
		} else {
			k := bytes.IndexByte(v[i:], ';')
			if k < 0 {
				k = len(v) - i
			}
			raw := trimSpace(v[i : i+k])
			raw = stripTrailingComment(raw)
			sc = append(sc, raw...)
			val = sc[vstart:]
			i += k
		}
		if i > len(v) {
			i = len(v)
		}
		i = skipCFWS(v, i)
		nstart := len(sc)
		sc = append(sc, attr...)
		name := asciiLower(sc[nstart:])
		rp := rawParam{section: -1}
		if k := bytes.IndexByte(name, '*'); k >= 0 {
			suffix := name[k+1:]
			name = name[:k]
			switch {
			case len(suffix) == 0:
				rp.ext = true
			default:
				if suffix[len(suffix)-1] == '*' {
					rp.ext = true
					suffix = suffix[:len(suffix)-1]
				}
				n, ok := smallInt(suffix, maxSections-1)
				if !ok {
					continue
				}
				rp.section = n
			}
		}
		if len(name) == 0 {
			continue
		}
		rp.name, rp.value = name, val
		p.params = append(p.params, rp)
	}
	p.scratch = sc
}

// stripTrailingComment removes an RFC 5322 comment that follows a token
// value after whitespace: `us-ascii (Plain text)`. A value such as
// `report (1).pdf` is left alone.
func stripTrailingComment(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] != ')' {
		return b
	}
	k := bytes.IndexByte(b, '(')
	if k <= 0 || !isSpaceByte(b[k-1]) {
		return b
	}
	head := trimSpace(b[:k])
	if token(head, 0) != len(head) {
		return b
	}
	return head
}

// smallInt parses a decimal number of at most 3 digits no larger than max.
func smallInt(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}

// has reports whether some parameter is named name, in any form.
func (p *paramParser) has(name string) bool {
	for i := range p.params {
		if string(p.params[i].name) == name {
			return true
		}
	}
	return false
}

// raw returns the plain value of parameter name as written (quotes
// removed), ignoring RFC 2231 forms; for boundary and charset.
func (p *paramParser) raw(name string) ([]byte, bool) {
	for i := range p.params {
		rp := &p.params[i]
		if rp.section < 0 && !rp.ext && string(rp.name) == name {
			return rp.value, true
		}
	}
	// Fall back to an RFC 2231 form without charset.
	for i := range p.params {
		rp := &p.params[i]
		if (rp.section == 0 || rp.section < 0) && string(rp.name) == name {
			return rp.value, true
		}
	}
	return nil, false
}

// value appends the decoded value of parameter name to dst as UTF-8
// text, sanitized to one line of at most maxParamValue bytes. RFC 2231
// forms win over a plain value (mailers send both, the RFC 2231 one
// being exact). found is false when there is no such parameter.
func (p *paramParser) value(t *textBuf, dst []byte, name string) (out []byte, found bool) {
	// RFC 2231 §3/§4: name*=charset'lang'value or name*0[*]=, name*1[*]=, …
	single := -1
	any2231, has0 := false, false
	for i := range p.params {
		rp := &p.params[i]
		if string(rp.name) != name {
			continue
		}
		switch {
		case rp.section >= 0:
			has0 = has0 || rp.section == 0
			any2231 = true
		case rp.ext:
			if single < 0 {
				single = i
			}
			any2231 = true
		}
	}
	if any2231 {
		d := p.dec[:0]
		var cs []byte
		csKnown := false
		if has0 {
			for s := 0; s < maxSections; s++ {
				k := p.section(name, s)
				if k < 0 {
					break // RFC 2231 §3: sections are numbered without gaps
				}
				rp := &p.params[k]
				v := rp.value
				if rp.ext {
					if s == 0 {
						cs, v, csKnown = split2231(v)
					}
					d = appendPercentDecoded(d, v)
				} else {
					d = append(d, v...)
				}
			}
		} else if single >= 0 {
			var v []byte
			cs, v, csKnown = split2231(p.params[single].value)
			d = appendPercentDecoded(d, v)
		} else {
			// Only sections after 0: RFC 2231 says they are not a value.
			any2231 = false
		}
		if any2231 {
			p.dec = d
			t.conv = t.conv[:0]
			ok := false
			if csKnown {
				t.conv, ok = t.appendCharset(t.conv, asciiLower(cs), d)
			}
			if !ok {
				t.conv = appendRaw8(t.conv[:0], d)
			}
			return appendCleanValue(dst, t.conv), true
		}
	}
	for i := range p.params {
		rp := &p.params[i]
		if rp.section < 0 && !rp.ext && string(rp.name) == name {
			t.conv = t.appendHeaderText(t.conv[:0], trimSpace(rp.value))
			return appendCleanValue(dst, t.conv), true
		}
	}
	return dst, false
}

// appendCleanValue appends a decoded parameter value as a single line
// (see appendSingleLine) of at most maxParamValue bytes, without
// surrounding spaces.
func appendCleanValue(dst, b []byte) []byte {
	start := len(dst)
	dst = appendSingleLine(dst, trimSpace(b), maxParamValue)
	seg := dst[start:]
	if t := trimSpace(seg); len(t) != len(seg) {
		n := copy(seg, t)
		dst = dst[:start+n]
	}
	return dst
}

// decodeFilename returns the file name of an entity from its
// Content-Disposition and Content-Type values as Scan does: the
// disposition's filename parameter, else the type's name parameter.
func decodeFilename(t *textBuf, p *paramParser, disposition, contentType []byte) string {
	var buf []byte
	if len(disposition) > 0 {
		p.parse(disposition, false)
		buf, _ = p.value(t, buf, "filename")
	}
	if len(buf) == 0 && len(contentType) > 0 {
		p.parse(contentType, true)
		if p.typeOK {
			buf, _ = p.value(t, buf, "name")
		}
	}
	return string(buf)
}

// section returns the index of the first parameter name*s or name*s*.
func (p *paramParser) section(name string, s int) int {
	for i := range p.params {
		if p.params[i].section == s && string(p.params[i].name) == name {
			return i
		}
	}
	return -1
}

// split2231 splits an RFC 2231 extended value charset'language'text.
// Without the two quotes the whole value is text in no known charset.
func split2231(v []byte) (cs, text []byte, ok bool) {
	i := bytes.IndexByte(v, '\'')
	if i < 0 || i > maxCharsetName {
		return nil, v, false
	}
	j := bytes.IndexByte(v[i+1:], '\'')
	if j < 0 {
		return nil, v, false
	}
	cs = v[:i]
	return cs, v[i+1+j+1:], len(cs) > 0
}

func appendPercentDecoded(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			c = unhex(v[i+1])<<4 | unhex(v[i+2])
			i += 2
		}
		dst = append(dst, c)
	}
	return dst
}
