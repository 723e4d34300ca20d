package exsql

import (
	"strconv"
	"strings"

	"github.com/davmail/davmail/limits"
)

type tokKind uint8

const (
	tEOF    tokKind = iota
	tIdent          // keyword or bare name: SELECT, And, deleted
	tString         // 'text' ('' inside is one ')
	tQuoted         // "property URI" ("" inside is one ")
	tNumber         // 42, -7, 1.5, 2e3
	tLParen
	tRParen
	tComma
	tStar
	tOp // = <> != < > <= >=
)

type token struct {
	kind tokKind
	pos  int    // byte offset of the first byte
	text string // the source text of the token
	val  string // tString/tQuoted: the unescaped content
	op   Op     // tOp
}

// describe names the token for an error message.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of statement"
	case tString:
		return "string " + clip(t.text)
	case tQuoted:
		return "quoted name " + clip(t.text)
	case tNumber:
		return "number " + t.text
	case tIdent:
		return strconv.Quote(clip(t.text))
	}
	return "'" + t.text + "'"
}

// clip shortens s for an error message (40 bytes is enough to recognise a
// token without echoing a whole literal back).
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

type lexer struct {
	src    string
	pos    int
	maxLit int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
}

func (l *lexer) errf(pos int, msg string) error { return &SyntaxError{Pos: pos, Msg: msg} }

// next returns the token at l.pos and moves past it.
func (l *lexer) next() (token, error) {
	l.skipSpace()
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[start]
	switch {
	case c == '\'' || c == '"':
		val, end, err := l.quoted(start, c)
		if err != nil {
			return token{}, err
		}
		l.pos = end
		k := tString
		if c == '"' {
			k = tQuoted
		}
		return token{kind: k, pos: start, text: l.src[start:end], val: val}, nil
	case isDigit(c) || ((c == '-' || c == '+' || c == '.') && l.numberAhead(start)):
		end := l.number(start)
		l.pos = end
		return token{kind: tNumber, pos: start, text: l.src[start:end]}, nil
	case isIdentStart(c):
		end := start + 1
		for end < len(l.src) && isIdentChar(l.src[end]) {
			end++
		}
		l.pos = end
		return token{kind: tIdent, pos: start, text: l.src[start:end]}, nil
	}
	single := func(k tokKind) (token, error) {
		l.pos = start + 1
		return token{kind: k, pos: start, text: l.src[start : start+1]}, nil
	}
	op := func(o Op, n int) (token, error) {
		l.pos = start + n
		return token{kind: tOp, pos: start, text: l.src[start : start+n], op: o}, nil
	}
	next := byte(0)
	if start+1 < len(l.src) {
		next = l.src[start+1]
	}
	switch c {
	case '(':
		return single(tLParen)
	case ')':
		return single(tRParen)
	case ',':
		return single(tComma)
	case '*':
		return single(tStar)
	case '=':
		return op(OpEq, 1)
	case '<':
		switch next {
		case '=':
			return op(OpLe, 2)
		case '>':
			return op(OpNe, 2)
		}
		return op(OpLt, 1)
	case '>':
		if next == '=' {
			return op(OpGe, 2)
		}
		return op(OpGt, 1)
	case '!':
		if next == '=' {
			return op(OpNe, 2)
		}
	}
	return token{}, l.errf(start, "unexpected character "+strconv.QuoteRune(rune(c))+" (expected a keyword, a \"property\", a 'string', a number or an operator)")
}

// quoted reads a literal quoted with q starting at start, where a doubled
// q stands for one (SQL escaping; DavMail and Evolution double ' in
// values, §5.1). It returns the content and the offset after the closing
// quote.
func (l *lexer) quoted(start int, q byte) (string, int, error) {
	var b strings.Builder
	escaped := false
	i := start + 1
	for {
		j := strings.IndexByte(l.src[i:], q)
		if j < 0 {
			what := "string"
			if q == '"' {
				what = "quoted name"
			}
			return "", 0, l.errf(start, "unterminated "+what+": no closing "+string(q))
		}
		j += i
		if j+1 < len(l.src) && l.src[j+1] == q {
			if !escaped {
				b.Grow(j - start)
				escaped = true
			}
			b.WriteString(l.src[i : j+1])
			i = j + 2
			if err := l.checkLit(start, b.Len()); err != nil {
				return "", 0, err
			}
			continue
		}
		if !escaped {
			if err := l.checkLit(start, j-start-1); err != nil {
				return "", 0, err
			}
			return l.src[start+1 : j], j + 1, nil
		}
		b.WriteString(l.src[i:j])
		if err := l.checkLit(start, b.Len()); err != nil {
			return "", 0, err
		}
		return b.String(), j + 1, nil
	}
}

func (l *lexer) checkLit(start, n int) error {
	if n > l.maxLit {
		return limits.TooLarge("max-search-literal-bytes", int64(l.maxLit), int64(n))
	}
	return nil
}

// numberAhead reports whether a sign or '.' at i starts a number.
func (l *lexer) numberAhead(i int) bool {
	if l.src[i] == '-' || l.src[i] == '+' {
		i++
	}
	if i < len(l.src) && l.src[i] == '.' {
		i++
	}
	return i < len(l.src) && isDigit(l.src[i])
}

// number returns the end of the number starting at i:
// [+-] digits [. digits] [(e|E) [+-] digits], or [+-] . digits [...].
func (l *lexer) number(i int) int {
	s := l.src
	if s[i] == '-' || s[i] == '+' {
		i++
	}
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	return i
}
