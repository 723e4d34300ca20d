package exsql

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// String prints q in the dialect, on one line, in a canonical form that
// Parse reads back to an equal Query: keywords in upper case, every
// scope in SCOPE('… traversal of "url"') form, nested AND/OR groups in
// parentheses. It is meant for logs and tests (the dav handler never
// sends SQL).
func (q *Query) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if q.AllProps {
		b.WriteString("*")
	}
	for i, c := range q.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		writeQuoted(&b, c.Prop, '"')
		if c.Alias != "" {
			b.WriteString(" AS ")
			if isBareName(c.Alias) {
				b.WriteString(c.Alias)
			} else {
				writeQuoted(&b, c.Alias, '"')
			}
		}
	}
	b.WriteString(" FROM SCOPE(")
	for i, s := range q.Scopes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.String())
	}
	b.WriteString(")")
	if q.Where != nil {
		b.WriteString(" WHERE ")
		b.WriteString(q.Where.String())
	}
	for i, o := range q.OrderBy {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		writeQuoted(&b, o.Prop, '"')
		if o.Desc {
			b.WriteString(" DESC")
		}
	}
	return b.String()
}

// String prints the scope as a quoted scope string:
// 'deep traversal of "/exchange/jdoe/"'.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteByte('\'')
	switch {
	case s.Hierarchical:
		b.WriteString("hierarchical")
	case s.Deep:
		b.WriteString("deep")
	default:
		b.WriteString("shallow")
	}
	b.WriteString(` traversal of "`)
	for i := 0; i < len(s.URL); i++ {
		c := s.URL[i]
		if c == '"' || c == '\'' {
			b.WriteByte(c) // doubled
		}
		b.WriteByte(c)
	}
	b.WriteString(`"'`)
	return b.String()
}

func isBareName(s string) bool {
	if s == "" || !isIdentStart(s[0]) || isReserved(s) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

func writeQuoted(b *strings.Builder, s string, q byte) {
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		if s[i] == q {
			b.WriteByte(q)
		}
		b.WriteByte(s[i])
	}
	b.WriteByte(q)
}

func (e *And) String() string { return joinExprs(e.Exprs, " AND ") }
func (e *Or) String() string  { return joinExprs(e.Exprs, " OR ") }

func joinExprs(es []Expr, sep string) string {
	var b strings.Builder
	for i, c := range es {
		if i > 0 {
			b.WriteString(sep)
		}
		switch c.(type) {
		case *And, *Or:
			b.WriteString("(" + c.String() + ")")
		default:
			b.WriteString(c.String())
		}
	}
	return b.String()
}

// String prints NOT x, with parentheses only around an AND or OR (so a
// reprint nests no deeper than the statement it came from).
func (e *Not) String() string {
	switch e.Expr.(type) {
	case *And, *Or:
		return "NOT (" + e.Expr.String() + ")"
	}
	return "NOT " + e.Expr.String()
}

func (e *IsNull) String() string {
	var b strings.Builder
	writeQuoted(&b, e.Prop, '"')
	if e.Not {
		b.WriteString(" IS NOT NULL")
	} else {
		b.WriteString(" IS NULL")
	}
	return b.String()
}

func (e *Compare) String() string {
	var b strings.Builder
	writeQuoted(&b, e.Prop, '"')
	b.WriteByte(' ')
	b.WriteString(e.Op.String())
	b.WriteByte(' ')
	if e.Prop2 != "" {
		writeQuoted(&b, e.Prop2, '"')
	} else {
		b.WriteString(e.Literal.String())
	}
	return b.String()
}

// String prints the literal so that Parse reads back the same value.
func (l Literal) String() string {
	var text string
	switch l.Kind {
	case LitString:
		switch strings.ToLower(l.Cast) {
		case "bin.base64":
			text = base64.StdEncoding.EncodeToString([]byte(l.Str))
		case "bin.hex":
			text = hex.EncodeToString([]byte(l.Str))
		default:
			text = l.Str
		}
	case LitInt:
		text = strconv.FormatInt(l.Int, 10)
	case LitFloat:
		text = formatFloat(l.Float)
	case LitBool:
		text = strconv.FormatBool(l.Bool)
	case LitTime:
		text = l.Time.UTC().Format(time.RFC3339Nano)
	default:
		return "NULL"
	}
	var b strings.Builder
	if l.Cast != "" {
		b.WriteString("CAST(")
		writeQuoted(&b, text, '"')
		b.WriteString(" AS ")
		writeQuoted(&b, l.Cast, '\'')
		b.WriteString(")")
		return b.String()
	}
	if l.Kind == LitString {
		writeQuoted(&b, text, '\'')
		return b.String()
	}
	return text
}

// formatFloat keeps a '.' or an exponent, so the number reads back as a
// float and not as an integer.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") { // n: NaN/Inf cannot be parsed, but never print them as ints
		s += ".0"
	}
	return s
}
