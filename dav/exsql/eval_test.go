package exsql

import (
	"math"
	"testing"
	"time"
	"unicode"
)

type mapRow map[string]Value

func (r mapRow) Value(p string) (Value, bool) {
	v, ok := r[p]
	return v, ok
}

func mustParse(t testing.TB, sql string) *Query {
	t.Helper()
	q, err := Parse(sql, Options{})
	if err != nil {
		t.Fatalf("Parse(%q): %v", sql, err)
	}
	return q
}

func TestEval(t *testing.T) {
	d := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	row := mapRow{
		"n":      IntValue(5),
		"big":    IntValue(9007199254740993), // 2^53+1: not a float64
		"f":      FloatValue(2.5),
		"nan":    FloatValue(math.NaN()),
		"s":      StringValue("Hello World"),
		"s2":     StringValue("HELLO WORLD"),
		"ns":     StringValue("5"),
		"subj":   StringValue("[PATCH] fix 100% _bugs_"),
		"uni":    StringValue("Grüße ÄÖÜ"),
		"kelvin": StringValue("\u212a"), // KELVIN SIGN folds to k
		"name":   StringValue("Archive"),
		"pct":    StringValue("50%"),
		"d":      TimeValue(d),
		"d0":     TimeValue(d.Add(-time.Hour)),
		"ds":     StringValue("2024-01-02T03:04:05.000Z"),
		"t":      BoolValue(true),
		"fl":     BoolValue(false),
		"bi1":    IntValue(1),
		"bs1":    StringValue("1"),
		"bs0":    StringValue("0"),
		"yes":    StringValue("yes"),
		"kw":     StringsValue([]string{"Important", "Work"}),
		"kw2":    StringValue("work"),
		"empty":  StringsValue(nil),
		"zero":   {},
		"a":      IntValue(1),
		"b":      IntValue(2),
		"c":      IntValue(3),
	}
	tests := []struct {
		where string
		want  bool
	}{
		// Each operator on integers, and numeric literals of other forms.
		{`"n" = 5`, true}, {`"n" = 4`, false}, {`"n" <> 5`, false}, {`"n" != 4`, true},
		{`"n" < 6`, true}, {`"n" < 5`, false}, {`"n" > 4`, true}, {`"n" > 5`, false},
		{`"n" <= 5`, true}, {`"n" <= 4`, false}, {`"n" >= 5`, true}, {`"n" >= 6`, false},
		{`"n" = '5'`, true}, {`"n" = ' 5 '`, true}, {`"n" = 5.0`, true}, {`"n" < 5.5`, true}, {`"n" > 4.99`, true},
		{`"n" = 'five'`, false}, {`"n" <> 'five'`, false}, {`"n" LIKE '5'`, false},
		{`"n" = CAST("5" as 'int')`, true}, {`"n" = CAST("5" as 'float')`, true},
		{`"big" > 9007199254740992.0`, true}, {`"big" = 9007199254740992.0`, false}, {`"big" = 9007199254740993`, true},
		{`"big" < 1e300`, true}, {`"big" > -1e300`, true},
		{`"f" > 2`, true}, {`"f" = 2.5`, true}, {`"f" < '3'`, true}, {`"f" = '2.5e0'`, true}, {`"f" >= 3`, false},
		{`"nan" = 1`, false}, {`"nan" <> 1`, false}, {`"nan" IS NULL`, false},
		{`"n" = true`, false}, {`"a" = true`, true},
		// Text, case-insensitive.
		{`"s" = 'hello world'`, true}, {`"s" = 'HELLO WORLD'`, true}, {`"s" <> 'HELLO WORLD'`, false},
		{`"s" = 'Hello'`, false}, {`"s" <> 'Hello'`, true},
		{`"s" < 'hello worle'`, true}, {`"s" > 'HELLO'`, true}, {`"s" >= 'hello world'`, true}, {`"s" < 'HELLO'`, false},
		{`"uni" = 'grüße äöü'`, true}, {`"uni" LIKE '%ÄÖ%'`, true}, {`"uni" LIKE 'GRÜ_E%'`, true},
		{`"kelvin" = 'k'`, true}, {`"kelvin" LIKE 'K'`, true},
		{`"ns" = 5`, true}, {`"ns" > 4.5`, true}, {`"ns" = 'five'`, false},
		// LIKE.
		{`"s" LIKE '%hello%'`, true}, {`"s" LIKE 'hello%'`, true}, {`"s" LIKE '%world'`, true},
		{`"s" LIKE '%WORLD'`, true}, {`"s" LIKE 'h_llo world'`, true}, {`"s" LIKE 'h_llo'`, false},
		{`"s" LIKE '%o w%'`, true}, {`"s" LIKE ''`, false}, {`"s" LIKE '%'`, true}, {`"s" LIKE '%%'`, true},
		{`"s" LIKE '_ello%'`, true}, {`"s" LIKE '%x%'`, false}, {`"s" LIKE 'Hello World'`, true},
		{`"s" LIKE 'Hello Worl'`, false}, {`"s" LIKE 'Hello World_'`, false}, {`"s" LIKE '___________'`, true},
		{`"s" LIKE '__________'`, false}, {`"s" LIKE '%l%l%l%'`, true}, {`"s" LIKE '%l%l%l%l%'`, false},
		{`"s" LIKE 'H%o%d'`, true}, {`"s" LIKE 'H%o%x'`, false}, {`"s" LIKE '%d%d'`, false}, {`"s" LIKE '%ld'`, true},
		{`"s" NOT LIKE '%x%'`, true}, {`"s" NOT LIKE '%o%'`, false},
		{`"subj" LIKE '[PATCH]%'`, true}, {`"subj" LIKE '%100[%]%'`, true}, {`"subj" LIKE '%[_]bugs[_]'`, true},
		{`"subj" LIKE '%100[%] [_]%'`, true}, {`"subj" LIKE '[[]PATCH]%'`, true}, {`"subj" LIKE '%[x]%'`, false},
		// = with a final % is DavMail's startsWith.
		{`"name" = 'Arch%'`, true}, {`"name" = 'arch%'`, true}, {`"name" = 'Archive%'`, true},
		{`"name" = 'Archived%'`, false}, {`"name" = 'Arch'`, false}, {`"name" = '%'`, true},
		{`"name" = 'Arch[%]'`, false}, {`"name" <> 'Arch%'`, true}, {`"name" = 'A%e'`, false},
		{`"pct" = '50[%]'`, true}, {`"pct" = '50%'`, true}, {`"pct" = '50%%'`, true}, {`"name" = '50%%'`, false},
		{`"kw" = 'Imp%'`, true},
		// Dates.
		{`"d" >= '2024/01/01 00:00:00'`, true}, {`"d" < '2024/01/01 00:00:00'`, false},
		{`"d" > '2024/01/02 03:04:05'`, false}, {`"d" >= '2024/01/02 03:04:05'`, true},
		{`"d" = '2024-01-02T03:04:05Z'`, true}, {`"d" = '2024-01-02T03:04:05.000Z'`, true},
		{`"d" > '2024-01-02T03:04:05.001Z'`, false}, {`"d" < '2024-01-02T03:04:05.001Z'`, true},
		{`"d" = '2024-01-02T05:04:05+02:00'`, true}, {`"d" = '2024-01-02 03:04:05'`, true},
		{`"d" >= '2024/01/02'`, true}, {`"d" < '2024-01-03'`, true},
		{`"d" > CAST("2024-01-01T00:00:00Z" as 'dateTime.tz')`, true},
		{`"d" = cast ('2024/01/02 03:04:05' AS "dateTime")`, true},
		{`"d" = 'not a date'`, false}, {`"d" <> 'not a date'`, false}, {`"d" > 5`, false}, {`"d" LIKE '2024%'`, false},
		{`"d" = '2024/02/30 00:00:00'`, false},
		{`"ds" = CAST("2024-01-02T03:04:05Z" as 'dateTime.tz')`, true}, {`"ds" > CAST("2025-01-01T00:00:00Z" as 'dateTime.tz')`, false},
		{`"ds" LIKE '2024-01%'`, true},
		// Booleans.
		{`"t" = true`, true}, {`"t" = TRUE`, true}, {`"t" = True`, true}, {`"t" = 1`, true}, {`"t" = '1'`, true},
		{`"t" = 'true'`, true}, {`"t" = 'TRUE'`, true}, {`"t" = false`, false}, {`"t" = 0`, false},
		{`"t" <> false`, true}, {`"t" > false`, true}, {`"t" = 2`, false}, {`"t" < 2`, true}, {`"t" = 'yes'`, false},
		{`"fl" = false`, true}, {`"fl" = '0'`, true}, {`"fl" = 0`, true}, {`"fl" = true`, false},
		{`"bi1" = true`, true}, {`"bi1" = false`, false},
		{`"bs1" = true`, true}, {`"bs0" = false`, true}, {`"bs0" = true`, false}, {`"yes" = true`, false},
		{`"t" = CAST("true" as 'boolean')`, true},
		// Missing values: comparisons false, NOT true, IS NULL true.
		{`"missing" = 1`, false}, {`"missing" <> 1`, false}, {`NOT ("missing" = 1)`, true},
		{`"missing" LIKE '%'`, false}, {`NOT "missing" LIKE '%'`, true}, {`"missing" NOT LIKE '%'`, true},
		{`"missing" IS NULL`, true}, {`"missing" IS NOT NULL`, false},
		{`"n" IS NULL`, false}, {`"n" IS NOT NULL`, true},
		{`"zero" IS NULL`, true}, {`"zero" = 0`, false},
		{`"empty" IS NULL`, true}, {`"empty" = 'x'`, false}, {`"empty" <> 'x'`, false},
		// Multivalued text.
		{`"kw" = 'important'`, true}, {`"kw" = 'Personal'`, false}, {`"kw" <> 'Work'`, false},
		{`"kw" <> 'Personal'`, true}, {`"kw" LIKE 'Imp%'`, true}, {`"kw" > 'X'`, false}, {`"kw" > 'Personal'`, true},
		{`NOT ("kw" = 'Personal')`, true},
		// NOT.
		{`NOT "n" = 5`, false}, {`NOT NOT "n" = 5`, true}, {`(Not "n" = 4)`, true}, {`NOT ("n" = 5 OR "n" = 4)`, false},
		// Precedence: AND binds tighter than OR; NOT tighter than both.
		{`"a" = 1 OR "b" = 0 AND "c" = 0`, true},
		{`("a" = 1 OR "b" = 0) AND "c" = 0`, false},
		{`"a" = 0 AND "b" = 2 OR "c" = 3`, true},
		{`"a" = 0 AND ("b" = 2 OR "c" = 3)`, false},
		{`NOT "a" = 1 OR "b" = 2`, true},
		{`NOT ("a" = 1 OR "b" = 2)`, false},
		{`"a" = 0 OR NOT "b" = 0 AND "c" = 3`, true},
		{`"a" = 1 AND "b" = 2 AND "c" = 3`, true}, {`"a" = 1 AND "b" = 2 AND "c" = 4`, false},
		{`"a" = 0 OR "b" = 0 OR "c" = 3`, true}, {`"a" = 0 OR "b" = 0 OR "c" = 0`, false},
		{`((("a" = 1)))`, true},
		// Property against property.
		{`"a" < "b"`, true}, {`"a" = "n"`, false}, {`"s" = "s2"`, true}, {`"n" = "ns"`, true},
		{`"ns" = "n"`, true}, {`"d" > "d0"`, true}, {`"d" = "ds"`, true}, {`"a" = "missing"`, false},
		{`"kw" = "kw2"`, true}, {`"kw2" = "kw"`, true}, {`"kw" <> "kw2"`, false}, {`"t" = "bi1"`, true},
		{`"t" = "bs1"`, true}, {`"f" > "a"`, true}, {`"d" = "n"`, false}, {`"s" = "n"`, false},
		// A literal written first.
		{`5 = "n"`, true}, {`4 < "n"`, true}, {`6 < "n"`, false}, {`'hello world' = "s"`, true},
	}
	for _, tc := range tests {
		q := mustParse(t, `SELECT "x" FROM "/f" WHERE `+tc.where)
		if got := q.Match(row); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.where, got, tc.want)
		}
		// The same condition, uncompiled (built by hand), agrees.
		clearCompiled(q)
		if got := EvalExpr(q.Where, row); got != tc.want {
			t.Errorf("%s: uncompiled EvalExpr = %v, want %v", tc.where, got, tc.want)
		}
	}
	if q := mustParse(t, `SELECT "x" FROM "/f"`); !q.Match(mapRow{}) {
		t.Error("a query without WHERE must match every row")
	}
}

// TestMatchAllocs: evaluating a compiled query allocates nothing.
func TestMatchAllocs(t *testing.T) {
	row := mapRow{
		pIsFolder: BoolValue(false), pIsHidden: BoolValue(false), pRead: BoolValue(false),
		pSubject: StringValue("Re: Hello there, Grüße"), pLastMod: TimeValue(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)),
		pMsgIDHeader: StringValue("<m1@example.com>"), pKeywords: StringsValue([]string{"Work"}),
		"ds": StringValue("2024-01-02T03:04:05Z"), "ns": StringValue("x12"),
	}
	for _, where := range []string{
		`("DAV:isfolder" = false And "DAV:ishidden" = false And ("urn:schemas:httpmail:read" = false And "urn:schemas:httpmail:subject" like '%hello%' And "DAV:getlastmodified" >= '2024/01/01 00:00:00' And "` + pMsgIDHeader + `" = '<m1@example.com>'))`,
		`"urn:schemas:httpmail:subject" like '%GRÜSSE%' OR "urn:schemas:httpmail:subject" like '%ÄÖ%'`,
		`"` + pKeywords + `" = 'work' AND "ds" > CAST("2024-01-01T00:00:00Z" as 'dateTime.tz') AND NOT "ns" = 12 AND "ds" <> 'x'`,
		`"` + pKeywords + `" <> "urn:schemas:httpmail:subject" AND "ds" < "DAV:getlastmodified"`,
	} {
		q := mustParse(t, `SELECT "x" FROM "/f" WHERE `+where)
		if n := testing.AllocsPerRun(100, func() { q.Match(row) }); n != 0 {
			t.Errorf("%s: %v allocations per Match", where, n)
		}
	}
}

// TestFoldIdempotent: folding a folded rune changes nothing, so literals
// folded once at Parse time compare with text folded per rune.
func TestFoldIdempotent(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if f := foldRune(r); foldRune(f) != f {
			t.Fatalf("foldRune(%U) = %U, but foldRune(%U) = %U", r, f, f, foldRune(f))
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{
		"2024/01/02 03:04:05", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z", "2024-01-02t03:04:05z",
		"2024-01-02 03:04:05", " 2024-01-02T03:04:05 ", "2024-01-02T04:04:05+01:00", "2024-01-02T02:04:05-0100",
	} {
		got, ok := parseTime(s)
		if !ok || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v", s, got, ok)
		}
	}
	if got, ok := parseTime("2024-01-02T03:04:05.123456789Z"); !ok || got.Nanosecond() != 123456789 {
		t.Errorf("nanoseconds: %v %v", got, ok)
	}
	if got, ok := parseTime("2024-02-29"); !ok || !got.Equal(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date only: %v %v", got, ok)
	}
	for _, s := range []string{
		"", "2024", "2024/01/02 03:04:05 GMT", "2024-13-01", "2023-02-29", "2024-01-32", "2024-01-02T24:00:00Z",
		"2024-01-02T03:60:00Z", "2024-01-02T03:04:60Z", "2024/01-02", "2024-01-02T03:04:05.Z",
		"2024-01-02T03:04:05.1234567890Z", "2024-01-02T03:04:05+25:00", "2024-01-02T03:04:05Zjunk", "24-01-02",
		"2024-01-02T03", "2024-01-02T03:04:05+01:0", "0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
	} {
		if got, ok := parseTime(s); ok {
			t.Errorf("parseTime(%q) accepted: %v", s, got)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "-1": -1, "+2": 2, " 3 ": 3, "9223372036854775807": math.MaxInt64, "-9223372036854775808": math.MinInt64} {
		if n, ok := parseInt(s); !ok || n != want {
			t.Errorf("parseInt(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-", "1.0", "9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1e3", "0x10"} {
		if n, ok := parseInt(s); ok {
			t.Errorf("parseInt(%q) accepted: %d", s, n)
		}
	}
	for s, want := range map[string]float64{"1.5": 1.5, "-.5": -0.5, "2e3": 2000, "1E-2": 0.01, "7": 7, "5.": 5} {
		if f, ok := parseFloat(s); !ok || f != want {
			t.Errorf("parseFloat(%q) = %v, %v", s, f, ok)
		}
	}
	for _, s := range []string{"", ".", "e5", "1e", "1e99999", "NaN", "Inf", "1.5x", "--1", "0x1p3"} {
		if f, ok := parseFloat(s); ok {
			t.Errorf("parseFloat(%q) accepted: %v", s, f)
		}
	}
}
