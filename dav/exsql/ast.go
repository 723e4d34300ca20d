package exsql

import "time"

// Query is a parsed SEARCH statement (Exchange SDK "SELECT Statement").
//
// A Query is immutable after Parse and safe for concurrent use: Match,
// Less and friends only read it.
type Query struct {
	// AllProps is true for SELECT *: the handler returns its default
	// property set. Columns is then empty.
	AllProps bool
	// Columns lists the selected properties in request order. Duplicates
	// are kept (DavMail selects permanenturl twice, §5.1).
	Columns []Column
	// Scopes lists the folders searched; there is at least one. FROM
	// "url" gives one shallow scope.
	Scopes []Scope
	// Where is the condition, nil when the query has no WHERE clause.
	Where Expr
	// OrderBy lists the sort keys, most significant first; empty when
	// the query has no ORDER BY clause.
	OrderBy []Order

	// props: the distinct properties Where and OrderBy read, computed by
	// Parse (see Props).
	props []string
}

// Column is one item of the SELECT list.
type Column struct {
	// Prop is the full property URI, e.g. "DAV:displayname" or
	// "urn:schemas:httpmail:subject".
	Prop string
	// Alias is the name given with AS (DavMail: "... as deleted"), ""
	// when none. The dav handler answers an aliased column as an element
	// in no namespace (§3.1).
	Alias string
}

// Scope is one folder of the FROM clause (Exchange SDK "SCOPE Element").
type Scope struct {
	// URL is the folder, as written: a path ("/exchange/jdoe/Inbox"), a
	// full URL, or "" for the request URI (Evolution's FROM "" and
	// SCOPE('hierarchical traversal of ""'), §5.3). It is not
	// percent-decoded: DavMail writes it unencoded (§11).
	URL string
	// Deep means the folder and every folder below it ("deep traversal
	// of"). False means the folder itself only ("shallow traversal of",
	// or FROM "url" without SCOPE).
	Deep bool
	// Hierarchical is "hierarchical traversal of": the folders below URL
	// and nothing else (Evolution's folder scan, §5.3). Deep is true too,
	// so code that only knows Deep searches enough; the handler must
	// leave out non-folders itself.
	Hierarchical bool
}

// Order is one ORDER BY key.
type Order struct {
	Prop string
	// Desc sorts descending (DavMail: ORDER BY "…/x0e230003" DESC).
	// Ascending puts missing values first, descending last.
	Desc bool
}

// Expr is a WHERE condition: *And, *Or, *Not, *Compare or *IsNull.
type Expr interface {
	// String prints the condition in the dialect; Parse accepts it.
	String() string
	exprNode()
}

// And is true when every one of Exprs is true (n-ary: a AND b AND c is
// one And with three children; parenthesised groups stay nested).
type And struct{ Exprs []Expr }

// Or is true when at least one of Exprs is true.
type Or struct{ Exprs []Expr }

// Not negates Expr. NOT x LIKE 'p' parses as Not{Compare}.
type Not struct{ Expr Expr }

// IsNull is "prop" IS NULL, or IS NOT NULL when Not is set.
type IsNull struct {
	Prop string
	Not  bool
}

// Compare compares a property with a literal ("p" op literal) or, when
// Prop2 is set, with another property ("p1" op "p2", §5.3). A literal
// written first ('x' = "p") is turned around (the operator mirrored).
type Compare struct {
	Prop    string
	Op      Op
	Literal Literal
	// Prop2 is the right-hand property of a property comparison; ""
	// when the right-hand side is Literal.
	Prop2 string

	// m is the precompiled test of the literal, set by Parse. A Compare
	// built by hand has none and is compiled on each evaluation.
	m *matcher
}

func (*And) exprNode()     {}
func (*Or) exprNode()      {}
func (*Not) exprNode()     {}
func (*IsNull) exprNode()  {}
func (*Compare) exprNode() {}

// Op is a comparison operator.
type Op uint8

// Operators. != and <> both parse as OpNe.
const (
	OpEq   Op = iota + 1 // =
	OpNe                 // <> or !=
	OpLt                 // <
	OpGt                 // >
	OpLe                 // <=
	OpGe                 // >=
	OpLike               // LIKE
)

var opNames = [...]string{"?", "=", "<>", "<", ">", "<=", ">=", "LIKE"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// mirror returns the operator for swapped operands (a < b ⇔ b > a).
func (o Op) mirror() Op {
	switch o {
	case OpLt:
		return OpGt
	case OpGt:
		return OpLt
	case OpLe:
		return OpGe
	case OpGe:
		return OpLe
	}
	return o
}

// LitKind is the type of a Literal.
type LitKind uint8

// Literal kinds.
const (
	LitString LitKind = iota + 1 // 'text'
	LitInt                       // 42, -7
	LitFloat                     // 1.5, 2e3
	LitBool                      // true / false (any case)
	LitTime                      // CAST("2024-01-01T00:00:00Z" as 'dateTime.tz')
)

// Literal is a constant in a condition.
type Literal struct {
	Kind  LitKind
	Str   string // LitString; also the decoded bytes of a bin.base64/bin.hex CAST
	Int   int64
	Float float64
	Bool  bool
	Time  time.Time // LitTime, in UTC
	// Cast is the data type of a CAST(... AS 'type') literal as written
	// (e.g. "dateTime.tz", "bin.base64"); "" for a plain literal.
	Cast string
}
