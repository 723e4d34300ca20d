package convert

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Attachment is one part of a message that clients see as an attachment:
// what X-MS-ENUMATTS lists, what the web UI offers for download, and what
// GET <message URL>/<Name> serves.
type Attachment struct {
	// Name is unique within the message and safe as a URL segment and a
	// file name: the part's file name with "/", "\" and control
	// characters replaced, else a name made from its position and type;
	// a repeated name gets "-2", "-3"… before its extension.
	Name string
	// Part is the index of the part in Structure.Parts.
	Part int
	// Inline is set for parts shown inside the body (an image referenced
	// by Content-ID) rather than offered as files.
	Inline bool
}

// maxNameBytes caps an attachment name: file systems take 255 bytes per
// name, and a suffix "-NNN" must still fit.
const maxNameBytes = 200

// Attachments lists the attachments of a message with the given parts, in
// document order. A part counts when it is marked as an attachment
// (Part.IsAttachment), when it has a file name, or when it is a non-text
// part with a Content-ID (an inline image). Multipart containers do not
// count, nor does the message's own body text, nor anything inside an
// attached message (that is part of the attached message's file).
func Attachments(parts []Part) []Attachment {
	var out []Attachment
	taken := map[string]bool{}
	inside := make([]bool, len(parts)) // part is within an attached message
	for i := range parts {
		p := &parts[i]
		if p.Parent >= 0 && p.Parent < i && (inside[p.Parent] || isAttachedMessage(parts, p.Parent)) {
			inside[i] = true
			continue
		}
		if strings.HasPrefix(p.ContentType, "multipart/") && !p.IsAttachment {
			continue
		}
		inline := !p.IsAttachment && p.FileName == "" && p.ContentID != "" && !strings.HasPrefix(p.ContentType, "text/")
		if !p.IsAttachment && p.FileName == "" && !inline {
			continue
		}
		if i == 0 && !p.IsAttachment {
			continue // a message whose whole body is one named part: that is its body
		}
		name := uniqueName(attachmentName(p), taken)
		taken[strings.ToLower(name)] = true
		out = append(out, Attachment{Name: name, Part: i, Inline: inline || (p.Disposition == "inline" && p.ContentID != "")})
	}
	return out
}

func isMessageType(ct string) bool { return ct == "message/rfc822" || ct == "message/global" }

// isAttachedMessage: part i is an attached message, whose children
// belong to its file. (A forwarded message shown inline is not: its
// attachments are listed with the message's own.)
func isAttachedMessage(parts []Part, i int) bool {
	return i > 0 && isMessageType(parts[i].ContentType) && parts[i].IsAttachment
}

// attachmentName is the sanitized file name of p, or one made up.
func attachmentName(p *Part) string {
	name := sanitizeName(p.FileName)
	if name == "" {
		base := "attachment"
		if p.Path != "" {
			base += "-" + strings.ReplaceAll(p.Path, ".", "-")
		}
		name = base + extensionOf(p.ContentType)
	}
	return name
}

// sanitizeName makes a file name safe as a URL segment and a file name
// on every client: no path separators, no control characters, no
// leading or trailing dots or spaces (Windows drops them), not "." or
// "..", at most maxNameBytes bytes (cut at a rune boundary).
func sanitizeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || r == utf8.RuneError:
			return '_'
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	s = strings.Trim(s, " .")
	if len(s) > maxNameBytes {
		cut := maxNameBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// uniqueName adds "-2", "-3"… before the extension of name until no
// attachment taken (lower case: clients may compare names without case)
// has it.
func uniqueName(name string, taken map[string]bool) string {
	if !taken[strings.ToLower(name)] {
		return name
	}
	stem, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		stem, ext = name[:i], name[i:]
	}
	for n := 2; ; n++ {
		c := stem + "-" + strconv.Itoa(n) + ext
		if !taken[strings.ToLower(c)] {
			return c
		}
	}
}

// extensionOf gives a made-up name an extension clients recognize, for
// the types mail carries most (a fixed table: mime.ExtensionsByType
// depends on the host's /etc/mime.types).
func extensionOf(ct string) string {
	switch ct {
	case "message/rfc822", "message/global":
		return ".eml"
	case "text/plain":
		return ".txt"
	case "text/html":
		return ".html"
	case "text/calendar":
		return ".ics"
	case "text/vcard", "text/x-vcard":
		return ".vcf"
	case "image/png":
		return ".png"
	case "image/jpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	case "application/pdf":
		return ".pdf"
	case "application/zip":
		return ".zip"
	}
	return ".bin"
}

// FindAttachment returns the attachment of parts named name (compared
// as Attachments made it, then without case), ok false if none.
func FindAttachment(parts []Part, name string) (Attachment, bool) {
	return Find(Attachments(parts), name)
}

// Find returns the attachment of atts (a list Attachments made) named
// name, compared exactly, then without case.
func Find(atts []Attachment, name string) (Attachment, bool) {
	for _, a := range atts {
		if a.Name == name {
			return a, true
		}
	}
	for _, a := range atts {
		if strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return Attachment{}, false
}
