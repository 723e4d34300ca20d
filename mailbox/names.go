package mailbox

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameSubject caps the subject part of a derived item name, in bytes.
// Exchange truncates long subjects too. 200 bytes leave room for
// UniqueName's "-NNNNNN" and ".EML" under the 255-byte segment limit of
// ValidSegment (and of common file systems), whatever the script.
const maxNameSubject = 200

// NameFromSubject derives an item name from a decoded subject, following
// Exchange's "<Subject>.EML" (../shared/docs/exchange-webdav.md §1.5):
// "/" becomes U+F8FF as Exchange does, control characters and backslashes
// become "_", surrounding space and dots are trimmed, and an empty subject
// gives "No Subject.EML".
func NameFromSubject(subject string) string {
	var b strings.Builder
	for _, r := range subject {
		if b.Len()+utf8.RuneLen(r) > maxNameSubject {
			break
		}
		switch {
		case r == utf8.RuneError:
			r = '_'
		case r == '/':
			r = '\uF8FF'
		case r == '\\' || unicode.IsControl(r):
			r = '_'
		}
		b.WriteRune(r)
	}
	s := strings.Trim(b.String(), " .\t")
	if s == "" {
		s = "No Subject"
	}
	return s + ".EML"
}

// UniqueName returns name, or name with "-2", "-3"… inserted before its
// extension, whichever is the first that taken reports free.
func UniqueName(name string, taken func(string) bool) string {
	if !taken(name) {
		return name
	}
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	for i := 2; ; i++ {
		c := base + "-" + strconv.Itoa(i) + ext
		if !taken(c) {
			return c
		}
	}
}
