package exsql

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/limits"
)

// Property URIs of the spec's queries (§4).
const (
	pPermURL     = "http://schemas.microsoft.com/exchange/permanenturl"
	pFolderClass = "http://schemas.microsoft.com/exchange/outlookfolderclass"
	pKeywords    = "http://schemas.microsoft.com/exchange/keywords-utf8"
	pImapUID     = "http://schemas.microsoft.com/mapi/proptag/x0e230003"
	pSize        = "http://schemas.microsoft.com/mapi/proptag/x0e080003"
	pDate        = "http://schemas.microsoft.com/mapi/proptag/x0e060040"
	pMsgFlags    = "http://schemas.microsoft.com/mapi/proptag/x0e070003"
	pFlagStatus  = "http://schemas.microsoft.com/mapi/proptag/x10900003"
	pURLComp     = "http://schemas.microsoft.com/mapi/proptag/x10f3001f"
	pBody        = "http://schemas.microsoft.com/mapi/proptag/x1000001f"
	pDeleted     = "http://schemas.microsoft.com/mapi/id/{00062008-0000-0000-c000-000000000046}/0x8570"
	pMsgIDHeader = "http://schemas.microsoft.com/mapi/string/{00020386-0000-0000-c000-000000000046}/message-id"
	pRead        = "urn:schemas:httpmail:read"
	pSubject     = "urn:schemas:httpmail:subject"
	pIsFolder    = "DAV:isfolder"
	pIsHidden    = "DAV:ishidden"
	pLastMod     = "DAV:getlastmodified"
)

// AST builders for the expectations.
func cmpL(p string, op Op, l Literal) *Compare { return &Compare{Prop: p, Op: op, Literal: l} }
func eq(p string, l Literal) *Compare          { return cmpL(p, OpEq, l) }
func sLit(s string) Literal                    { return Literal{Kind: LitString, Str: s} }
func iLit(n int64) Literal                     { return Literal{Kind: LitInt, Int: n} }
func bLit(b bool) Literal                      { return Literal{Kind: LitBool, Bool: b} }
func and(es ...Expr) *And                      { return &And{Exprs: es} }
func or(es ...Expr) *Or                        { return &Or{Exprs: es} }
func not(e Expr) *Not                          { return &Not{Expr: e} }
func isNull(p string) *IsNull                  { return &IsNull{Prop: p} }
func cols(props ...string) []Column {
	out := make([]Column, len(props))
	for i, p := range props {
		out[i] = Column{Prop: p}
	}
	return out
}

// notFolderNotHidden is DavMail's prefix of every message search.
func notFolderNotHidden() []Expr {
	return []Expr{eq(pIsFolder, bLit(false)), eq(pIsHidden, bLit(false))}
}

var byUIDDesc = []Order{{Prop: pImapUID, Desc: true}}

// clearCompiled drops what Parse precompiles, so a parsed Query can be
// compared with a hand-built one.
func clearCompiled(q *Query) {
	q.props = nil
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
			e.m = nil
		}
	}
	if q.Where != nil {
		walk(q.Where)
	}
}

func readQuery(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "queries", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// messageListPrefix is 52b's SELECT … FROM, which 52c continues.
func messageListPrefix(t *testing.T) string {
	b := readQuery(t, "52b-message-list.sql")
	i := strings.Index(b, "WHERE")
	if i < 0 {
		t.Fatal("52b has no WHERE")
	}
	return b[:i]
}

func TestParseCorpus(t *testing.T) {
	inbox := []Scope{{URL: "/exchange/jdoe/Inbox"}}
	messageCols := []Column{
		{Prop: pPermURL}, {Prop: pDate}, {Prop: pRead}, {Prop: pImapUID}, {Prop: pKeywords},
		{Prop: pPermURL}, {Prop: "DAV:uid"}, {Prop: pMsgFlags}, {Prop: pDeleted, Alias: "deleted"},
		{Prop: pFlagStatus}, {Prop: pLastMod}, {Prop: "DAV:contentclass"}, {Prop: pURLComp},
		{Prop: "http://schemas.microsoft.com/mapi/proptag/x10810003"},
		{Prop: "http://schemas.microsoft.com/mapi/proptag/x10830003"}, {Prop: pSize},
	}
	jan1 := time.Date(2004, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		file string
		sql  func(t *testing.T) string // when not simply the file
		want *Query
	}{
		{file: "52a-folder-list.sql", want: &Query{
			Columns: cols(pPermURL, "DAV:nosubs", "http://schemas.microsoft.com/repl/contenttag", pFolderClass,
				"DAV:hassubs", pLastMod, "DAV:displayname", "DAV:objectcount", "urn:schemas:httpmail:unreadcount",
				"http://schemas.microsoft.com/mapi/proptag/x67510003"),
			Scopes: []Scope{{URL: "/exchange/jdoe/", Deep: true}},
			Where: and(eq(pIsFolder, bLit(true)), eq(pIsHidden, bLit(false)),
				or(eq(pFolderClass, sLit("IPF.Note")), eq(pFolderClass, sLit("IPF.Note.Microsoft.Conversation")), isNull(pFolderClass))),
			OrderBy: byUIDDesc,
		}},
		{file: "52b-message-list.sql", want: &Query{
			Columns: messageCols, Scopes: inbox, Where: and(notFolderNotHidden()...), OrderBy: byUIDDesc,
		}},
		{file: "52c-imap-search-where.sql", sql: func(t *testing.T) string {
			frag := readQuery(t, "52c-imap-search-where.sql")
			const lead = "… WHERE"
			if !strings.HasPrefix(frag, lead) {
				t.Fatalf("52c does not start with %q", lead)
			}
			return messageListPrefix(t) + "WHERE" + frag[len(lead):] + "\nORDER BY \"" + pImapUID + "\" DESC"
		}, want: &Query{
			Columns: messageCols, Scopes: inbox,
			Where: and(append(notFolderNotHidden(), and(
				eq(pRead, bLit(false)),
				cmpL(pSubject, OpLike, sLit("%hello%")),
				cmpL(pLastMod, OpGe, sLit("2024/01/01 00:00:00")),
				eq(pMsgIDHeader, sLit("<m1@example.com>")),
			))...),
			OrderBy: byUIDDesc,
		}},
		{file: "52d-pop-list.sql", want: &Query{
			Columns: cols("…/exchange/permanenturl", "DAV:uid", "…/proptag/x0e230003", "…/proptag/x0e080003"),
			Scopes:  inbox, Where: and(notFolderNotHidden()...),
			OrderBy: []Order{{Prop: "…/proptag/x0e230003", Desc: true}},
		}},
		{file: "src-purge.sql", want: &Query{
			Columns: cols(pPermURL, "DAV:uid"), Scopes: []Scope{{URL: "/exchange/jdoe/Deleted Items"}},
			Where:   and(append(notFolderNotHidden(), cmpL(pLastMod, OpLt, sLit("2024/01/01 00:00:00")))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-size.sql", want: &Query{
			Columns: cols(pPermURL, "DAV:uid"), Scopes: inbox,
			Where:   and(append(notFolderNotHidden(), and(cmpL(pSize, OpGe, iLit(10000)), cmpL(pSize, OpLt, iLit(50000))))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-text.sql", want: &Query{
			Columns: cols(pPermURL), Scopes: inbox,
			Where: and(append(notFolderNotHidden(), or(
				cmpL(pBody, OpLike, sLit("%budget%")), cmpL(pSubject, OpLike, sLit("%budget%")),
				cmpL("urn:schemas:httpmail:from", OpLike, sLit("%budget%")),
				cmpL("urn:schemas:mailheader:to", OpLike, sLit("%budget%")),
				cmpL("urn:schemas:mailheader:cc", OpLike, sLit("%budget%")),
			))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-deleted.sql", want: &Query{
			Columns: []Column{{Prop: pPermURL}, {Prop: pDeleted, Alias: "deleted"}}, Scopes: inbox,
			Where: and(append(notFolderNotHidden(),
				or(eq(pDeleted, sLit("0")), isNull(pDeleted)),
				not(eq(pFlagStatus, iLit(2))))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-keyword.sql", want: &Query{
			Columns: cols(pPermURL), Scopes: inbox,
			Where:   and(append(notFolderNotHidden(), eq(pKeywords, sLit("Important")))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-item-lookup.sql", want: &Query{
			Columns: cols(pPermURL, "DAV:uid"), Scopes: inbox,
			Where:   and(append(notFolderNotHidden(), eq(pURLComp, sLit("Bob's Hello World.EML")))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-calendar.sql", want: &Query{
			Columns: cols(pPermURL), Scopes: []Scope{{URL: "/exchange/jdoe/Calendar"}},
			Where: and(append(notFolderNotHidden(),
				or(eq("urn:schemas:calendar:instancetype", iLit(1)),
					eq("DAV:contentclass", sLit("urn:content-classes:calendarmessage")),
					eq("http://schemas.microsoft.com/exchange/outlookmessageclass", sLit("IPM.Contact"))),
				or(isNull("http://schemas.microsoft.com/mapi/proptag/x65e8000b"),
					eq("http://schemas.microsoft.com/mapi/proptag/x65e8000b", bLit(false))))...),
			OrderBy: byUIDDesc,
		}},
		{file: "src-owa-settings.sql", want: &Query{
			Columns: cols(pPermURL, "http://schemas.microsoft.com/mapi/proptag/x7c070102"),
			Scopes:  []Scope{{URL: "/users/jdoe@example.com/NON_IPM_SUBTREE", Deep: true}},
			Where:   eq("http://schemas.microsoft.com/mapi/proptag/x001a001f", sLit("IPM.Configuration.OWA.UserOptions")),
			OrderBy: byUIDDesc,
		}},
		{file: "src-startswith.sql", want: &Query{
			Columns: cols(pPermURL, "DAV:displayname"),
			// DavMail does not escape the folder path: a lone ' stays.
			Scopes:  []Scope{{URL: "/exchange/jdoe/Bob's folders", Deep: true}},
			Where:   and(eq(pIsFolder, bLit(true)), eq(pIsHidden, bLit(false)), eq("DAV:displayname", sLit("Arch%"))),
			OrderBy: byUIDDesc,
		}},
		{file: "evo-new-mail.sql", want: &Query{
			Columns: cols("DAV:href", "http://schemas.microsoft.com/repl/repl-uid", pSize),
			Scopes:  []Scope{{URL: ""}},
			Where: and(eq("DAV:iscollection", bLit(false)), eq(pIsHidden, bLit(false)),
				cmpL("DAV:creationdate", OpGt, Literal{Kind: LitTime, Time: jan1, Cast: "dateTime.tz"}),
				not(cmpL(pSubject, OpLike, sLit("%[_]spam%"))),
				cmpL(pMsgFlags, OpNe, iLit(8))),
			OrderBy: []Order{{Prop: "DAV:creationdate"}},
		}},
		{file: "evo-folders.sql", want: &Query{
			Columns: cols("DAV:displayname", pFolderClass, "DAV:hassubs"),
			Scopes:  []Scope{{URL: "", Deep: true, Hierarchical: true}},
			Where:   eq(pIsHidden, bLit(false)),
		}},
		{file: "sdk-search.sql", want: &Query{
			Columns: cols("DAV:contentclass", "DAV:displayname"),
			Scopes:  []Scope{{URL: "/vroot/folder/"}},
			Where:   and(eq(pIsHidden, bLit(false)), eq(pIsFolder, bLit(false))),
		}},
		{file: "sdk-scope-element.sql", want: &Query{
			Columns: cols("urn:httpmail:subject"),
			Scopes:  []Scope{{URL: "http://myserver/public"}},
			Where:   eq("urn:schemas:httpmail:sendername", sLit("Jim")),
		}},
		{file: "sdk-multi-scope.sql", want: &Query{
			Columns: cols("DAV:displayname", "DAV:href"),
			Scopes: []Scope{
				{URL: "http://myserver/public/a", Deep: true},
				{URL: "/public/b", Deep: true, Hierarchical: true},
				{URL: "/public/c", Deep: true}, // no depth word: deep (SDK "Search Scope")
			},
			Where:   or(eq(pIsFolder, bLit(true)), eq("DAV:contentclass", sLit("urn:content-classes:folder"))),
			OrderBy: []Order{{Prop: "DAV:displayname"}, {Prop: "DAV:href", Desc: true}},
		}},
		{file: "sdk-select-star.sql", want: &Query{
			AllProps: true, Scopes: inbox, Where: and(notFolderNotHidden()...),
		}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			sql := readQuery(t, tc.file)
			if tc.sql != nil {
				sql = tc.sql(t)
			}
			q, err := Parse(sql, Options{})
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, sql)
			}
			checkRoundTrip(t, q)
			if !reflect.DeepEqual(stripped(q), tc.want) {
				t.Errorf("AST mismatch\n got: %s\nwant: %s", q, tc.want)
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "queries"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") && !seen[e.Name()] {
			t.Errorf("testdata/queries/%s has no expected AST", e.Name())
		}
	}
	if !strings.Contains(readQuery(t, "evo-new-mail.sql"), "\r\n") {
		t.Error("evo-new-mail.sql lost its CRLF line ends (Evolution sends CRLF)")
	}
}

// stripped returns a deep copy of q's AST without what Parse precompiles,
// for comparing a parsed Query with another one.
func stripped(q *Query) *Query {
	c := *q
	c.props = nil
	c.Columns = slices.Clone(q.Columns)
	c.Scopes = slices.Clone(q.Scopes)
	c.OrderBy = slices.Clone(q.OrderBy)
	var clone func(e Expr) Expr
	clone = func(e Expr) Expr {
		switch e := e.(type) {
		case *And:
			out := &And{Exprs: make([]Expr, len(e.Exprs))}
			for i, x := range e.Exprs {
				out.Exprs[i] = clone(x)
			}
			return out
		case *Or:
			out := &Or{Exprs: make([]Expr, len(e.Exprs))}
			for i, x := range e.Exprs {
				out.Exprs[i] = clone(x)
			}
			return out
		case *Not:
			return &Not{Expr: clone(e.Expr)}
		case *Compare:
			return &Compare{Prop: e.Prop, Op: e.Op, Literal: e.Literal, Prop2: e.Prop2}
		case *IsNull:
			n := *e
			return &n
		}
		return e
	}
	if q.Where != nil {
		c.Where = clone(q.Where)
	}
	return &c
}

// unlimited parses anything the default caps let through, reprinted
// (String is longer than the input: escapes, canonical keywords).
var unlimited = Options{MaxBytes: -1, MaxLiteralBytes: -1, MaxNodes: -1, MaxDepth: -1, MaxColumns: -1, MaxOrderKeys: -1, MaxScopes: -1}

// checkRoundTrip: String prints a statement that parses to the same AST
// and prints identically. It returns the reparsed Query.
func checkRoundTrip(t testing.TB, q *Query) *Query {
	t.Helper()
	s := q.String()
	q2, err := Parse(s, unlimited)
	if err != nil {
		t.Fatalf("String() does not parse: %v\n%s", err, s)
	}
	if s2 := q2.String(); s2 != s {
		t.Fatalf("String() not stable:\n%s\n%s", s, s2)
	}
	if !reflect.DeepEqual(q.props, q2.props) {
		t.Fatalf("Props differ after reprint: %q vs %q", q.props, q2.props)
	}
	if !reflect.DeepEqual(stripped(q), stripped(q2)) {
		t.Fatalf("reprinted statement parses differently:\n%s", s)
	}
	return q2
}

func TestParseKeywordsAndSpacing(t *testing.T) {
	want := "SELECT \"a\" AS x FROM SCOPE('deep traversal of \"/f\"') WHERE (\"p\" = 1 OR \"q\" IS NOT NULL) AND NOT \"r\" LIKE 'x%' ORDER BY \"p\" DESC, \"q\""
	for _, sql := range []string{
		`SELECT "a" AS x FROM SCOPE('DEEP TRAVERSAL OF "/f"') WHERE ("p" = 1 OR "q" IS NOT NULL) AND NOT "r" LIKE 'x%' ORDER BY "p" DESC, "q" ASC`,
		"select\t\"a\"\nas\tx\r\nfrom\nscope(\n'deep\ttraversal\nof   \"/f\"'\n)\nwhere(\"p\"=1 or\"q\"is not null)and not\"r\"like'x%'order by\"p\"desc,\"q\"",
		`SeLeCt "a" aS x FrOm ScOpE('Deep Traversal Of "/f"') wHeRe ("p" = 1 Or "q" Is NoT NuLl) AnD "r" nOt LiKe 'x%' OrDeR bY "p" DeSc, "q"`,
		`SELECT "a" AS "x" FROM SCOPE( 'deep traversal of "/f"' ) WHERE (1 = "p" OR "q" IS NOT NULL) AND (NOT ("r" LIKE 'x%')) ORDER BY "p" DESC,"q"`,
	} {
		q, err := Parse(sql, Options{})
		if err != nil {
			t.Errorf("Parse(%q): %v", sql, err)
			continue
		}
		if got := q.String(); got != want {
			t.Errorf("Parse(%q)\n got %s\nwant %s", sql, got, want)
		}
	}
}

func TestParseLiterals(t *testing.T) {
	d := time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)
	tests := []struct {
		lit  string
		want Literal
	}{
		{`'it''s'`, sLit("it's")},
		{`''`, sLit("")},
		{`'a"b'`, sLit(`a"b`)},
		{"'line\nbreak\ttab'", sLit("line\nbreak\ttab")},
		{`42`, iLit(42)},
		{`-7`, iLit(-7)},
		{`+7`, iLit(7)},
		{`9223372036854775807`, iLit(9223372036854775807)},
		{`-9223372036854775808`, iLit(-9223372036854775808)},
		{`1.5`, Literal{Kind: LitFloat, Float: 1.5}},
		{`-.25`, Literal{Kind: LitFloat, Float: -0.25}},
		{`2e3`, Literal{Kind: LitFloat, Float: 2000}},
		{`1E-2`, Literal{Kind: LitFloat, Float: 0.01}},
		{`true`, bLit(true)}, {`TRUE`, bLit(true)}, {`True`, bLit(true)}, {`fAlSe`, bLit(false)},
		{`CAST("2024-01-02T03:04:05.006Z" as 'dateTime.tz')`, Literal{Kind: LitTime, Time: d, Cast: "dateTime.tz"}},
		{`cast ('2024/01/02 03:04:05.006' AS "dateTime")`, Literal{Kind: LitTime, Time: d, Cast: "dateTime"}},
		{`CAST("2024-01-02T05:04:05.006+02:00" as 'dateTime.tz')`, Literal{Kind: LitTime, Time: d, Cast: "dateTime.tz"}},
		{`CAST("12" as 'int')`, Literal{Kind: LitInt, Int: 12, Cast: "int"}},
		{`CAST("1.25" as 'float')`, Literal{Kind: LitFloat, Float: 1.25, Cast: "float"}},
		{`CAST("1" as 'boolean')`, Literal{Kind: LitBool, Bool: true, Cast: "boolean"}},
		{`CAST("aGk=" as 'bin.base64')`, Literal{Kind: LitString, Str: "hi", Cast: "bin.base64"}},
		{`CAST("6869" as 'bin.hex')`, Literal{Kind: LitString, Str: "hi", Cast: "bin.hex"}},
		{`CAST("x""y" as 'string')`, Literal{Kind: LitString, Str: `x"y`, Cast: "string"}},
	}
	for _, tc := range tests {
		sql := `SELECT "a" FROM "/f" WHERE "p" = ` + tc.lit
		q, err := Parse(sql, Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.lit, err)
			continue
		}
		checkRoundTrip(t, q)
		c, ok := q.Where.(*Compare)
		if !ok {
			t.Errorf("%s: Where is %T", tc.lit, q.Where)
			continue
		}
		if !reflect.DeepEqual(c.Literal, tc.want) {
			t.Errorf("%s: literal %#v, want %#v", tc.lit, c.Literal, tc.want)
		}
	}
}

func TestParseMirrorsLiteralFirst(t *testing.T) {
	for sql, want := range map[string]string{
		`5 < "p"`:                 `"p" > 5`,
		`5 >= "p"`:                `"p" <= 5`,
		`'a' = "p"`:               `"p" = 'a'`,
		`true <> "p"`:             `"p" <> true`,
		`"p" != "q"`:              `"p" <> "q"`,
		`"p" <= "q"`:              `"p" <= "q"`,
		`"p" = CAST("1" AS 'i4')`: `"p" = CAST("1" AS 'i4')`,
	} {
		q, err := Parse(`SELECT "a" FROM "/f" WHERE `+sql, Options{})
		if err != nil {
			t.Errorf("%s: %v", sql, err)
			continue
		}
		if got := q.Where.String(); got != want {
			t.Errorf("%s: got %s, want %s", sql, got, want)
		}
	}
}

func TestParseProps(t *testing.T) {
	q, err := Parse(`SELECT "a" FROM "/f" WHERE "p" = 1 AND ("q" IS NULL OR "p" < "r") ORDER BY "s", "p" DESC`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := q.Props()
	if want := []string{"p", "q", "r", "s"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Props() = %q, want %q", got, want)
	}
	got[0] = "changed"
	if q.Props()[0] != "p" {
		t.Fatal("Props() returned the query's own slice")
	}
}

func TestParseErrors(t *testing.T) {
	const sel = `SELECT "a" FROM "/f" WHERE `
	w := len(sel)
	tests := []struct {
		sql         string
		pos         int
		msg         string
		unsupported bool
	}{
		{"", 0, "expected SELECT, found end of statement", false},
		{"DELETE", 0, `expected SELECT, found "DELETE"`, false},
		{"SELECT", 6, `expected a "property" to select`, false},
		{`SELECT "a" "b" FROM "/f"`, 11, `expected "," or FROM`, false},
		{`SELECT "a", FROM "/f"`, 12, `expected a "property" to select`, false},
		{`SELECT "" FROM "/f"`, 7, "empty property name", false},
		{`SELECT "a" AS FROM "/f"`, 14, "expected an alias name after AS", false},
		{`SELECT "a" FROM`, 15, `expected SCOPE(...) or a "folder URL"`, false},
		{`SELECT "a" FROM 'x'`, 16, `expected SCOPE(...)`, false},
		{`SELECT "a" FROM SCOPE 'x'`, 22, "expected '(' after SCOPE", false},
		{`SELECT "a" FROM SCOPE()`, 22, "expected a scope string", false},
		{`SELECT "a" FROM SCOPE('sideways traversal of "/f"')`, 23, `expected SHALLOW, DEEP or HIERARCHICAL TRAVERSAL OF in the scope, found "sideways"`, false},
		{`SELECT "a" FROM SCOPE('deep of "/f"')`, 28, "expected TRAVERSAL OF after DEEP", false},
		{`SELECT "a" FROM SCOPE('deep traversal "/f"')`, 38, "expected OF after TRAVERSAL", false},
		{`SELECT "a" FROM SCOPE('deep traversal of /f')`, 41, "expected the folder URL in double quotes", false},
		{`SELECT "a" FROM SCOPE('deep traversal of "/f')`, 41, "unterminated folder URL", false},
		{`SELECT "a" FROM SCOPE('deep traversal of "/f"`, 22, "unterminated scope string", false},
		{`SELECT "a" FROM SCOPE('deep traversal of "/f" x')`, 46, "expected ' to close the scope string", false},
		{`SELECT "a" FROM SCOPE('deep traversal of "/f"'`, 46, `expected "," or ')' after the scope string`, false},
		{`SELECT "a" FROM "/f" junk`, 21, "expected WHERE, ORDER BY or the end of the statement", false},
		{sel, w, "expected a condition", false},
		{sel + `"p"`, w + 3, "expected an operator", false},
		{sel + `"p" =`, w + 5, "expected a value", false},
		{sel + `"p" == 1`, w + 5, "expected a value", false},
		{sel + `"p" = 1 "q" = 2`, w + 8, "expected AND, OR, ORDER BY or the end of the statement", false},
		{sel + `("p" = 1`, w + 8, "expected AND, OR or ')'", false},
		{sel + `("p" = 1))`, w + 9, "expected AND, OR, ORDER BY", false},
		{sel + `"p" = 'abc`, w + 6, "unterminated string: no closing '", false},
		{sel + `"p = 1`, w, `unterminated quoted name: no closing "`, false},
		{sel + `"p" LIKE 5`, w + 9, "expected a 'pattern' after LIKE", false},
		{sel + `"p" NOT = 5`, w + 8, "expected LIKE after NOT", false},
		{sel + `"p" IS 5`, w + 7, "expected NULL after IS", false},
		{sel + `"p" = NULL`, w + 6, "use IS NULL", false},
		{sel + `"p" ! 1`, w + 4, "unexpected character '!'", false},
		{sel + `"p" = 1 AND`, w + 11, "expected a condition", false},
		{sel + `NOT`, w + 3, "expected a condition", false},
		{sel + `5 = 6`, w + 4, `expected a "property"`, false},
		{sel + `5 "p"`, w + 2, "expected an operator between the literal", false},
		{sel + `"" = 1`, w, "empty property name", false},
		{sel + `"p" = ""`, w + 6, "empty property name", false},
		{sel + `"p" = 99999999999999999999`, w + 6, "out of range", false},
		{sel + `"p" = 1e999`, w + 6, "out of range", false},
		{sel + `"p" = CAST("x" AS 'dateTime.tz')`, w + 11, "cannot read \"x\" as a date", false},
		{sel + `"p" = CAST("x" AS 'int')`, w + 11, "as an integer", false},
		{sel + `"p" = CAST("!" AS 'bin.base64')`, w + 11, "base64", false},
		{sel + `"p" = CAST("x" 'int')`, w + 15, "expected AS", false},
		{sel + `"p" = CAST("x" AS 'int'`, w + 23, "expected ')' to close CAST", false},
		{sel + `"p" = CAST("x" AS 'geo')`, w + 18, `CAST to "geo"`, true},
		{sel + `CONTAINS('x')`, w, "CONTAINS (full-text search) is not implemented", true},
		{sel + `"p" = 1 AND freetext('x')`, w + 12, "FREETEXT (full-text search) is not implemented", true},
		{sel + `"p" = 1 ORDER "p"`, w + 14, "expected BY", false},
		{sel + `"p" = 1 ORDER BY`, w + 16, `expected a "property" to order by`, false},
		{sel + `"p" = 1 ORDER BY "p" UP`, w + 21, `expected "," or the end of the statement`, false},
		{sel + `"p" = 1 GROUP BY "p"`, w + 8, "GROUP BY", true},
	}
	for _, tc := range tests {
		_, err := Parse(tc.sql, Options{})
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tc.sql, err)
			continue
		}
		if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) || se.Unsupported != tc.unsupported {
			t.Errorf("Parse(%q):\n got pos %d %q unsupported=%v\nwant pos %d %q unsupported=%v", tc.sql, se.Pos, se.Msg, se.Unsupported, tc.pos, tc.msg, tc.unsupported)
		}
		if se.HTTPStatus() != 400 || !strings.Contains(se.Error(), "at byte ") {
			t.Errorf("Parse(%q): status %d, message %q", tc.sql, se.HTTPStatus(), se.Error())
		}
	}
}

func TestParseLimits(t *testing.T) {
	const sel = `SELECT "a" FROM "/f" WHERE `
	repeat := func(s, sep string, n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = s
		}
		return strings.Join(parts, sep)
	}
	tests := []struct {
		name  string
		sql   string
		opts  Options
		limit string
		kind  error
	}{
		{"bytes", sel + `"p" = '` + strings.Repeat("x", 70<<10) + `'`, Options{}, "max-search-sql-bytes", limits.ErrTooLarge},
		{"bytes option", sel + `"p" = 1`, Options{MaxBytes: 10}, "max-search-sql-bytes", limits.ErrTooLarge},
		{"literal", sel + `"p" = '` + strings.Repeat("x", 5000) + `'`, Options{}, "max-search-literal-bytes", limits.ErrTooLarge},
		{"literal with escapes", sel + `"p" = '` + strings.Repeat("''", 4200) + `'`, Options{}, "max-search-literal-bytes", limits.ErrTooLarge},
		{"property name", `SELECT "` + strings.Repeat("x", 5000) + `" FROM "/f"`, Options{}, "max-search-literal-bytes", limits.ErrTooLarge},
		{"scope URL", `SELECT "a" FROM SCOPE('deep traversal of "` + strings.Repeat("x", 5000) + `"')`, Options{}, "max-search-literal-bytes", limits.ErrTooLarge},
		{"conditions", sel + repeat(`"p" = 1`, " OR ", 1001), Options{}, "max-search-conditions", limits.ErrTooComplex},
		{"conditions option", sel + `"p" = 1 AND "q" = 2`, Options{MaxNodes: 2}, "max-search-conditions", limits.ErrTooComplex},
		{"depth parens", sel + strings.Repeat("(", 65) + `"p" = 1` + strings.Repeat(")", 65), Options{}, "max-search-depth", limits.ErrTooComplex},
		{"depth NOT", sel + strings.Repeat("NOT ", 65) + `"p" = 1`, Options{}, "max-search-depth", limits.ErrTooComplex},
		{"columns", `SELECT ` + repeat(`"p"`, ",", 257) + ` FROM "/f"`, Options{}, "max-search-columns", limits.ErrTooComplex},
		{"order keys", sel + `"p" = 1 ORDER BY ` + repeat(`"p"`, ",", 17), Options{}, "max-search-order-keys", limits.ErrTooComplex},
		{"scopes", `SELECT "a" FROM SCOPE(` + repeat(`'"/f"'`, ",", 17) + `)`, Options{}, "max-search-scopes", limits.ErrTooComplex},
		{"scopes in one string", `SELECT "a" FROM SCOPE('` + repeat(`"/f"`, ",", 17) + `')`, Options{}, "max-search-scopes", limits.ErrTooComplex},
	}
	for _, tc := range tests {
		_, err := Parse(tc.sql, tc.opts)
		var le *limits.Error
		if !errors.As(err, &le) || le.Limit != tc.limit || !errors.Is(err, tc.kind) || le.Status != 413 {
			t.Errorf("%s: got %v, want a %v *limits.Error for %s", tc.name, err, tc.kind, tc.limit)
		}
	}
	// At the caps, and with -1 (no limit), the same statements parse.
	ok := []struct {
		name string
		sql  string
		opts Options
	}{
		{"1000 conditions", sel + repeat(`"p" = 1`, " OR ", 999), Options{}},
		{"depth 64", sel + strings.Repeat("(", 64) + `"p" = 1` + strings.Repeat(")", 64), Options{}},
		{"256 columns", `SELECT ` + repeat(`"p"`, ",", 256) + ` FROM "/f"`, Options{}},
		{"unlimited", sel + strings.Repeat("NOT ", 500) + `"p" = '` + strings.Repeat("x", 10000) + `'`, Options{MaxDepth: -1, MaxNodes: -1, MaxLiteralBytes: -1}},
	}
	for _, tc := range ok {
		if _, err := Parse(tc.sql, tc.opts); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.MaxBytes != 64<<10 || o.MaxNodes != 1000 || o.MaxDepth != 64 || o.MaxColumns != 256 {
		t.Fatalf("defaults: %+v", o)
	}
	o = Options{MaxNodes: -1, MaxDepth: 3}.withDefaults()
	if o.MaxNodes <= 1<<30 || o.MaxDepth != 3 {
		t.Fatalf("-1 and explicit: %+v", o)
	}
}

// TestScopeQuoting: URLs with quotes of both kinds survive String/Parse.
func TestScopeQuoting(t *testing.T) {
	for _, url := range []string{"", "/a b/c", `/it's`, `/say "hi"`, `/''`, `/x'`, "/Entwürfe"} {
		q := &Query{Columns: cols("a"), Scopes: []Scope{{URL: url, Deep: true}}}
		q2, err := Parse(q.String(), Options{})
		if err != nil {
			t.Errorf("%q: %v (%s)", url, err, q)
			continue
		}
		if q2.Scopes[0].URL != url {
			t.Errorf("%q: read back %q from %s", url, q2.Scopes[0].URL, q)
		}
	}
}

// TestRoundTripEdgeCases: values whose printed form is easy to get wrong.
func TestRoundTripEdgeCases(t *testing.T) {
	for _, where := range []string{
		`"p" = -0.0`, `"p" = 5.0`, `"p" = 1e21`, `"p" = 1e-7`, `"p" = -9223372036854775808`, `"p" = 0.30000000000000004`,
		`"p" = CAST("0000-01-01T00:00:00Z" AS 'dateTime.tz')`, `"p" = CAST("9999-12-31T23:59:59.999999999Z" AS 'dateTime')`,
		`"p" = CAST("AA==" AS 'BIN.BASE64')`, `"p" = CAST("00ff" AS 'bin.hex')`, `"p" = CAST("1e3" AS 'r8')`,
		`"p" = CAST('x''"y' AS "string")`, `"p" = '''%'`, `"p""q" = 'x'`, `NOT NOT "p" NOT LIKE '%'`,
		`NOT ("p" = 1 AND NOT ("q" = 2 OR "r" = 3))`, `(("p" = 1 OR "q" = 2) AND "r" = 3) OR "s" IS NOT NULL`,
	} {
		q := mustParse(t, `SELECT "a" AS "from", "b" AS traversal, "c" AS "x y" FROM "/f" WHERE `+where)
		checkRoundTrip(t, q)
	}
	if _, err := Parse(`SELECT "a" FROM "/f" WHERE "p" = CAST("0000-01-01T00:30:00+01:00" AS 'dateTime.tz')`, Options{}); err == nil {
		t.Error("a date before year 0 was accepted")
	}
}
