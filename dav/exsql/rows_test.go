package exsql

import (
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func span(a, b int64) RowRange { return RowRange{Kind: RangeSpan, First: a, Last: b} }
func from(a int64) RowRange    { return RowRange{Kind: RangeFrom, First: a} }
func last(n int64) RowRange    { return RowRange{Kind: RangeLast, N: n} }

func TestParseRange(t *testing.T) {
	good := []struct {
		h    string
		want []RowRange
	}{
		{"rows=0-9", []RowRange{span(0, 9)}},
		{"rows=20-39", []RowRange{span(20, 39)}},
		{"rows=0-5, 10-15, 20-25, 30-35", []RowRange{span(0, 5), span(10, 15), span(20, 25), span(30, 35)}},
		{"rows=-50", []RowRange{last(50)}},
		{"rows=228-", []RowRange{from(228)}},
		{"rows=0-4,-5", []RowRange{span(0, 4), last(5)}},
		{"rows=-0", []RowRange{last(0)}},
		{"rows=0-0", []RowRange{span(0, 0)}},
		{"ROWS=1-2", []RowRange{span(1, 2)}},
		{" Rows = 1 - 2 ,\t3- ", []RowRange{span(1, 2), from(3)}},
		{"rows=0-9,,10-19,", []RowRange{span(0, 9), span(10, 19)}},
		{"rows=9223372036854775807-", []RowRange{from(9223372036854775807)}},
		{"rows=" + strings.Repeat("1-2,", 15) + "1-2", slices.Repeat([]RowRange{span(1, 2)}, 16)},
	}
	for _, tc := range good {
		got, err := ParseRange(tc.h)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRange(%q) = %v, %v; want %v", tc.h, got, err, tc.want)
		}
	}
	bad := []struct {
		h    string
		msg  string
		unit bool
	}{
		{"", `want "rows=first-last"`, false},
		{"rows", `want "rows=first-last"`, false},
		{"rows=", "no ranges", false},
		{"rows=,,", "no ranges", false},
		{"rows=a-b", "bad row number", false},
		{"rows=5-1", "ends before it starts", false},
		{"rows=--5", "bad row count", false},
		{"rows=1-2-3", "bad row number", false},
		{"rows=-", "has no numbers", false},
		{"rows=5", "has no '-'", false},
		{"rows=+1-2", "bad row number", false},
		{"rows=1-+2", "bad row number", false},
		{"rows=99999999999999999999-", "bad row number", false},
		{"rows=" + strings.Repeat("1-2,", 16) + "1-2", "more than 16 ranges", false},
		{"rows=" + strings.Repeat(" ", 1100) + "1-2", "longer than 1024 bytes", false},
		{"bytes=0-9", "unit is not rows", true},
		{"items=0-9", "unit is not rows", true},
	}
	for _, tc := range bad {
		_, err := ParseRange(tc.h)
		var re *RangeError
		if !errors.As(err, &re) || !strings.Contains(re.Msg, tc.msg) || errors.Is(err, ErrRangeUnit) != tc.unit {
			t.Errorf("ParseRange(%q) = %v; want %q (unit error: %v)", tc.h, err, tc.msg, tc.unit)
			continue
		}
		if re.HTTPStatus() != http.StatusBadRequest || len(re.Header) > 100 {
			t.Errorf("ParseRange(%q): status %d, header %d bytes", tc.h, re.HTTPStatus(), len(re.Header))
		}
	}
}

func TestSelectRows(t *testing.T) {
	tests := []struct {
		ranges []RowRange
		total  int
		want   []Span
		cr     string
	}{
		{[]RowRange{span(0, 9)}, 100, []Span{{0, 9}}, "rows 0-9; total=100"},
		{[]RowRange{span(0, 99)}, 10, []Span{{0, 9}}, "rows 0-9; total=10"},
		{[]RowRange{span(0, 0)}, 10, []Span{{0, 0}}, "rows 0-0; total=10"},
		{[]RowRange{last(50)}, 10, []Span{{0, 9}}, "rows 0-9; total=10"},
		{[]RowRange{last(5)}, 100, []Span{{95, 99}}, "rows 95-99; total=100"},
		{[]RowRange{from(228)}, 300, []Span{{228, 299}}, "rows 228-299; total=300"},
		{[]RowRange{span(0, 4), last(5)}, 7, []Span{{0, 6}}, "rows 0-6; total=7"},
		{[]RowRange{span(0, 4), last(5)}, 100, []Span{{0, 4}, {95, 99}}, "rows 0-4, 95-99; total=100"},
		{[]RowRange{last(0)}, 100, nil, "rows *; total=100"},
		{[]RowRange{span(0, 0)}, 0, nil, "rows *; total=0"},
		{[]RowRange{last(10)}, 0, nil, "rows *; total=0"},
		{[]RowRange{span(50, 60), span(0, 5), span(55, 70)}, 100, []Span{{0, 5}, {50, 70}}, "rows 0-5, 50-70; total=100"},
		{[]RowRange{span(5, 9), span(10, 12)}, 100, []Span{{5, 12}}, "rows 5-12; total=100"},
		{[]RowRange{span(200, 300), span(0, 1)}, 100, []Span{{0, 1}}, "rows 0-1; total=100"},
		{[]RowRange{from(0), last(9223372036854775807)}, 3, []Span{{0, 2}}, "rows 0-2; total=3"},
		{[]RowRange{span(0, 9223372036854775807)}, 3, []Span{{0, 2}}, "rows 0-2; total=3"},
	}
	for _, tc := range tests {
		sel, err := SelectRows(tc.ranges, tc.total)
		if err != nil {
			t.Errorf("%v of %d: %v", tc.ranges, tc.total, err)
			continue
		}
		if !slices.Equal(sel.Spans, tc.want) || sel.ContentRange() != tc.cr {
			t.Errorf("%v of %d: %v %q, want %v %q", tc.ranges, tc.total, sel.Spans, sel.ContentRange(), tc.want, tc.cr)
		}
		n := 0
		for i := range sel.Indexes() {
			if i < 0 || i >= tc.total {
				t.Errorf("%v of %d: index %d", tc.ranges, tc.total, i)
			}
			n++
		}
		if n != sel.Len() {
			t.Errorf("%v of %d: Indexes yields %d rows, Len %d", tc.ranges, tc.total, n, sel.Len())
		}
	}
	for _, tc := range []struct {
		ranges []RowRange
		total  int
	}{
		{[]RowRange{span(200, 300)}, 100},
		{[]RowRange{from(100)}, 100},
		{[]RowRange{span(10, 20), from(50)}, 10},
	} {
		_, err := SelectRows(tc.ranges, tc.total)
		var nse *RangeNotSatisfiableError
		if !errors.As(err, &nse) || nse.Total != tc.total || nse.HTTPStatus() != 416 || nse.ContentRange() != "rows */"+strconv.Itoa(tc.total) {
			t.Errorf("%v of %d: %v, want 416", tc.ranges, tc.total, err)
		}
	}
	// Stop early.
	sel, _ := SelectRows([]RowRange{span(0, 9)}, 100)
	n := 0
	for range sel.Indexes() {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("Indexes did not stop: %d", n)
	}
}
