package convert

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/davmail/davmail/mailbox"
	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// Rendering a message body as safe HTML, for the web UI and the Exchange
// HTML view of a message.
//
// RenderBody picks the part a reader expects to see (ChooseBody), decodes
// its transfer encoding, converts its charset to UTF-8 and writes an HTML
// fragment: sanitized HTML (SanitizeHTML), or plain text escaped inside a
// <pre>. The output is a function of the message bytes and the options
// only, so a caller can render once into a byte counter to learn the
// exact Content-Length and then again for real.

// DefaultMaxRenderBytes caps the decoded body bytes RenderBody reads: 4
// MiB. Real bodies are far smaller (a heavy HTML newsletter is a few
// hundred KiB; text is smaller still), while the whole body is held in
// memory to be converted and sanitized, and the browser must lay out what
// is sent. Past the cap the first 4 MiB are shown with a marker that says
// so.
const DefaultMaxRenderBytes = 4 << 20

// RenderOptions tune RenderBody. The zero value is safe: remote images
// blocked, cid: images dropped, the default cap.
type RenderOptions struct {
	SanitizeOptions
	// MaxBytes caps the decoded body bytes read; 0 means
	// DefaultMaxRenderBytes.
	MaxBytes int64
}

// RenderInfo tells the caller what RenderBody showed.
type RenderInfo struct {
	// Part is the index in Structure.Parts of the body shown, -1 when the
	// message has no text body.
	Part int
	// HTML is true when the body was text/html (sanitized), false when it
	// was text converted to HTML.
	HTML bool
	// Charset is what the body was read as: the declared charset, or
	// "utf-8" / "windows-1252" when it was sniffed.
	Charset string
	// CharsetNote is non-empty when the declared charset is unknown; it
	// says how the text was read instead (it is also in the output).
	CharsetNote string
	// Truncated is true when the body was larger than the cap and only
	// its first MaxBytes were shown (a marker says so in the output).
	Truncated bool
	// BodyBytes is the decoded size of the body part.
	BodyBytes int64
	SanitizeInfo
}

// ChooseBody returns the index in st.Parts of the part to show as the
// body, or -1 when there is no text to show. text/html is preferred to
// text/plain within a multipart/alternative (and a later alternative to
// an earlier one, RFC 2046 §5.1.4); a multipart/related shows its root
// (the "start" parameter, else the first part, RFC 2387 §3.2); other
// multiparts show their first part that has a body. Attachments are never
// chosen, nor is anything inside them, but the message itself always may
// be.
func ChooseBody(st *mailbox.Structure) int {
	if st == nil || len(st.Parts) == 0 {
		return -1
	}
	return pickBody(st, 0)
}

func pickBody(st *mailbox.Structure, i int) int {
	p := &st.Parts[i]
	if i != 0 && p.IsAttachment {
		return -1
	}
	ct := p.ContentType
	switch {
	case ct == "text/html", ct == "text/plain", ct == "text/enriched":
		return i
	case ct == "multipart/alternative":
		best, bestRank := -1, 0
		for _, k := range childParts(st, i) {
			j := pickBody(st, k)
			if j < 0 {
				continue
			}
			rank := 1
			if st.Parts[j].ContentType == "text/html" {
				rank = 2
			}
			if rank >= bestRank {
				best, bestRank = j, rank
			}
		}
		return best
	case ct == "multipart/related":
		kids := childParts(st, i)
		if len(kids) == 0 {
			return -1
		}
		root := kids[0]
		if start := NormalizeContentID(p.Params["start"]); start != "" {
			for _, k := range kids {
				if NormalizeContentID(st.Parts[k].ContentID) == start {
					root = k
					break
				}
			}
		}
		return pickBody(st, root)
	case strings.HasPrefix(ct, "multipart/"), ct == "message/rfc822", ct == "message/global":
		for _, k := range childParts(st, i) {
			if j := pickBody(st, k); j >= 0 {
				return j
			}
		}
	}
	return -1
}

// childParts returns the indexes of the direct children of part i. Parts
// are in document order, so the children of i are among the parts that
// follow it up to the first one that is not deeper.
func childParts(st *mailbox.Structure, i int) []int {
	var kids []int
	d := st.Parts[i].Depth
	for j := i + 1; j < len(st.Parts) && st.Parts[j].Depth > d; j++ {
		if st.Parts[j].Parent == i {
			kids = append(kids, j)
		}
	}
	return kids
}

// RenderBody writes the body of the message (content, described by st)
// as an HTML fragment to w; see the top of this file. It fails only when
// reading content or writing w fails: a malformed message, an unknown
// charset or a missing body give a best-effort rendering with a note.
func RenderBody(w io.Writer, content io.ReaderAt, st *mailbox.Structure, opts RenderOptions) (RenderInfo, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxRenderBytes
	}
	info := RenderInfo{Part: ChooseBody(st)}
	bw := bufio.NewWriter(w)
	if info.Part < 0 {
		io.WriteString(bw, `<p class="dm-note">This message has no text to show.</p>`+"\n")
		return info, bw.Flush()
	}
	p := &st.Parts[info.Part]
	info.HTML = p.ContentType == "text/html"
	info.BodyBytes = p.DecodedSize
	info.Truncated = p.DecodedSize > opts.MaxBytes

	dec := NewDecoder(p.Encoding, io.NewSectionReader(content, p.BodyStart, p.EncodedSize))
	raw, err := io.ReadAll(io.LimitReader(dec, opts.MaxBytes))
	if err != nil {
		return info, fmt.Errorf("convert: reading the body: %w", err)
	}
	text, used, note := ToUTF8(raw, p.Charset)
	info.Charset, info.CharsetNote = used, note
	if note != "" {
		fmt.Fprintf(bw, "<p class=\"dm-note\" role=\"note\">%s</p>\n", html.EscapeString(note))
	}
	if info.HTML {
		si, err := SanitizeHTML(bw, strings.NewReader(text), opts.SanitizeOptions)
		info.SanitizeInfo = si
		if err != nil {
			return info, err
		}
	} else {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		io.WriteString(bw, `<pre class="dm-text" style="white-space:pre-wrap;overflow-wrap:anywhere">`)
		io.WriteString(bw, html.EscapeString(text))
		io.WriteString(bw, "</pre>\n")
	}
	if info.Truncated {
		fmt.Fprintf(bw, "<p class=\"dm-note\" role=\"note\">This body is %s; only its first %s are shown here. Download the message to read all of it.</p>\n",
			formatSize(p.DecodedSize), formatSize(opts.MaxBytes))
	}
	return info, bw.Flush()
}

// ToUTF8 converts body bytes declared as charset label to UTF-8. It
// returns the text, the charset it was read as, and a note for the reader
// when the label is unknown (the text is then read as UTF-8 if it is
// valid UTF-8, else as Windows-1252, which maps every byte). A missing
// label or us-ascii with 8-bit bytes is sniffed the same way, without a
// note: that is the common mislabelling, not an unknown charset.
// Invalid sequences become U+FFFD; the result is always valid UTF-8.
func ToUTF8(b []byte, label string) (text, used, note string) {
	label = strings.ToLower(strings.TrimSpace(label))
	switch label {
	case "", "us-ascii", "ascii", "ansi_x3.4-1968":
		t, u := sniff(b)
		if label != "" && u == "utf-8" {
			u = label
		}
		return t, u, ""
	case "utf-8", "utf8":
		return strings.ToValidUTF8(string(b), "\uFFFD"), "utf-8", ""
	}
	r, err := charset.Reader(label, bytes.NewReader(b))
	if err == nil {
		out, err := io.ReadAll(r)
		if err == nil {
			return strings.ToValidUTF8(string(out), "\uFFFD"), label, ""
		}
	}
	t, u := sniff(b)
	return t, u, fmt.Sprintf("This message declares the character set %q, which is not known here; it is shown as %s, so some characters may be wrong.", clipLabel(label), u)
}

// sniff reads b as UTF-8 when it is valid UTF-8 (ASCII included), else
// as Windows-1252.
func sniff(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), "utf-8"
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil { // cannot happen: every byte maps
		return strings.ToValidUTF8(string(b), "\uFFFD"), "utf-8"
	}
	return string(out), "windows-1252"
}

// clipLabel bounds a charset label quoted back to the reader: labels are
// short tokens (the longest IANA name is 45 characters); 64 bytes of a
// hostile one are enough to recognise it.
func clipLabel(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// formatSize prints n bytes for a reader: "512 bytes", "4 MiB", "5.2 MiB"
// (limits.FormatSize's format; not imported, so that convert stays free
// of the request-handling packages).
func formatSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	u := -1
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[u])
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}
