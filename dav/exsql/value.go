package exsql

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// Value kinds. The zero Kind (KindNone) marks a zero Value, which the
// evaluator treats like a missing property (SQL null).
const (
	KindNone    Kind = iota
	KindString       // text (Exchange string / unicode string properties)
	KindInt          // integers (b:dt="int", proptag type 0003/0014)
	KindFloat        // b:dt="float" (proptag type 0005)
	KindBool         // b:dt="boolean" (proptag type 000b)
	KindTime         // b:dt="dateTime.tz" (proptag type 0040)
	KindStrings      // b:dt="mv.string": multivalued text, e.g. exch:keywords-utf8
)

var kindNames = [...]string{"none", "string", "int", "float", "bool", "time", "strings"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one property value of a row: a small tagged union that is
// passed by value, so Row.Value never has to allocate.
//
// Build it with StringValue, IntValue, FloatValue, BoolValue, TimeValue
// or StringsValue. A missing property is reported by Row.Value's ok
// result, not by a special Value.
type Value struct {
	kind Kind
	// n holds the integer, the bool (0/1), the float's bits, or a
	// time's Unix seconds.
	n int64
	// ns is a time's nanoseconds within the second.
	ns int32
	s  string
	ss []string
}

// StringValue returns a text value.
func StringValue(s string) Value { return Value{kind: KindString, s: s} }

// IntValue returns an integer value.
func IntValue(n int64) Value { return Value{kind: KindInt, n: n} }

// FloatValue returns a floating-point value.
func FloatValue(f float64) Value { return Value{kind: KindFloat, n: int64(math.Float64bits(f))} }

// BoolValue returns a boolean value.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.n = 1
	}
	return v
}

// TimeValue returns a date-time value. Only the instant is kept; the
// location is dropped (comparisons are in UTC, as Exchange's are).
func TimeValue(t time.Time) Value {
	return Value{kind: KindTime, n: t.Unix(), ns: int32(t.Nanosecond())}
}

// StringsValue returns a multivalued text value. The slice is kept, not
// copied: do not change it while the Value is in use. An empty list is
// treated as a missing property.
func StringsValue(ss []string) Value { return Value{kind: KindStrings, ss: ss} }

// Kind returns the value's type.
func (v Value) Kind() Kind { return v.kind }

// Str returns the text of a KindString value ("" for other kinds).
func (v Value) Str() string { return v.s }

// Int returns the integer of a KindInt value (0 for other kinds).
func (v Value) Int() int64 {
	if v.kind != KindInt {
		return 0
	}
	return v.n
}

// Float returns the number of a KindFloat value (0 for other kinds).
func (v Value) Float() float64 {
	if v.kind != KindFloat {
		return 0
	}
	return math.Float64frombits(uint64(v.n))
}

// Bool returns the truth of a KindBool value (false for other kinds).
func (v Value) Bool() bool { return v.kind == KindBool && v.n != 0 }

// Time returns the instant of a KindTime value, in UTC (the zero Time
// for other kinds).
func (v Value) Time() time.Time {
	if v.kind != KindTime {
		return time.Time{}
	}
	return time.Unix(v.n, int64(v.ns)).UTC()
}

// Strings returns the list of a KindStrings value (nil for other kinds).
func (v Value) Strings() []string { return v.ss }

// isNull reports whether v counts as SQL null: a zero Value or an empty
// multivalued list.
func (v Value) isNull() bool {
	return v.kind == KindNone || (v.kind == KindStrings && len(v.ss) == 0)
}

// String formats v for logs and test failures (it is not the wire
// format: the dav handler formats values itself, §3.1).
func (v Value) String() string {
	switch v.kind {
	case KindString:
		return strconv.Quote(v.s)
	case KindInt:
		return strconv.FormatInt(v.n, 10)
	case KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case KindBool:
		return strconv.FormatBool(v.n != 0)
	case KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case KindStrings:
		q := make([]string, len(v.ss))
		for i, s := range v.ss {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, " ") + "]"
	}
	return "null"
}

// Row is one item (message or folder) as the evaluator sees it.
//
// Value returns the value of the property named by its full URI, e.g.
// "DAV:isfolder" or "urn:schemas:httpmail:subject", exactly as it is
// spelled in the query (this package does not normalise case), and
// ok=false when the item has no such property. Implementations should
// not allocate: Match calls Value once per condition per row.
type Row interface {
	Value(prop string) (Value, bool)
}
