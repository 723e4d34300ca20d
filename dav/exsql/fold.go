package exsql

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Exchange compares text case-insensitively (the store's default
// collation), so every string comparison here folds case: foldRune maps
// a rune to lower(upper(r)), which also unifies forms such as the Kelvin
// sign and k, or ſ and s. The mapping is idempotent (tested), so a
// literal folded once at Parse time compares against row text folded
// rune by rune, without allocating.

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(unicode.ToUpper(r))
}

// foldAt decodes the rune at s[i] and folds it, with an ASCII fast path.
func foldAt(s string, i int) (rune, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return rune(c), 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return foldRune(r), n
}

// foldString folds s once (at Parse time). Invalid UTF-8 becomes U+FFFD,
// which is also what foldAt yields for it.
func foldString(s string) string { return strings.Map(foldRune, s) }

// compareFold compares s, folded on the fly, with the already folded f.
func compareFold(s, f string) int {
	i, j := 0, 0
	for i < len(s) && j < len(f) {
		a, n := foldAt(s, i)
		b, m := decodeAt(f, j)
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
		i += n
		j += m
	}
	switch {
	case i < len(s):
		return 1
	case j < len(f):
		return -1
	}
	return 0
}

// compareFold2 compares two unfolded strings case-insensitively.
func compareFold2(s, t string) int {
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		a, n := foldAt(s, i)
		b, m := foldAt(t, j)
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
		i += n
		j += m
	}
	switch {
	case i < len(s):
		return 1
	case j < len(t):
		return -1
	}
	return 0
}

// hasPrefixFold reports whether s starts with the folded prefix f.
func hasPrefixFold(s, f string) bool {
	i := 0
	for j := 0; j < len(f); {
		if i >= len(s) {
			return false
		}
		a, n := foldAt(s, i)
		b, m := decodeAt(f, j)
		if a != b {
			return false
		}
		i += n
		j += m
	}
	return true
}

func decodeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// anyRune stands for '_' in a compiled LIKE segment.
const anyRune rune = -1

// likePattern is a LIKE pattern compiled at Parse time: the literal runs
// between '%' wildcards, folded, with '_' as anyRune. Matching is greedy
// leftmost per segment, which is exact for patterns made of '%' and
// fixed-length segments, and costs O(len(text) × len(pattern)) at worst
// with no allocation and no backtracking.
type likePattern struct {
	segs        [][]rune
	anchorStart bool // the pattern does not start with %
	anchorEnd   bool // the pattern does not end with %
	percent     bool // the pattern has at least one %
}

// compileLike compiles a LIKE pattern: % is any run of characters, _ is
// one character, and [%], [_] and [[] stand for the character itself
// (SQL Server's escape form). Any other [ is literal: DavMail does not
// escape its search text (§5.1), so "[PATCH]" must match itself.
func compileLike(pat string) *likePattern {
	p := &likePattern{anchorStart: true, anchorEnd: true}
	var seg []rune
	flush := func() {
		if len(seg) > 0 {
			p.segs = append(p.segs, seg)
			seg = nil
		}
	}
	for i := 0; i < len(pat); {
		r, n := utf8.DecodeRuneInString(pat[i:])
		switch {
		case r == '%':
			p.percent = true
			if i == 0 {
				p.anchorStart = false
			}
			flush()
			p.anchorEnd = true
			i += n
			if i == len(pat) {
				p.anchorEnd = false
			}
			continue
		case r == '_':
			seg = append(seg, anyRune)
		case r == '[' && i+2 < len(pat) && pat[i+2] == ']' && (pat[i+1] == '%' || pat[i+1] == '_' || pat[i+1] == '['):
			seg = append(seg, rune(pat[i+1]))
			n = 3
		default:
			seg = append(seg, foldRune(r))
		}
		i += n
	}
	flush()
	return p
}

// match reports whether s matches the whole pattern.
func (p *likePattern) match(s string) bool {
	segs := p.segs
	if len(segs) == 0 {
		return p.percent || s == ""
	}
	i := 0
	if p.anchorStart {
		end, ok := matchAt(s, 0, segs[0])
		if !ok {
			return false
		}
		if len(segs) == 1 {
			return !p.anchorEnd || end == len(s)
		}
		i = end
		segs = segs[1:]
	}
	var last []rune
	if p.anchorEnd {
		last = segs[len(segs)-1]
		segs = segs[:len(segs)-1]
	}
	for _, seg := range segs {
		end, ok := find(s, i, seg)
		if !ok {
			return false
		}
		i = end
	}
	if last == nil {
		return true
	}
	// The last segment must end the text: step back its length in runes,
	// not before i.
	k := len(s)
	for range last {
		if k <= i {
			return false
		}
		if s[k-1] < utf8.RuneSelf {
			k--
		} else {
			_, n := utf8.DecodeLastRuneInString(s[i:k])
			k -= n
		}
	}
	end, ok := matchAt(s, k, last)
	return ok && end == len(s)
}

// matchAt matches seg at s[i:] and returns the end of the match.
func matchAt(s string, i int, seg []rune) (int, bool) {
	for _, u := range seg {
		if i >= len(s) {
			return 0, false
		}
		r, n := foldAt(s, i)
		if u != anyRune && u != r {
			return 0, false
		}
		i += n
	}
	return i, true
}

// find returns the end of the leftmost match of seg in s[i:].
func find(s string, i int, seg []rune) (int, bool) {
	first := seg[0]
	for i < len(s) {
		if first != anyRune && first < utf8.RuneSelf {
			// Skip ASCII bytes that cannot start a match. A non-ASCII
			// byte stops the skip: its rune may fold to first (K → k).
			c := byte(first)
			for i < len(s) {
				b := s[i]
				if b >= utf8.RuneSelf {
					break
				}
				if 'A' <= b && b <= 'Z' {
					b += 'a' - 'A'
				}
				if b == c {
					break
				}
				i++
			}
			if i >= len(s) {
				return 0, false
			}
		}
		if end, ok := matchAt(s, i, seg); ok {
			return end, true
		}
		_, n := decodeAt(s, i)
		i += n
	}
	return 0, false
}
