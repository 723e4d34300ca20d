package exsql

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/davmail/davmail/limits"
)

// anyRow answers every property, with a kind chosen from the name, so
// fuzzed statements meet every kind of value (and missing ones).
type anyRow struct{ seed int }

var fuzzTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func (r anyRow) Value(p string) (Value, bool) {
	n := len(p)
	switch (n + r.seed) % 9 {
	case 0:
		return Value{}, false
	case 1:
		return StringValue(p), true
	case 2:
		return IntValue(int64(n - 10)), true
	case 3:
		return FloatValue(float64(n) / 3), true
	case 4:
		return BoolValue(n%2 == 0), true
	case 5:
		return TimeValue(fuzzTime.Add(time.Duration(n) * time.Hour)), true
	case 6:
		return StringsValue([]string{p, "Important"}), true
	case 7:
		return StringValue("2024-01-02T03:04:05Z"), true
	}
	return StringValue("1"), true
}

func addQuerySeeds(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "queries"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			b, err := os.ReadFile(filepath.Join("testdata", "queries", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		"", "SELECT", `SELECT * FROM ""`, `SELECT "a" FROM SCOPE('"x"', 'traversal of "y"')`,
		`SELECT "a" AS "b c" FROM "/f" WHERE NOT NOT ("p" LIKE '%[_]%' OR 5 <= "q") AND "r" IS NOT NULL`,
		`SELECT "a" FROM "/f" WHERE "p" = CAST("2024-01-01T00:00:00.5+01:00" AS 'dateTime.tz') OR "p" = "q"`,
		`SELECT "a" FROM "/f" WHERE "p" = CAST("aGk=" AS 'bin.base64') AND "q" = -.5e3 AND "r" = 'x''y%'`,
		`SELECT "a" FROM SCOPE('deep traversal of "/it's ""q"""') WHERE "p" <> "q" ORDER BY "p" DESC, "q" ASC`,
		`SELECT "a" FROM "/f" WHERE CONTAINS('x')`, `SELECT "a" FROM "/f" WHERE (("p" = 1)`,
		// Over the caps (see FuzzParseRange).
		`SELECT "a" FROM "/f" WHERE "p" = '` + strings.Repeat("x", 4100) + `'`,
		`SELECT "a" FROM "/f" WHERE ` + strings.Repeat("NOT ", 65) + `"p" = 1`,
	} {
		f.Add(s)
	}
}

// FuzzParse: Parse never panics and fails only with its typed errors; a
// parsed statement prints (String) to one that parses to the same AST,
// and both evaluate and order rows the same way.
func FuzzParse(f *testing.F) {
	addQuerySeeds(f)
	rows := []Row{anyRow{0}, anyRow{1}, anyRow{2}, anyRow{3}, anyRow{4}, anyRow{5}, anyRow{6}, anyRow{7}, anyRow{8}}
	f.Fuzz(func(t *testing.T, sql string) {
		q, err := Parse(sql, Options{})
		if err != nil {
			var se *SyntaxError
			var le *limits.Error
			switch {
			case errors.As(err, &se):
				if se.Pos < 0 || se.Pos > len(sql) || se.Msg == "" {
					t.Fatalf("bad SyntaxError %+v for %q", se, sql)
				}
			case errors.As(err, &le):
			default:
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		if len(q.Scopes) == 0 || (len(q.Columns) == 0) != q.AllProps {
			t.Fatalf("incomplete Query %+v", q)
		}
		var match []bool
		for _, r := range rows {
			match = append(match, q.Match(r))
		}
		q2 := checkRoundTrip(t, q)
		for i, r := range rows {
			if q2.Match(r) != match[i] {
				t.Fatalf("row %d: Match differs after String/Parse: %s", i, q)
			}
			if c1, c2 := q.Compare(r, rows[(i+1)%len(rows)]), q2.Compare(r, rows[(i+1)%len(rows)]); c1 != c2 {
				t.Fatalf("Compare differs after String/Parse: %d %d", c1, c2)
			}
		}
		Sort(q, slices.Clone(rows))
	})
}

// FuzzParseRange: ParseRange never panics; what it accepts has at most
// MaxRowRanges well-formed ranges, prints back to the same ranges, and
// selects sorted, disjoint spans inside the result.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"rows=0-9", "rows=20-39", "rows=0-5, 10-15, 20-25, 30-35", "rows=-50", "rows=228-", "rows=0-4,-5",
		"rows=-0", "bytes=0-9", "rows=5-1", "rows=,,", "rows=9223372036854775807-", "rows=1-2-3", "ROWS = 1 - 2",
		// Over the caps, so that the fuzzer does not spend its time
		// minimising the first long input it finds.
		"rows=" + strings.Repeat(" ", 1100) + "1-2", "rows=" + strings.Repeat("1-2,", 17),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		rs, err := ParseRange(h)
		if err != nil {
			var re *RangeError
			if !errors.As(err, &re) {
				t.Fatalf("untyped error %T", err)
			}
			return
		}
		if len(rs) == 0 || len(rs) > MaxRowRanges {
			t.Fatalf("%d ranges from %q", len(rs), h)
		}
		parts := make([]string, len(rs))
		for i, r := range rs {
			if r.First < 0 || r.N < 0 || (r.Kind == RangeSpan && r.Last < r.First) {
				t.Fatalf("bad range %+v from %q", r, h)
			}
			parts[i] = r.String()
		}
		again, err := ParseRange("rows=" + strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, rs) {
			t.Fatalf("%q: reprinted as %v: %v %v", h, parts, again, err)
		}
		for _, total := range []int{0, 1, 7, 100, 1 << 40} {
			sel, err := SelectRows(rs, total)
			if err != nil {
				var nse *RangeNotSatisfiableError
				if !errors.As(err, &nse) || total == 0 {
					t.Fatalf("%q of %d: %v", h, total, err)
				}
				continue
			}
			prev := -2
			for _, sp := range sel.Spans {
				if sp.First > sp.Last || sp.First <= prev+1 || sp.First < 0 || sp.Last >= total {
					t.Fatalf("%q of %d: bad spans %v", h, total, sel.Spans)
				}
				prev = sp.Last
			}
			if !strings.HasPrefix(sel.ContentRange(), "rows ") {
				t.Fatalf("Content-Range %q", sel.ContentRange())
			}
		}
	})
}

// likeRef is a plain dynamic-programming LIKE matcher over folded runes,
// the reference for the compiled one.
func likeRef(pat, s string) bool {
	type tok struct {
		percent bool
		r       rune // anyRune for _
	}
	var toks []tok
	for i := 0; i < len(pat); {
		r, n := utf8.DecodeRuneInString(pat[i:])
		switch {
		case r == '%':
			toks = append(toks, tok{percent: true})
		case r == '_':
			toks = append(toks, tok{r: anyRune})
		case r == '[' && i+2 < len(pat) && pat[i+2] == ']' && strings.IndexByte("%_[", pat[i+1]) >= 0:
			toks = append(toks, tok{r: rune(pat[i+1])})
			n = 3
		default:
			toks = append(toks, tok{r: foldRune(r)})
		}
		i += n
	}
	var text []rune
	for _, r := range s { // range decodes invalid bytes as U+FFFD, one per byte
		text = append(text, foldRune(r))
	}
	// m[j] = toks[:i] matches text[:j]
	m := make([]bool, len(text)+1)
	m[0] = true
	for _, tk := range toks {
		next := make([]bool, len(text)+1)
		for j := 0; j <= len(text); j++ {
			switch {
			case tk.percent:
				next[j] = m[j] || (j > 0 && next[j-1])
			case j > 0:
				next[j] = m[j-1] && (tk.r == anyRune || tk.r == text[j-1])
			}
		}
		m = next
	}
	return m[len(text)]
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// FuzzLike checks the compiled LIKE matcher and the case-insensitive
// comparisons against simple reference implementations.
func FuzzLike(f *testing.F) {
	for _, s := range [][2]string{
		{"%hello%", "Say HELLO there"}, {"h_llo", "hallo"}, {"%a%b%c", "xaybzc"}, {"[%]%", "%x"},
		{"%l%l%l%", "Hello World"}, {"a%a", "aa"}, {"%ab%ab", "abab"}, {"_%_", "\u212a"}, {"%\xff%", "a\xffb"},
		{"%é", "CAFÉ"}, {"[_]", "_"}, {"[[]", "["}, {"[x]", "[x]"}, {"", ""}, {"%", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		if len(pat) > 64 || len(s) > 256 {
			return // the reference is quadratic
		}
		if got, want := compileLike(pat).match(s), likeRef(pat, s); got != want {
			t.Fatalf("LIKE %q on %q: %v, reference %v", pat, s, got, want)
		}
		fp, fs := []rune(foldString(pat)), []rune(foldString(s))
		want := sign(slices.Compare(fs, fp))
		if got := sign(compareFold2(s, pat)); got != want {
			t.Fatalf("compareFold2(%q, %q) = %d, want %d", s, pat, got, want)
		}
		if got := sign(compareFold(s, foldString(pat))); got != want {
			t.Fatalf("compareFold(%q, %q) = %d, want %d", s, pat, got, want)
		}
		if got, want := hasPrefixFold(s, foldString(pat)), len(fs) >= len(fp) && slices.Equal(fs[:len(fp)], fp); got != want {
			t.Fatalf("hasPrefixFold(%q, %q) = %v, want %v", s, pat, got, want)
		}
	})
}
