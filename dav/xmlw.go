package dav

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Namespace prefixes of the multistatus writer. They are letters only:
// DavMail corrupts any digit three bytes after "<" (exchange-webdav.md
// §0.3 #2), so "ns1:"-style prefixes would break it. All are declared once
// on the root element.
const (
	nsDT       = "urn:uuid:c2f41010-65b3-11d1-a29f-00aa00c14882/"
	nsXMLV     = "xml:"
	nsHTTPMail = "urn:schemas:httpmail:"
	nsMAPI     = "http://schemas.microsoft.com/mapi/proptag/"
	nsExchange = "http://schemas.microsoft.com/exchange/"
	nsHeader   = "urn:schemas:mailheader:"
	nsRepl     = "http://schemas.microsoft.com/repl/"
	// nsDavmail holds davmail's own properties (the oversized marker).
	nsDavmail = "urn:schemas:davmail:"
)

var knownPrefixes = []struct{ ns, prefix string }{
	{nsDAV, "a"}, {nsDT, "b"}, {nsXMLV, "c"}, {nsHTTPMail, "d"}, {nsMAPI, "e"},
	{nsExchange, "f"}, {nsHeader, "g"}, {nsDavmail, "h"}, {nsRepl, "i"},
}

func prefixOf(ns string) string {
	for _, k := range knownPrefixes {
		if k.ns == ns {
			return k.prefix
		}
	}
	return ""
}

// multistatusOpen is the root start tag with every known namespace.
var multistatusOpen = func() string {
	s := `<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<a:multistatus`
	for _, k := range knownPrefixes {
		s += ` xmlns:` + k.prefix + `="` + k.ns + `"`
	}
	return s + ">\n"
}()

const multistatusClose = "</a:multistatus>\n"

// appendXMLText escapes character data. Characters that XML 1.0 cannot
// carry (C0 controls other than tab/CR/LF, invalid UTF-8, U+FFFE/FFFF)
// are replaced by U+FFFD so the response always parses: a malformed
// message header must not break a listing.
func appendXMLText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch {
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '&':
				esc = "&amp;"
			case c == '\r':
				esc = "&#13;"
			case c < 0x20 && c != '\t' && c != '\n':
				esc = "\uFFFD"
			default:
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, esc...)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// appendXMLAttr escapes an attribute value (double-quoted).
func appendXMLAttr(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = "&quot;"
		case '<':
			esc = "&lt;"
		case '&':
			esc = "&amp;"
		case '\n':
			esc = "&#10;"
		case '\t':
			esc = "&#9;"
		case '\r':
			esc = "&#13;"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return b
}

func xmlEscapeString(s string) string { return string(appendXMLText(nil, s)) }

// appendHTTPDate writes an RFC 1123 date in GMT (RFC 4918 §15.7
// getlastmodified) without allocating.
func appendHTTPDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	b = append(b, t.Weekday().String()[:3]...)
	b = append(b, ", "...)
	b = append2(b, d)
	b = append(b, ' ')
	b = append(b, mo.String()[:3]...)
	b = append(b, ' ')
	b = append4(b, y)
	b = append(b, ' ')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mm)
	b = append(b, ':')
	b = append2(b, ss)
	return append(b, " GMT"...)
}

// appendDigitsDate writes yyyy-mm-ddThh:mm:ss, the common prefix of the
// ISO forms; hand-written because time.AppendFormat costs a few hundred
// ns, paid per date per entry in a 100,000-entry listing.
func appendDigitsDate(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, int(mo))
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mm)
	b = append(b, ':')
	return append2(b, ss)
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	if n < 0 || n > 9999 {
		n = 0
	}
	return append(b, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// appendISODate writes an RFC 3339 date (creationdate, RFC 4918 §15.1).
func appendISODate(b []byte, t time.Time) []byte {
	return append(appendDigitsDate(b, t.UTC()), 'Z')
}

// appendExchangeDate writes Exchange's dateTime.tz form with
// milliseconds in UTC (exchange-webdav.md §0.3 #4).
func appendExchangeDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = appendDigitsDate(b, t)
	ms := t.Nanosecond() / 1e6
	return append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, '1')
	}
	return append(b, '0')
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// appendETag writes the strong ETag of a message: its ID and size, which
// change whenever the content does (a replaced message gets a new ID).
func appendETag(b []byte, id uint64, size int64) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, id, 36)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 36)
	return append(b, '"')
}

func etagOf(id uint64, size int64) string { return string(appendETag(nil, id, size)) }
