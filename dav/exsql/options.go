package exsql

// Options caps what Parse accepts. The zero Options is ready to use: a
// zero field means the default below, -1 means no limit (style.md §3).
// Exceeding a cap is a *limits.Error (ErrTooLarge or ErrTooComplex, HTTP
// 413), not a *SyntaxError.
type Options struct {
	// MaxBytes caps the SQL text (default 64 KiB). DavMail's largest
	// statements, the folder list and an IMAP SEARCH with a dozen terms
	// (§5.2), are under 2 KiB; 64 KiB leaves room for long OR lists from
	// IMAP clients while bounding what one request makes the parser do.
	MaxBytes int
	// MaxNodes caps the conditions of the WHERE clause: every comparison,
	// IS NULL, AND, OR and NOT counts one (default 1,000). DavMail sends at
	// most ~20 (§5.2 c with TEXT, which expands to five LIKEs); the cap
	// bounds per-row evaluation cost, which is paid for every item of a
	// possibly deep traversal.
	MaxNodes int
	// MaxDepth caps nesting of parentheses and NOT (default 64). DavMail
	// nests at most 4 levels; the parser, the evaluator and String are
	// recursive, so the cap keeps their stack use small.
	MaxDepth int
	// MaxColumns caps the SELECT list (default 256). DavMail selects ~16
	// properties for messages and ~90 for contacts (Field.java); 256 is
	// above any real client and bounds the per-row response size.
	MaxColumns int
	// MaxOrderKeys caps the ORDER BY list (default 16). Clients send one
	// key; every key costs two property lookups per comparison of the sort.
	MaxOrderKeys int
	// MaxScopes caps the folders of FROM SCOPE(...) (default 16). Clients
	// send one; each scope is a folder traversal for the handler.
	MaxScopes int
	// MaxLiteralBytes caps one quoted token, a string literal, a property
	// name or a scope URL, after unescaping (default 4 KiB). Literals are
	// IMAP search strings, header values, item names and dates, all far
	// shorter; a LIKE pattern costs up to its length in work per byte of
	// every value it is matched against.
	MaxLiteralBytes int
}

// Defaults, with the reasons above.
const (
	DefaultMaxBytes        = 64 << 10
	DefaultMaxNodes        = 1000
	DefaultMaxDepth        = 64
	DefaultMaxColumns      = 256
	DefaultMaxOrderKeys    = 16
	DefaultMaxScopes       = 16
	DefaultMaxLiteralBytes = 4 << 10
)

// withDefaults fills zero fields and turns -1 ("no limit") into the
// largest int, so the parser compares against plain numbers.
func (o Options) withDefaults() Options {
	fill := func(v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = int(^uint(0) >> 1)
		}
	}
	fill(&o.MaxBytes, DefaultMaxBytes)
	fill(&o.MaxNodes, DefaultMaxNodes)
	fill(&o.MaxDepth, DefaultMaxDepth)
	fill(&o.MaxColumns, DefaultMaxColumns)
	fill(&o.MaxOrderKeys, DefaultMaxOrderKeys)
	fill(&o.MaxScopes, DefaultMaxScopes)
	fill(&o.MaxLiteralBytes, DefaultMaxLiteralBytes)
	return o
}
