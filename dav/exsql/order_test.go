package exsql

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

type orderRow struct {
	id   int
	vals map[string]Value
}

func (r *orderRow) Value(p string) (Value, bool) {
	v, ok := r.vals[p]
	return v, ok
}

func ids(rows []*orderRow) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r.id
	}
	return out
}

func TestSort(t *testing.T) {
	mk := func(id int, kv ...any) *orderRow {
		r := &orderRow{id: id, vals: map[string]Value{}}
		for i := 0; i < len(kv); i += 2 {
			r.vals[kv[i].(string)] = kv[i+1].(Value)
		}
		return r
	}
	rows := []*orderRow{
		mk(1, "uid", IntValue(10), "s", StringValue("b")),
		mk(2, "s", StringValue("A")), // no uid
		mk(3, "uid", IntValue(30), "s", StringValue("a")),
		mk(4, "uid", IntValue(20), "s", StringValue("B")),
		mk(5, "uid", IntValue(30), "s", StringValue("c")),
		mk(6, "uid", FloatValue(15.5)),
	}
	tests := []struct {
		order string
		want  []int
	}{
		{`"uid" DESC`, []int{3, 5, 4, 6, 1, 2}}, // 3 and 5 tie: input order; missing last
		{`"uid"`, []int{2, 1, 6, 4, 3, 5}},      // missing first
		{`"uid" ASC`, []int{2, 1, 6, 4, 3, 5}},
		{`"s"`, []int{6, 2, 3, 1, 4, 5}}, // case-insensitive: A=a, b=B; ties stable
		{`"s" DESC`, []int{5, 1, 4, 2, 3, 6}},
		{`"s", "uid" DESC`, []int{6, 3, 2, 4, 1, 5}},
		{`"s" DESC, "uid"`, []int{5, 1, 4, 2, 3, 6}},
		{`"nothing"`, []int{1, 2, 3, 4, 5, 6}},
	}
	for _, tc := range tests {
		q := mustParse(t, `SELECT "x" FROM "/f" ORDER BY `+tc.order)
		got := slices.Clone(rows)
		Sort(q, got)
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("ORDER BY %s: %v, want %v", tc.order, ids(got), tc.want)
		}
		for i := 1; i < len(got); i++ {
			if q.Less(got[i], got[i-1]) {
				t.Errorf("ORDER BY %s: row %d sorts before row %d", tc.order, got[i].id, got[i-1].id)
			}
		}
	}
	// No ORDER BY: Sort leaves the order alone.
	q := mustParse(t, `SELECT "x" FROM "/f"`)
	got := slices.Clone(rows)
	Sort(q, got)
	if !slices.Equal(ids(got), []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("no ORDER BY reordered: %v", ids(got))
	}
}

// TestCompareTotalOrder: mixed kinds still give a strict weak ordering
// (antisymmetric and transitive), which a sort needs to be correct.
func TestCompareTotalOrder(t *testing.T) {
	d := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	vals := []Value{
		{}, IntValue(-1), IntValue(3), IntValue(math.MaxInt64), FloatValue(2.5), FloatValue(math.NaN()),
		FloatValue(math.Inf(1)), FloatValue(9.3e18), BoolValue(true), BoolValue(false), TimeValue(d), TimeValue(d.Add(time.Nanosecond)),
		StringValue(""), StringValue("a"), StringValue("B"), StringValue("b"), StringsValue([]string{"a", "b"}),
		StringsValue([]string{"a"}), StringsValue(nil), StringsValue([]string{"b"}),
	}
	cmp := func(a, b Value) int { return compareForOrder(a, true, b, true) }
	for _, a := range vals {
		if cmp(a, a) != 0 {
			t.Errorf("%v != itself", a)
		}
		for _, b := range vals {
			if cmp(a, b) != -cmp(b, a) {
				t.Errorf("not antisymmetric: %v, %v", a, b)
			}
			for _, c := range vals {
				if cmp(a, b) <= 0 && cmp(b, c) <= 0 && cmp(a, c) > 0 {
					t.Errorf("not transitive: %v <= %v <= %v but %v > %v", a, b, c, a, c)
				}
			}
		}
	}
	// Missing sorts with null, first.
	if compareForOrder(Value{}, false, IntValue(0), true) >= 0 || compareForOrder(StringsValue(nil), true, Value{}, false) != 0 {
		t.Error("missing values must sort first, equal to null")
	}
}

// TestSortLarge sorts many rows like DavMail's ORDER BY imapUid DESC and
// checks the result against a plain sort of the keys.
func TestSortLarge(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	rows := make([]*msgRow, 5000)
	for i := range rows {
		rows[i] = &msgRow{uid: int64(rnd.IntN(2000))}
	}
	q := mustParse(t, `SELECT "x" FROM "/f" ORDER BY "`+pImapUID+`" DESC`)
	Sort(q, rows)
	for i := 1; i < len(rows); i++ {
		if rows[i].uid > rows[i-1].uid {
			t.Fatalf("row %d: uid %d after %d", i, rows[i].uid, rows[i-1].uid)
		}
	}
}
