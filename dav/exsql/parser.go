package exsql

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/davmail/davmail/limits"
)

// Parse parses one SEARCH statement (the text of <d:sql>, already
// XML-unescaped by the request parser) and precompiles everything Match
// and Less need. The grammar is in the package documentation.
//
// Errors are a *SyntaxError (answer 400) or, when a cap of opts is
// exceeded, a *limits.Error (answer its Status, 413).
func Parse(sql string, opts Options) (*Query, error) {
	o := opts.withDefaults()
	if len(sql) > o.MaxBytes {
		return nil, limits.TooLarge("max-search-sql-bytes", int64(o.MaxBytes), int64(len(sql)))
	}
	p := &parser{lex: lexer{src: sql, maxLit: o.MaxLiteralBytes}, opts: o}
	if err := p.advance(); err != nil {
		return nil, err
	}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	q.props = collectProps(q)
	return q, nil
}

type parser struct {
	lex   lexer
	tok   token // the lookahead
	opts  Options
	nodes int
	depth int
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errf(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) unsupported(pos int, msg string) error {
	return &SyntaxError{Pos: pos, Msg: msg, Unsupported: true}
}

// expected reports that want was expected at the lookahead token.
func (p *parser) expected(want string) error {
	return p.errf(p.tok.pos, "expected %s, found %s", want, p.tok.describe())
}

// isKeyword reports whether the lookahead is the keyword kw (any case).
func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, kw)
}

// keyword consumes the keyword kw or fails naming it.
func (p *parser) keyword(kw string) error {
	if !p.isKeyword(kw) {
		return p.expected(kw)
	}
	return p.advance()
}

// query = SELECT select-list FROM from [WHERE cond] [ORDER BY order-list]
func (p *parser) query() (*Query, error) {
	if err := p.keyword("SELECT"); err != nil {
		return nil, err
	}
	q := &Query{}
	if err := p.selectList(q); err != nil {
		return nil, err
	}
	if err := p.keyword("FROM"); err != nil {
		if p.tok.kind == tQuoted {
			return nil, p.expected(`"," or FROM`)
		}
		return nil, err
	}
	if err := p.from(q); err != nil {
		return nil, err
	}
	if p.isKeyword("WHERE") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		w, err := p.or()
		if err != nil {
			return nil, err
		}
		q.Where = w
	}
	if p.isKeyword("ORDER") {
		if err := p.orderBy(q); err != nil {
			return nil, err
		}
	}
	if p.isKeyword("GROUP") {
		return nil, p.unsupported(p.tok.pos, "GROUP BY (Exchange's grouped results) is not implemented")
	}
	if p.tok.kind != tEOF {
		switch {
		case q.Where == nil && len(q.OrderBy) == 0:
			return nil, p.expected("WHERE, ORDER BY or the end of the statement")
		case len(q.OrderBy) == 0:
			return nil, p.expected("AND, OR, ORDER BY or the end of the statement")
		}
		return nil, p.expected(`"," or the end of the statement`)
	}
	return q, nil
}

// selectList = "*" / column *( "," column ); column = qprop [AS alias]
func (p *parser) selectList(q *Query) error {
	if p.tok.kind == tStar {
		q.AllProps = true
		return p.advance()
	}
	for {
		if p.tok.kind != tQuoted {
			return p.expected(`a "property" to select (or *)`)
		}
		if p.tok.val == "" {
			return p.errf(p.tok.pos, "empty property name")
		}
		if len(q.Columns) >= p.opts.MaxColumns {
			return limits.TooComplex("max-search-columns", int64(p.opts.MaxColumns), int64(len(q.Columns)+1), "columns")
		}
		col := Column{Prop: p.tok.val}
		if err := p.advance(); err != nil {
			return err
		}
		if p.isKeyword("AS") {
			if err := p.advance(); err != nil {
				return err
			}
			switch {
			case p.tok.kind == tIdent && !isReserved(p.tok.text):
				col.Alias = p.tok.text
			case p.tok.kind == tQuoted && p.tok.val != "":
				col.Alias = p.tok.val
			default:
				return p.expected("an alias name after AS")
			}
			if err := p.advance(); err != nil {
				return err
			}
		}
		q.Columns = append(q.Columns, col)
		if p.tok.kind != tComma {
			return nil
		}
		if err := p.advance(); err != nil {
			return err
		}
	}
}

// from = SCOPE "(" scope-string *( "," scope-string ) ")" / qurl
func (p *parser) from(q *Query) error {
	switch {
	case p.tok.kind == tQuoted:
		// FROM "url": a shallow traversal (SDK "FROM Predicate").
		q.Scopes = []Scope{{URL: p.tok.val}}
		return p.advance()
	case p.isKeyword("SCOPE"):
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind != tLParen {
			return p.expected("'(' after SCOPE")
		}
		// The lexer stands right after '('. Scope strings have their own
		// grammar, so they are scanned from the source here.
		for {
			p.lex.skipSpace()
			if p.lex.pos >= len(p.lex.src) || p.lex.src[p.lex.pos] != '\'' {
				if err := p.advance(); err != nil {
					return err
				}
				return p.expected(`a scope string such as 'deep traversal of "/exchange/user/Inbox"'`)
			}
			if err := p.scopeString(q); err != nil {
				return err
			}
			if err := p.advance(); err != nil {
				return err
			}
			switch p.tok.kind {
			case tRParen:
				return p.advance()
			case tComma:
				continue
			}
			return p.expected(`"," or ')' after the scope string`)
		}
	}
	return p.expected(`SCOPE(...) or a "folder URL"`)
}

// scopeString scans one '...' scope string at p.lex.pos, which holds one
// or more comma-separated scopes (the SDK writes one per string; a comma
// inside is accepted too):
//
//	scope = [ ( SHALLOW / DEEP / HIERARCHICAL ) ] TRAVERSAL OF "url"
//	      / "url"
//
// Without a depth word the traversal is deep (SDK "Search Scope"). Inside
// the URL a doubled quote stands for one quote (of either kind); a lone
// single quote is taken literally, because DavMail does not escape
// folder names (§5.1).
func (p *parser) scopeString(q *Query) error {
	l := &p.lex
	start := l.pos
	l.pos++ // the opening '
	for {
		if len(q.Scopes) >= p.opts.MaxScopes {
			return limits.TooComplex("max-search-scopes", int64(p.opts.MaxScopes), int64(len(q.Scopes)+1), "scopes")
		}
		sc := Scope{Deep: true}
		l.skipSpace()
		word, wpos := l.word()
		switch strings.ToLower(word) {
		case "": // SCOPE('"url"'): deep
		case "traversal": // SCOPE('traversal of "url"'): deep
		case "shallow", "deep", "hierarchical":
			sc.Deep = !strings.EqualFold(word, "shallow")
			sc.Hierarchical = strings.EqualFold(word, "hierarchical")
			l.skipSpace()
			if w, pos := l.word(); !strings.EqualFold(w, "traversal") {
				return p.errf(pos, "expected TRAVERSAL OF after %s in the scope", strings.ToUpper(word))
			}
		default:
			return p.errf(wpos, "expected SHALLOW, DEEP or HIERARCHICAL TRAVERSAL OF in the scope, found %q", clip(word))
		}
		if word != "" {
			l.skipSpace()
			if w, pos := l.word(); !strings.EqualFold(w, "of") {
				return p.errf(pos, "expected OF after TRAVERSAL in the scope")
			}
		}
		l.skipSpace()
		if l.pos >= len(l.src) || l.src[l.pos] != '"' {
			return p.errf(l.pos, `expected the folder URL in double quotes in the scope, e.g. "/exchange/user/Inbox"`)
		}
		url, err := p.scopeURL()
		if err != nil {
			return err
		}
		sc.URL = url
		q.Scopes = append(q.Scopes, sc)
		l.skipSpace()
		if l.pos >= len(l.src) {
			return p.errf(start, "unterminated scope string: no closing '")
		}
		switch l.src[l.pos] {
		case '\'':
			l.pos++
			return nil
		case ',':
			l.pos++
			continue
		}
		return p.errf(l.pos, "expected ' to close the scope string after the folder URL")
	}
}

// word reads letters at l.pos (a keyword inside a scope string).
func (l *lexer) word() (string, int) {
	start := l.pos
	for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
		l.pos++
	}
	return l.src[start:l.pos], start
}

// scopeURL reads the "url" at p.lex.pos inside a scope string.
func (p *parser) scopeURL() (string, error) {
	l := &p.lex
	start := l.pos
	var b strings.Builder
	i := start + 1
	for i < len(l.src) {
		c := l.src[i]
		if (c == '"' || c == '\'') && i+1 < len(l.src) && l.src[i+1] == c {
			b.WriteByte(c)
			i += 2
		} else if c == '"' {
			l.pos = i + 1
			return b.String(), nil
		} else {
			b.WriteByte(c)
			i++
		}
		if b.Len() > l.maxLit {
			return "", limits.TooLarge("max-search-literal-bytes", int64(l.maxLit), int64(b.Len()))
		}
	}
	return "", p.errf(start, `unterminated folder URL in the scope: no closing "`)
}

// orderBy = ORDER BY qprop [ASC / DESC] *( "," qprop [ASC / DESC] )
func (p *parser) orderBy(q *Query) error {
	if err := p.advance(); err != nil { // ORDER
		return err
	}
	if err := p.keyword("BY"); err != nil {
		return err
	}
	for {
		if p.tok.kind != tQuoted || p.tok.val == "" {
			return p.expected(`a "property" to order by`)
		}
		if len(q.OrderBy) >= p.opts.MaxOrderKeys {
			return limits.TooComplex("max-search-order-keys", int64(p.opts.MaxOrderKeys), int64(len(q.OrderBy)+1), "keys")
		}
		o := Order{Prop: p.tok.val}
		if err := p.advance(); err != nil {
			return err
		}
		if p.isKeyword("DESC") || p.isKeyword("ASC") {
			o.Desc = p.isKeyword("DESC")
			if err := p.advance(); err != nil {
				return err
			}
		}
		q.OrderBy = append(q.OrderBy, o)
		if p.tok.kind != tComma {
			return nil
		}
		if err := p.advance(); err != nil {
			return err
		}
	}
}

// node counts one condition against MaxNodes.
func (p *parser) node() error {
	p.nodes++
	if p.nodes > p.opts.MaxNodes {
		return limits.TooComplex("max-search-conditions", int64(p.opts.MaxNodes), int64(p.nodes), "conditions")
	}
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > p.opts.MaxDepth {
		return limits.TooComplex("max-search-depth", int64(p.opts.MaxDepth), int64(p.depth), "levels")
	}
	return nil
}

// or = and *( OR and ). AND binds tighter than OR.
func (p *parser) or() (Expr, error) {
	first, err := p.and()
	if err != nil {
		return nil, err
	}
	if !p.isKeyword("OR") {
		return first, nil
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	exprs := []Expr{first}
	for p.isKeyword("OR") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.and()
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, e)
	}
	return &Or{Exprs: exprs}, nil
}

// and = not *( AND not )
func (p *parser) and() (Expr, error) {
	first, err := p.not()
	if err != nil {
		return nil, err
	}
	if !p.isKeyword("AND") {
		return first, nil
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	exprs := []Expr{first}
	for p.isKeyword("AND") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, e)
	}
	return &And{Exprs: exprs}, nil
}

// not = NOT not / primary
func (p *parser) not() (Expr, error) {
	if !p.isKeyword("NOT") {
		return p.primary()
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	e, err := p.not()
	if err != nil {
		return nil, err
	}
	p.depth--
	return &Not{Expr: e}, nil
}

// primary = "(" or ")" / predicate
func (p *parser) primary() (Expr, error) {
	if p.tok.kind == tLParen {
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.expected("AND, OR or ')'")
		}
		p.depth--
		return e, p.advance()
	}
	return p.predicate()
}

// predicate = qprop IS [NOT] NULL
//
//	/ qprop [NOT] LIKE 'pattern'
//	/ qprop op ( literal / qprop )
//	/ literal op qprop
func (p *parser) predicate() (Expr, error) {
	pos := p.tok.pos
	switch {
	case p.isKeyword("CONTAINS") || p.isKeyword("FREETEXT"):
		return nil, p.unsupported(pos, strings.ToUpper(p.tok.text)+" (full-text search) is not implemented; use LIKE '%text%'")
	case p.tok.kind == tQuoted:
	case p.tok.kind == tString || p.tok.kind == tNumber || p.isKeyword("TRUE") || p.isKeyword("FALSE") || p.isKeyword("CAST"):
		return p.literalFirst()
	default:
		return nil, p.expected(`a condition: a "property", NOT or '('`)
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	prop := p.tok.val
	if prop == "" {
		return nil, p.errf(pos, "empty property name")
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	switch {
	case p.isKeyword("IS"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		n := &IsNull{Prop: prop}
		if p.isKeyword("NOT") {
			n.Not = true
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if !p.isKeyword("NULL") {
			return nil, p.expected("NULL after IS")
		}
		return n, p.advance()
	case p.isKeyword("NOT") || p.isKeyword("LIKE"):
		negate := p.isKeyword("NOT")
		if negate {
			if err := p.advance(); err != nil {
				return nil, err
			}
			if !p.isKeyword("LIKE") {
				return nil, p.expected("LIKE after NOT")
			}
			if err := p.node(); err != nil {
				return nil, err
			}
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tString {
			return nil, p.expected("a 'pattern' after LIKE")
		}
		c := &Compare{Prop: prop, Op: OpLike, Literal: Literal{Kind: LitString, Str: p.tok.val}}
		c.m = compile(c)
		if err := p.advance(); err != nil {
			return nil, err
		}
		if negate {
			return &Not{Expr: c}, nil
		}
		return c, nil
	case p.tok.kind == tOp:
	default:
		return nil, p.expected("an operator (=, <>, !=, <, >, <=, >=, LIKE) or IS [NOT] NULL")
	}
	op := p.tok.op
	if err := p.advance(); err != nil {
		return nil, err
	}
	c := &Compare{Prop: prop, Op: op}
	if p.tok.kind == tQuoted {
		if p.tok.val == "" {
			return nil, p.errf(p.tok.pos, "empty property name")
		}
		c.Prop2 = p.tok.val
		if err := p.advance(); err != nil {
			return nil, err
		}
		return c, nil
	}
	if p.isKeyword("NULL") {
		return nil, p.errf(p.tok.pos, "a comparison with NULL is never true; use IS NULL or IS NOT NULL")
	}
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	c.Literal = lit
	c.m = compile(c)
	return c, nil
}

// literalFirst parses literal op qprop and turns it around.
func (p *parser) literalFirst() (Expr, error) {
	if err := p.node(); err != nil {
		return nil, err
	}
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tOp {
		return nil, p.expected(`an operator between the literal and the "property"`)
	}
	op := p.tok.op
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tQuoted || p.tok.val == "" {
		return nil, p.expected(`a "property" (a condition compares a property)`)
	}
	c := &Compare{Prop: p.tok.val, Op: op.mirror(), Literal: lit}
	c.m = compile(c)
	return c, p.advance()
}

// literal = 'string' / number / TRUE / FALSE / CAST ( text AS type )
func (p *parser) literal() (Literal, error) {
	t := p.tok
	switch {
	case t.kind == tString:
		return Literal{Kind: LitString, Str: t.val}, p.advance()
	case t.kind == tNumber:
		lit, err := parseNumber(t)
		if err != nil {
			return Literal{}, err
		}
		return lit, p.advance()
	case p.isKeyword("TRUE"), p.isKeyword("FALSE"):
		return Literal{Kind: LitBool, Bool: p.isKeyword("TRUE")}, p.advance()
	case p.isKeyword("CAST"):
		return p.cast()
	}
	return Literal{}, p.expected("a value: 'string', number, TRUE, FALSE or CAST(...)")
}

func parseNumber(t token) (Literal, error) {
	s := strings.TrimPrefix(t.text, "+")
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Literal{}, &SyntaxError{Pos: t.pos, Msg: "integer " + clip(t.text) + " is out of range (64-bit)"}
		}
		return Literal{Kind: LitInt, Int: n}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return Literal{}, &SyntaxError{Pos: t.pos, Msg: "number " + clip(t.text) + " is out of range"}
	}
	return Literal{Kind: LitFloat, Float: f}, nil
}

// cast = CAST "(" ( "text" / 'text' ) AS ( 'type' / "type" ) ")"
//
// DavMail writes CAST ("text" as 'dt'), Evolution cast ("…" as
// 'dateTime.tz') (§5.1, §5.3). The text is converted at parse time.
func (p *parser) cast() (Literal, error) {
	if err := p.advance(); err != nil { // CAST
		return Literal{}, err
	}
	if p.tok.kind != tLParen {
		return Literal{}, p.expected("'(' after CAST")
	}
	if err := p.advance(); err != nil {
		return Literal{}, err
	}
	if p.tok.kind != tQuoted && p.tok.kind != tString {
		return Literal{}, p.expected(`the value to cast in quotes: CAST("value" AS 'type')`)
	}
	text, textPos := p.tok.val, p.tok.pos
	if err := p.advance(); err != nil {
		return Literal{}, err
	}
	if err := p.keyword("AS"); err != nil {
		return Literal{}, err
	}
	if p.tok.kind != tQuoted && p.tok.kind != tString {
		return Literal{}, p.expected("the data type in quotes, e.g. 'dateTime.tz'")
	}
	typ, typPos := p.tok.val, p.tok.pos
	if err := p.advance(); err != nil {
		return Literal{}, err
	}
	if p.tok.kind != tRParen {
		return Literal{}, p.expected("')' to close CAST")
	}
	lit, msg, unsupported := castLiteral(text, typ)
	if unsupported {
		return Literal{}, p.unsupported(typPos, msg)
	}
	if msg != "" {
		return Literal{}, p.errf(textPos, "%s", msg)
	}
	return lit, p.advance()
}

// castLiteral converts text to the data type typ (Exchange's b:dt names,
// §3.1). It returns an error message, and whether the type itself is
// unsupported.
func castLiteral(text, typ string) (lit Literal, msg string, unsupported bool) {
	lit.Cast = typ
	switch strings.ToLower(typ) {
	case "datetime.tz", "datetime", "date":
		t, ok := parseTime(text)
		if !ok {
			return lit, "cannot read " + strconv.Quote(clip(text)) + " as a date (want yyyy-MM-ddTHH:mm:ss[.fff]Z or yyyy/MM/dd HH:mm:ss)", false
		}
		lit.Kind, lit.Time = LitTime, t
	case "int", "i1", "i2", "i4", "i8", "ui1", "ui2", "ui4", "ui8":
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return lit, "cannot read " + strconv.Quote(clip(text)) + " as an integer", false
		}
		lit.Kind, lit.Int = LitInt, n
	case "float", "r4", "r8", "number", "fixed.14.4":
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return lit, "cannot read " + strconv.Quote(clip(text)) + " as a number", false
		}
		lit.Kind, lit.Float = LitFloat, f
	case "boolean":
		b, ok := parseBool(text)
		if !ok {
			return lit, "cannot read " + strconv.Quote(clip(text)) + " as a boolean (want 1, 0, true or false)", false
		}
		lit.Kind, lit.Bool = LitBool, b
	case "string", "char", "uuid":
		lit.Kind, lit.Str = LitString, text
	case "bin.base64":
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return lit, "cannot decode " + strconv.Quote(clip(text)) + " as base64", false
		}
		lit.Kind, lit.Str = LitString, string(b)
	case "bin.hex":
		b, err := hex.DecodeString(text)
		if err != nil {
			return lit, "cannot decode " + strconv.Quote(clip(text)) + " as hex", false
		}
		lit.Kind, lit.Str = LitString, string(b)
	default:
		return lit, "CAST to " + strconv.Quote(clip(typ)) + " (known: dateTime.tz, int, float, boolean, string, bin.base64, bin.hex)", true
	}
	return lit, "", false
}

// reserved words cannot be bare aliases (String would print them quoted).
var reserved = []string{
	"AND", "AS", "ASC", "BY", "CAST", "CONTAINS", "DESC", "FALSE", "FREETEXT", "FROM",
	"GROUP", "IS", "LIKE", "NOT", "NULL", "OR", "ORDER", "SCOPE", "SELECT", "TRUE", "WHERE",
}

func isReserved(s string) bool {
	for _, r := range reserved {
		if strings.EqualFold(s, r) {
			return true
		}
	}
	return false
}

// collectProps lists the distinct properties Where and OrderBy read, in
// order of first use.
func collectProps(q *Query) []string {
	var out []string
	seen := map[string]bool{} // bounded by MaxNodes + MaxOrderKeys
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	var walk func(e Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case *And:
			for _, c := range e.Exprs {
				walk(c)
			}
		case *Or:
			for _, c := range e.Exprs {
				walk(c)
			}
		case *Not:
			walk(e.Expr)
		case *Compare:
			add(e.Prop)
			add(e.Prop2)
		case *IsNull:
			add(e.Prop)
		}
	}
	if q.Where != nil {
		walk(q.Where)
	}
	for _, o := range q.OrderBy {
		add(o.Prop)
	}
	return out
}

// Props returns the distinct properties the WHERE and ORDER BY clauses
// read, in order of first use: what the handler has to load for Match
// and Less. The caller may modify the returned slice.
func (q *Query) Props() []string { return append([]string(nil), q.props...) }
