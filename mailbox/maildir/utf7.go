package maildir

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// mutf7 is the modified BASE64 of RFC 3501 §5.1.3: RFC 2045 base64 with
// "," instead of "/" and no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding).Strict()

// encodeMUTF7 encodes a UTF-8 string in IMAP modified UTF-7 (RFC 3501
// §5.1.3): printable US-ASCII stands for itself except "&", which becomes
// "&-"; every run of other characters becomes "&" + modified BASE64 of
// its UTF-16BE form + "-". Invalid UTF-8 is encoded as U+FFFD.
func encodeMUTF7(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		raw := make([]byte, 2*len(run))
		for i, u := range run {
			raw[2*i], raw[2*i+1] = byte(u>>8), byte(u)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteByte(byte(r))
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

// decodeMUTF7 decodes IMAP modified UTF-7. It accepts only the canonical
// encoding, the one encodeMUTF7 produces (no printable ASCII inside a
// shift, no adjacent shifts, no unpaired surrogates, no stray bits), so
// that a directory name and a folder path map one to one: the same folder
// can never be reached through two directory names.
func decodeMUTF7(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", false
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", false
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw) == 0 || len(raw)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for _, r := range utf16.Decode(u) {
			b.WriteRune(r)
		}
	}
	out := b.String()
	if encodeMUTF7(out) != s {
		return "", false
	}
	return out, true
}
