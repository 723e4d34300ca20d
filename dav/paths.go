package dav

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/davmail/davmail/mailbox"
)

// inboxSegment is how INBOX appears in URLs (Exchange's folder name,
// ../shared/docs/exchange-webdav.md §1.3).
const inboxSegment = "Inbox"

// splitPath decodes an escaped URL path below the prefix into its user and
// segments. Each %XX is decoded exactly once, per segment, after splitting
// on "/", so an encoded slash can never become a separator; "+" is a plus
// sign, never a space (§1.6: never form-decode a path). A segment that
// decodes to ".", "..", or holds NUL, a control character, "/", "\" or
// invalid UTF-8 makes the whole path invalid: no path trick can reach
// another user's mailbox or escape the store.
func splitPath(escaped, prefix string) (user string, segs []string, trailingSlash bool, ok bool) {
	if !strings.HasPrefix(escaped, prefix) {
		// "/exchange" without the slash is the vroot itself.
		if escaped+"/" == prefix {
			return "", nil, true, true
		}
		return "", nil, false, false
	}
	rest := escaped[len(prefix):]
	trailingSlash = strings.HasSuffix(rest, "/") || rest == ""
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return "", nil, trailingSlash, true
	}
	parts := strings.Split(rest, "/")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p == "" { // "a//b": tolerate, as servers commonly do
			continue
		}
		s, good := unescapeSegment(p)
		if !good || !mailbox.ValidSegment(s) {
			return "", nil, false, false
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "", nil, trailingSlash, true
	}
	return out[0], out[1:], trailingSlash, true
}

// unescapeSegment percent-decodes one path segment. It fails on a
// malformed escape and on decoded bytes that are not valid UTF-8
// (overlong encodings included: utf8.ValidString rejects them).
func unescapeSegment(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, utf8.ValidString(s)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		h, l := unhex(s[i+1]), unhex(s[i+2])
		if h < 0 || l < 0 {
			return "", false
		}
		b = append(b, byte(h<<4|l))
		i += 2
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// segmentSafe marks bytes left literal in href segments: RFC 3986
// unreserved plus the sub-delims and ":" "@" that DavMail's encodePath
// also leaves literal (§1.6), minus "&" so hrefs need no XML escaping for
// it. Everything else, including "%", space, "#", "?" and non-ASCII
// bytes, is percent-encoded.
var segmentSafe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.!~*'():@=+$,;" {
		t[c] = true
	}
	return
}()

// appendEscaped appends the percent-encoded form of one segment.
func appendEscaped(dst []byte, seg string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if segmentSafe[c] {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// folderToURL maps a store folder path to its URL segments' decoded
// form: INBOX is shown as Inbox.
func folderURLPath(folder string) string {
	if folder == mailbox.Inbox {
		return inboxSegment
	}
	if strings.HasPrefix(folder, mailbox.Inbox+"/") {
		return inboxSegment + folder[len(mailbox.Inbox):]
	}
	return folder
}

// urlToFolder maps decoded URL segments (below the user) to a store
// folder path: the first segment "Inbox" (any case) is INBOX.
func urlToFolder(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	first := segs[0]
	if strings.EqualFold(first, inboxSegment) {
		first = mailbox.Inbox
	}
	if len(segs) == 1 {
		return first
	}
	return first + "/" + strings.Join(segs[1:], "/")
}

// baseURL returns scheme://host of the request, used to build absolute
// hrefs from the host the client actually used (§1.6).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
