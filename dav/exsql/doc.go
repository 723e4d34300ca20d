// Package exsql parses and evaluates the SQL dialect of the Exchange
// 2003 WebDAV SEARCH method, and the Range: rows= header that pages its
// results (../shared/docs/exchange-webdav.md §5, §3.2; Exchange SDK
// "SELECT Statement", "SCOPE Element", "Range Header").
//
// The dav handler parses <d:sql> once with Parse, walks the folders of
// the FROM scopes, keeps the items for which Query.Match is true, orders
// them with Sort, cuts a Range with ParseRange and SelectRows, and writes
// the Columns of each selected row. Parse precompiles every comparison
// (case-folded text, LIKE patterns, dates and numbers read from the
// literals), so Match does no parsing and no allocation per row.
//
// # Grammar
//
// Keywords are case-insensitive (DavMail writes And, Or, Not, like, is
// null, as; Evolution upper case). Whitespace, including newlines and
// tabs, may appear between any tokens. Properties are full URIs in double
// quotes; strings are in single quotes; a doubled quote inside either
// stands for one.
//
//	query     = SELECT ( "*" / column *( "," column ) )
//	            FROM ( SCOPE "(" scopestr *( "," scopestr ) ")" / qurl )
//	            [ WHERE cond ] [ ORDER BY key *( "," key ) ]
//	column    = qprop [ AS ( name / qname ) ]
//	scopestr  = "'" scope *( "," scope ) "'"
//	scope     = [ ( SHALLOW / DEEP / HIERARCHICAL ) ] TRAVERSAL OF qurl / qurl
//	key       = qprop [ ASC / DESC ]
//	cond      = and *( OR and )          ; AND binds tighter than OR
//	and       = not *( AND not )
//	not       = NOT not / "(" cond ")" / pred
//	pred      = qprop IS [ NOT ] NULL
//	          / qprop [ NOT ] LIKE string
//	          / qprop op ( literal / qprop ) ; "p1" = "p2" compares properties
//	          / literal op qprop             ; turned around: 5 < "p" is "p" > 5
//	op        = "=" / "<>" / "!=" / "<" / ">" / "<=" / ">="
//	literal   = string / number / TRUE / FALSE
//	          / CAST "(" ( qtext / string ) AS ( string / qtext ) ")"
//
// FROM "url" is a shallow traversal; a scope without a depth word is deep
// (SDK "Search Scope"); "" means the request URI (Evolution). A scope URL
// may contain a lone single quote, because DavMail does not escape folder
// names. CAST converts at parse time: dateTime.tz/dateTime/date to an
// instant, int/i1…i8/ui1…ui8 to an integer, float/r4/r8/number to a
// float, boolean (1, 0, true, false), string/char/uuid, and bin.base64 /
// bin.hex to the decoded bytes.
//
// Not supported, refused with a *SyntaxError whose Unsupported field is
// set: CONTAINS and FREETEXT (full-text search; no known client sends
// them, §5.3 allows a substring fallback, and a wrong answer is worse than
// a clear refusal), GROUP BY, other CAST types. SELECT * is parsed
// (Query.AllProps); choosing its property set is the handler's job.
//
// # Evaluation
//
//   - Text compares case-insensitively (Exchange's default collation): =,
//     <>, <, > … on case-folded text, rune by rune.
//   - LIKE: % matches any run of characters, _ exactly one; [%], [_] and
//     [[] stand for the character itself. Any other [ is literal (no
//     character classes): DavMail does not escape its search text, so a
//     search for "[PATCH]" must match those characters. LIKE applies to
//     text only; against a number, date or boolean it is false.
//   - = with a string literal ending in % (not written [%]) is a prefix
//     match: "DAV:displayname" = 'abc%' is DavMail's startsWith (§5.1).
//     Only the last % counts, so 'a%%' is the prefix "a%". Other
//     operators take the literal as is.
//   - Dates: a string literal compared with a date value is read as
//     'yyyy/MM/dd HH:mm:ss' in GMT (DavMail), or ISO 8601
//     'yyyy-MM-ddTHH:mm:ss[.fff…]Z' (also with an offset, a space for T,
//     or a date alone); one that does not read as a date is false.
//   - Booleans: a boolean value equals true/1/'1'/'true' or
//     false/0/'0'/'false' (any case); a text value '1'/'0'/'true'/'false'
//     meets a boolean literal the same way. Numbers compare numerically,
//     int against float exactly; a numeric text value or literal is read
//     as a number; a boolean counts as 1/0 against a number.
//   - Multivalued text (KindStrings, e.g. keywords-utf8): a comparison is
//     true when one value satisfies it ('Important' = one of the
//     categories, §4.3); <> is true when no value equals the literal.
//   - Values of kinds that do not compare (a date with a number, text that
//     is not a number with a number) make the comparison false.
//
// # Missing properties: two-valued logic
//
// A comparison or LIKE on a missing property (Row.Value ok=false, a zero
// Value, or an empty list) is false, IS NULL is true, and NOT simply
// negates, so NOT ("p" = 1) is true for an item without p. This follows
// MAPI, which Exchange compiles SEARCH into and which has no null: a
// restriction gives true or false and RES_NOT inverts it (the SDK calls
// a restriction on a missing property "undefined"; that the store
// answers false is [unverified], but it is what clients are written for).
// SQL's three-valued logic would break DavMail: an IMAP NOT key reaches
// the server as (Not cond) (NotCondition, §5.1), and e.g.
// (Not "…/keywords-utf8" = 'Work') must match the many messages that
// have no keywords property at all.
//
// The flip side: the store must supply every property that clients test
// with = false, at least DAV:isfolder and DAV:ishidden on every row, or
// "DAV:isfolder" = false is false and the row is filtered out.
//
// # Order
//
// Query.Compare, Less and Sort order rows by the ORDER BY keys with a
// stable sort; missing values sort first ascending (last descending);
// kinds that do not compare sort as null < numbers < dates < text.
//
// # Range
//
// ParseRange reads rows=a-b, rows=a-, rows=-n and lists of them (at most
// MaxRowRanges). SelectRows clips them to the number of matching rows,
// merges overlaps and gives the Content-Range value
// ("rows 0-9; total=100"); when nothing overlaps a non-empty result it
// returns a *RangeNotSatisfiableError (416).
//
// # Limits
//
// Options caps the statement's size, conditions, nesting, columns, ORDER
// BY keys, scopes and literal length; exceeding a cap returns a
// *limits.Error (413) naming the cap.
package exsql
