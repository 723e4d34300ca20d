package convert

import (
	"bytes"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// Header text decoding: raw 8-bit bytes, RFC 2047 encoded words and
// charsets, down to valid single-line UTF-8.

// maxCharsetName caps the charset label of an encoded word or RFC 2231
// value; IANA names are at most 40 characters long.
const maxCharsetName = 64

// textBuf holds the scratch space of header text decoding, reused across
// fields and entities of one scan.
type textBuf struct {
	raw            []byte // 8-bit input converted to UTF-8
	word           []byte // decoded bytes of adjacent encoded words in one charset
	conv           []byte // charset conversion output
	rd             bytes.Reader
	unknownCharset bool // some encoded word named a charset we cannot decode
	lastCS         []byte
	lastKnown      bool
}

// asciiLower lowers the ASCII letters of b in place and returns b.
func asciiLower(b []byte) []byte {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func hasHigh(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// cp1252 holds the windows-1252 characters of bytes 0x80-0x9F, which
// ISO 8859-1 leaves to C1 controls. Mail labelled (or guessed) ISO 8859-1
// uses them for quotes and dashes; WHATWG Encoding maps the label
// iso-8859-1 to windows-1252 for the same reason. The five bytes
// windows-1252 leaves undefined stay C1 controls.
var cp1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}

// appendLatin1 appends b read as ISO 8859-1, with windows-1252 in
// 0x80-0x9F (see cp1252).
func appendLatin1(dst, b []byte) []byte {
	for _, c := range b {
		switch {
		case c < 0x80:
			dst = append(dst, c)
		case c < 0xa0:
			dst = utf8.AppendRune(dst, cp1252[c-0x80])
		default:
			dst = append(dst, 0xc0|c>>6, 0x80|c&0x3f)
		}
	}
	return dst
}

// appendRaw8 appends raw header bytes: UTF-8 when they are valid UTF-8
// (RFC 6532), ISO 8859-1 otherwise (legacy mail; see appendLatin1).
func appendRaw8(dst, b []byte) []byte {
	if !hasHigh(b) || utf8.Valid(b) {
		return append(dst, b...)
	}
	return appendLatin1(dst, b)
}

// charsetClass sorts charset labels into the ones decoded here directly
// and the rest, left to go-message's charset package.
type charsetClass uint8

const (
	csOther charsetClass = iota
	csUTF8
	csLatin1
)

func classifyCharset(cs []byte) charsetClass {
	switch string(cs) { // cs is lower case; the switch does not allocate
	case "utf-8", "utf8", "us-ascii", "ascii", "x-utf_8j", "ansi_x3.4-1968", "646", "":
		return csUTF8
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "latin-1":
		return csLatin1
	}
	return csOther
}

// appendCharset appends b converted from charset cs (lower case) to
// UTF-8. ok is false when the charset is unknown; nothing is appended
// then. Invalid input bytes become U+FFFD.
func (t *textBuf) appendCharset(dst []byte, cs, b []byte) (out []byte, ok bool) {
	switch classifyCharset(cs) {
	case csUTF8:
		return appendValidUTF8(dst, b), true
	case csLatin1:
		return appendLatin1(dst, b), true
	}
	t.rd.Reset(b)
	r, err := charset.Reader(string(cs), &t.rd)
	if err != nil {
		return dst, false
	}
	// Charsets map a byte to at most a few runes; bound the output anyway
	// so that a broken decoder cannot grow it without limit.
	limit := len(dst) + 4*len(b) + 16
	var buf [512]byte // conversion chunk; header values are short
	for len(dst) < limit {
		n, err := r.Read(buf[:])
		dst = append(dst, buf[:n]...)
		if err != nil {
			break
		}
		if n == 0 {
			break
		}
	}
	if len(dst) > limit {
		dst = dst[:limit]
	}
	return dst, true
}

// appendValidUTF8 appends b with invalid UTF-8 sequences replaced by
// U+FFFD.
func appendValidUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			dst = append(dst, "\uFFFD"...)
			b = b[1:]
			continue
		}
		dst = append(dst, b[:n]...)
		b = b[n:]
	}
	return dst
}

// parseEncodedWord parses an RFC 2047 encoded word at the start of s
// ("=?charset?enc?text?="). It returns the charset label (lower case,
// RFC 2231 §5 language suffix removed; a slice of s, which it lowers in
// place), the encoding letter, the text and the length of the word.
func parseEncodedWord(s []byte) (cs []byte, enc byte, text []byte, n int, ok bool) {
	if len(s) < len("=?a?q??=") || s[0] != '=' || s[1] != '?' {
		return nil, 0, nil, 0, false
	}
	i := bytes.IndexByte(s[2:], '?')
	if i <= 0 || i > maxCharsetName {
		return nil, 0, nil, 0, false
	}
	cs = s[2 : 2+i]
	for _, c := range cs {
		if c <= ' ' || c >= 0x7f || c == '=' {
			return nil, 0, nil, 0, false
		}
	}
	p := 2 + i + 1
	if p+2 > len(s) || s[p+1] != '?' {
		return nil, 0, nil, 0, false
	}
	enc = s[p] | 0x20
	if enc != 'b' && enc != 'q' {
		return nil, 0, nil, 0, false
	}
	p += 2
	j := bytes.Index(s[p:], []byte("?="))
	if j < 0 {
		// No word can end after this: n = -1 tells the caller to stop
		// looking (else a header of many "=?a?q?" would take quadratic
		// time).
		return nil, 0, nil, -1, false
	}
	text = s[p : p+j]
	if k := bytes.IndexByte(cs, '*'); k >= 0 {
		cs = cs[:k]
	}
	return asciiLower(cs), enc, text, p + j + 2, true
}

// appendWordBytes appends the decoded bytes of an encoded word's text.
// ok is false for undecodable base64.
func appendWordBytes(dst []byte, enc byte, text []byte) ([]byte, bool) {
	if enc == 'q' {
		// RFC 2047 §4.2: "_" is space, "=XX" a byte; be lenient with the rest.
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '_':
				c = ' '
			case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
				c = unhex(text[i+1])<<4 | unhex(text[i+2])
				i += 2
			}
			dst = append(dst, c)
		}
		return dst, true
	}
	// B: tolerate whitespace and missing padding, as mailers in the wild
	// need; reject anything else, so the word is shown as written.
	start := len(dst)
	var d xferDecoder
	d.reset(xferBase64)
	dst = d.decode(dst, text)
	bad := d.bad
	if d.nq > 0 && d.state == b64Run || d.state == b64PadWait {
		// Missing padding: decode the partial quantum as RawStdEncoding would.
		if d.state == b64PadWait || d.nq == 2 {
			dst = append(dst, byte(d.quad>>4))
		} else if d.nq == 3 {
			dst = append(dst, byte(d.quad>>10), byte(d.quad>>2))
		} else {
			bad = true
		}
	}
	if bad {
		return dst[:start], false
	}
	return dst, true
}

// appendHeaderText decodes a raw, unfolded header value into dst as
// UTF-8: raw 8-bit bytes are UTF-8 if valid and ISO 8859-1 otherwise,
// RFC 2047 encoded words are decoded (also where RFC 2047 §5 does not
// allow them, as mail readers do), whitespace between adjacent encoded
// words is dropped (RFC 2047 §6.2), and adjacent words in the same
// charset are joined before conversion so that a character split across
// two words survives. A word in an unknown charset is kept as written.
// The result is not yet sanitized (see appendSingleLine).
func (t *textBuf) appendHeaderText(dst, raw []byte) []byte {
	if bytes.Index(raw, []byte("=?")) < 0 {
		return appendRaw8(dst, raw)
	}
	t.raw = appendRaw8(t.raw[:0], raw)
	s := t.raw
	t.word = t.word[:0]
	var wordCS []byte // charset of the bytes in t.word
	flush := func() {
		if len(t.word) > 0 {
			dst, _ = t.appendCharset(dst, wordCS, t.word)
			t.word = t.word[:0]
		}
	}
	prevWord := false
	for len(s) > 0 {
		i := bytes.Index(s, []byte("=?"))
		if i < 0 {
			flush()
			dst = append(dst, s...)
			break
		}
		cs, enc, text, n, ok := parseEncodedWord(s[i:])
		if !ok && n < 0 {
			flush()
			dst = append(dst, s...)
			break
		}
		if !ok {
			flush()
			dst = append(dst, s[:i+2]...)
			s = s[i+2:]
			prevWord = false
			continue
		}
		between := s[:i]
		if !(prevWord && isAllSpace(between)) {
			flush()
			dst = append(dst, between...)
		}
		if len(t.word) > 0 && !bytes.Equal(cs, wordCS) {
			flush()
		}
		if classifyCharset(cs) == csOther && !t.knownCharset(cs) {
			flush()
			t.unknownCharset = true
			dst = append(dst, s[i:i+n]...)
			s = s[i+n:]
			prevWord = false
			continue
		}
		mark := len(t.word)
		var good bool
		t.word, good = appendWordBytes(t.word, enc, text)
		if !good {
			t.word = t.word[:mark]
			flush()
			dst = append(dst, s[i:i+n]...)
			s = s[i+n:]
			prevWord = false
			continue
		}
		wordCS = cs
		s = s[i+n:]
		prevWord = true
	}
	flush()
	return dst
}

// knownCharset reports whether go-message can decode charset cs. The
// last answer is remembered: looking a charset up costs microseconds
// (more when it fails), and a header repeats its charsets.
func (t *textBuf) knownCharset(cs []byte) bool {
	if t.lastCS != nil && bytes.Equal(cs, t.lastCS) {
		return t.lastKnown
	}
	t.rd.Reset(nil)
	_, err := charset.Reader(string(cs), &t.rd)
	t.lastCS = append(t.lastCS[:0], cs...)
	t.lastKnown = err == nil
	return t.lastKnown
}

func isAllSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpaceByte(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpaceByte(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// appendSingleLine appends text b as a single line of at most max bytes
// (cut at a rune boundary): NUL bytes are removed, other control
// characters (C0, DEL, C1) and the Unicode line and paragraph separators
// become spaces, invalid UTF-8 becomes U+FFFD.
func appendSingleLine(dst, b []byte, max int) []byte {
	limit := len(dst) + max
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			b = b[1:]
			if c == 0 {
				continue
			}
			if c < 0x20 || c == 0x7f {
				c = ' '
			}
			if len(dst)+1 > limit {
				break
			}
			dst = append(dst, c)
			continue
		}
		r, n := utf8.DecodeRune(b)
		seq := b[:n]
		switch {
		case r == utf8.RuneError && n <= 1:
			seq = []byte("\uFFFD")
		case r >= 0x80 && r < 0xa0, r == '\u2028', r == '\u2029':
			seq = []byte{' '}
		}
		if len(dst)+len(seq) > limit {
			break
		}
		dst = append(dst, seq...)
		b = b[n:]
	}
	return dst
}

// decodeText appends the display form of a raw header value: surrounding
// whitespace of the raw value trimmed, decoded by appendHeaderText, made
// a single line of at most max bytes by appendSingleLine. Whitespace that
// encoded words carry is kept: it is what the sender wrote.
func (t *textBuf) decodeText(dst, raw []byte, max int) []byte {
	t.conv = t.appendHeaderText(t.conv[:0], trimSpace(raw))
	return appendSingleLine(dst, t.conv, max)
}
