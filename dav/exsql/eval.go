package exsql

import (
	"math"
	"strings"
)

// Match reports whether row satisfies the WHERE clause (true when there
// is none). It does not apply the FROM scope: the handler chooses the
// rows to offer (the folder, its subtree, or only subfolders for a
// hierarchical traversal).
func (q *Query) Match(row Row) bool {
	return q.Where == nil || EvalExpr(q.Where, row)
}

// EvalExpr evaluates e against row with two-valued logic (see the package
// documentation): a comparison with a missing property is false, NOT
// turns it into true.
func EvalExpr(e Expr, row Row) bool {
	switch e := e.(type) {
	case *And:
		for _, c := range e.Exprs {
			if !EvalExpr(c, row) {
				return false
			}
		}
		return true
	case *Or:
		for _, c := range e.Exprs {
			if EvalExpr(c, row) {
				return true
			}
		}
		return false
	case *Not:
		return !EvalExpr(e.Expr, row)
	case *IsNull:
		v, ok := row.Value(e.Prop)
		return (!ok || v.isNull()) != e.Not
	case *Compare:
		v, ok := row.Value(e.Prop)
		if !ok || v.isNull() {
			return false
		}
		if e.Prop2 != "" {
			w, ok := row.Value(e.Prop2)
			if !ok || w.isNull() {
				return false
			}
			return compareProps(v, e.Op, w)
		}
		m := e.m
		if m == nil {
			m = compile(e)
		}
		return m.test(v)
	}
	return false
}

// holds applies op to the result of a three-way comparison.
func (o Op) holds(c int) bool {
	switch o {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpGt:
		return c > 0
	case OpLe:
		return c <= 0
	case OpGe:
		return c >= 0
	}
	return false
}

// matcher is a Compare's literal prepared for every kind of row value it
// may meet, so that test does no parsing of the literal per row.
type matcher struct {
	op   Op
	kind LitKind
	// fold is the folded text of a string literal; with prefix set (an =
	// whose literal ends in an unescaped %, DavMail's startsWith, §5.1)
	// it is the prefix without the %.
	fold   string
	prefix bool
	like   *likePattern
	// The literal as a number, when it is one (or a numeric string, or a
	// boolean as 1/0).
	num   bool
	isInt bool
	i     int64
	f     float64
	// The literal as a boolean (true/false, 1/0, '1'/'0', 'true'/'false').
	hasBool bool
	b       bool
	// The literal as an instant (a CAST date or a date string).
	hasTime bool
	sec     int64
	nsec    int32
}

func compile(c *Compare) *matcher {
	m := &matcher{op: c.Op, kind: c.Literal.Kind}
	lit := c.Literal
	switch lit.Kind {
	case LitString:
		s := lit.Str
		switch {
		case c.Op == OpLike:
			m.like = compileLike(s)
		case c.Op == OpEq && strings.HasSuffix(s, "[%]"):
			// An escaped final % is a literal %.
			m.fold = foldString(s[:len(s)-3] + "%")
		case c.Op == OpEq && strings.HasSuffix(s, "%"):
			m.prefix = true
			m.fold = foldString(s[:len(s)-1])
		default:
			m.fold = foldString(s)
		}
		if n, ok := parseInt(s); ok {
			m.num, m.isInt, m.i, m.f = true, true, n, float64(n)
		} else if f, ok := parseFloat(s); ok {
			m.num, m.f = true, f
		}
		m.b, m.hasBool = parseBool(s)
		if t, ok := parseTime(s); ok {
			m.hasTime, m.sec, m.nsec = true, t.Unix(), int32(t.Nanosecond())
		}
	case LitInt:
		m.num, m.isInt, m.i, m.f = true, true, lit.Int, float64(lit.Int)
		if lit.Int == 0 || lit.Int == 1 {
			m.hasBool, m.b = true, lit.Int == 1
		}
	case LitFloat:
		m.num, m.f = true, lit.Float
	case LitBool:
		m.hasBool, m.b = true, lit.Bool
		m.num, m.isInt = true, true
		if lit.Bool {
			m.i, m.f = 1, 1
		}
	case LitTime:
		m.hasTime, m.sec, m.nsec = true, lit.Time.Unix(), int32(lit.Time.Nanosecond())
	}
	return m
}

// test compares a non-null row value with the literal.
func (m *matcher) test(v Value) bool {
	switch v.kind {
	case KindString:
		return m.testString(v.s)
	case KindStrings:
		// A multivalued property matches when one of its values does
		// (keywords-utf8 = 'Important', §4.3); <> holds when none equals.
		if m.op == OpNe {
			for _, s := range v.ss {
				if !m.testString(s) {
					return false
				}
			}
			return true
		}
		for _, s := range v.ss {
			if m.testString(s) {
				return true
			}
		}
		return false
	}
	if m.op == OpLike {
		return false // LIKE applies to text only
	}
	switch v.kind {
	case KindInt:
		if m.num {
			return m.op.holds(m.cmpNum(true, v.n, 0))
		}
	case KindFloat:
		if m.num {
			f := math.Float64frombits(uint64(v.n))
			if math.IsNaN(f) {
				return false
			}
			return m.op.holds(m.cmpNum(false, 0, f))
		}
	case KindBool:
		switch {
		case m.hasBool:
			return m.op.holds(cmpBool(v.n != 0, m.b))
		case m.num:
			return m.op.holds(m.cmpNum(true, v.n, 0))
		}
	case KindTime:
		if m.hasTime {
			return m.op.holds(cmpTime(v.n, v.ns, m.sec, m.nsec))
		}
	}
	return false
}

// testString compares one text value with the literal. A text value
// meets a numeric, boolean or date literal by being read as one.
func (m *matcher) testString(s string) bool {
	if m.like != nil {
		return m.like.match(s)
	}
	switch m.kind {
	case LitString:
		if m.prefix {
			return hasPrefixFold(s, m.fold)
		}
		return m.op.holds(compareFold(s, m.fold))
	case LitInt, LitFloat:
		if n, ok := parseInt(s); ok {
			return m.op.holds(m.cmpNum(true, n, 0))
		}
		if f, ok := parseFloat(s); ok {
			return m.op.holds(m.cmpNum(false, 0, f))
		}
	case LitBool:
		if b, ok := parseBool(s); ok {
			return m.op.holds(cmpBool(b, m.b))
		}
	case LitTime:
		if t, ok := parseTime(s); ok {
			return m.op.holds(cmpTime(t.Unix(), int32(t.Nanosecond()), m.sec, m.nsec))
		}
	}
	return false
}

// cmpNum compares a row number (an int when isInt, else f) with the
// literal's number.
func (m *matcher) cmpNum(isInt bool, i int64, f float64) int {
	switch {
	case isInt && m.isInt:
		return cmpInt(i, m.i)
	case isInt:
		return cmpIntFloat(i, m.f)
	case m.isInt:
		return -cmpIntFloat(m.i, f)
	}
	return cmpFloat(f, m.f)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIntFloat compares exactly, also beyond 2^53 where float64(i) rounds.
// f must not be NaN.
func cmpIntFloat(i int64, f float64) int {
	switch {
	case f >= 1<<63:
		return -1
	case f < -(1 << 63):
		return 1
	}
	t := math.Trunc(f)
	if c := cmpInt(i, int64(t)); c != 0 {
		return c
	}
	return cmpFloat(0, f-t)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func cmpTime(s1 int64, n1 int32, s2 int64, n2 int32) int {
	if c := cmpInt(s1, s2); c != 0 {
		return c
	}
	return cmpInt(int64(n1), int64(n2))
}

// compareProps evaluates "p1" op "p2" on two non-null values. Values of
// the same kind compare directly; numbers, booleans (as 1/0) compare
// numerically; text against another kind is read as that kind; a
// multivalued side matches when one element does (<>: when none equals).
func compareProps(a Value, op Op, b Value) bool {
	if op == OpLike {
		return false
	}
	if a.kind == KindStrings || b.kind == KindStrings {
		list, other, flip := a, b, false
		if a.kind != KindStrings {
			list, other, flip = b, a, true
		}
		each := func(s string) bool {
			x, y := StringValue(s), other
			if flip {
				x, y = y, x
			}
			if other.kind == KindStrings {
				return compareProps(x, op, y)
			}
			c, ok := cmpScalar(x, y)
			return ok && op.holds(c)
		}
		if op == OpNe {
			for _, s := range list.ss {
				if !each(s) {
					return false
				}
			}
			return true
		}
		for _, s := range list.ss {
			if each(s) {
				return true
			}
		}
		return false
	}
	c, ok := cmpScalar(a, b)
	return ok && op.holds(c)
}

// cmpScalar compares two non-null, non-list values; ok is false when
// they are not comparable.
func cmpScalar(a, b Value) (int, bool) {
	if a.kind == KindString && b.kind == KindString {
		return compareFold2(a.s, b.s), true
	}
	if a.kind == KindString {
		c, ok := cmpScalar(b, a)
		return -c, ok
	}
	// a is not text from here on.
	if b.kind == KindString {
		switch a.kind {
		case KindInt, KindFloat, KindBool:
			if n, ok := parseInt(b.s); ok {
				b = IntValue(n)
			} else if f, ok := parseFloat(b.s); ok {
				b = FloatValue(f)
			} else if t, ok := parseBool(b.s); ok {
				b = BoolValue(t)
			} else {
				return 0, false
			}
		case KindTime:
			t, ok := parseTime(b.s)
			if !ok {
				return 0, false
			}
			b = TimeValue(t)
		}
	}
	if a.kind == KindTime || b.kind == KindTime {
		if a.kind != b.kind {
			return 0, false
		}
		return cmpTime(a.n, a.ns, b.n, b.ns), true
	}
	return cmpNumeric(a, b)
}

// cmpNumeric compares two values of kinds int, float or bool (as 1/0).
func cmpNumeric(a, b Value) (int, bool) {
	ai, af, aInt := numOf(a)
	bi, bf, bInt := numOf(b)
	if (!aInt && math.IsNaN(af)) || (!bInt && math.IsNaN(bf)) {
		return 0, false
	}
	switch {
	case aInt && bInt:
		return cmpInt(ai, bi), true
	case aInt:
		return cmpIntFloat(ai, bf), true
	case bInt:
		return -cmpIntFloat(bi, af), true
	}
	return cmpFloat(af, bf), true
}

func numOf(v Value) (int64, float64, bool) {
	if v.kind == KindFloat {
		return 0, math.Float64frombits(uint64(v.n)), false
	}
	return v.n, 0, true // int, or bool as 0/1
}
