package exsql

import (
	"iter"
	"slices"
	"strconv"
	"strings"
)

// The Range request header of SEARCH (Exchange SDK "Range Header", §3.2):
//
//	Range: rows=20-39              rows 20 to 39 (0-based, inclusive)
//	Range: rows=0-5, 10-15         several ranges
//	Range: rows=-50                the last 50 rows
//	Range: rows=228-               row 228 to the end
//	Range: rows=0-4,-5             the first and the last five rows
//	Range: rows=-0                 no rows, only the total ("replication")
//
// and the response header Content-Range: rows 20-39; total=100.

// Range header caps.
const (
	// MaxRowRanges caps the ranges of one header. Clients send one
	// (DavMail rows=0-N, Evolution rows=a-b or rows=-N); the SDK's
	// longest example has four.
	MaxRowRanges = 16
	// maxRangeHeader caps the header text: 16 ranges of two 19-digit
	// numbers with separators and spaces fit in well under 1 KiB.
	maxRangeHeader = 1024
)

// RangeKind is the form of one RowRange.
type RangeKind uint8

// Row range forms.
const (
	RangeSpan RangeKind = iota // "a-b": rows First to Last
	RangeFrom                  // "a-": rows First to the end
	RangeLast                  // "-n": the last N rows
)

// RowRange is one range of a Range: rows= header, as requested (not yet
// clipped to a result).
type RowRange struct {
	Kind  RangeKind
	First int64 // RangeSpan, RangeFrom: the first row, 0-based
	Last  int64 // RangeSpan: the last row, inclusive
	N     int64 // RangeLast: how many rows
}

func (r RowRange) String() string {
	switch r.Kind {
	case RangeFrom:
		return strconv.FormatInt(r.First, 10) + "-"
	case RangeLast:
		return "-" + strconv.FormatInt(r.N, 10)
	}
	return strconv.FormatInt(r.First, 10) + "-" + strconv.FormatInt(r.Last, 10)
}

// ParseRange parses a Range header value such as "rows=0-99" or
// "rows=0-4, -5". The unit is case-insensitive; spaces around ranges are
// allowed and empty list elements are skipped (RFC 9110 §5.6.1).
//
// Errors are *RangeError: for a unit other than rows it matches
// ErrRangeUnit (ignore the header); otherwise the value is malformed, has
// more than MaxRowRanges ranges, or a range ends before it starts.
func ParseRange(h string) ([]RowRange, error) {
	bad := func(msg string, kind error) error {
		return &RangeError{Header: clipN(h, 100), Msg: msg, Kind: kind}
	}
	if len(h) > maxRangeHeader {
		return nil, bad("longer than "+strconv.Itoa(maxRangeHeader)+" bytes", nil)
	}
	unit, spec, ok := strings.Cut(strings.TrimSpace(h), "=")
	if !ok {
		return nil, bad(`want "rows=first-last"`, nil)
	}
	if !strings.EqualFold(strings.TrimSpace(unit), "rows") {
		return nil, bad("unit is not rows", ErrRangeUnit)
	}
	if strings.Count(spec, ",") >= MaxRowRanges {
		// Counting separators first bounds the work before splitting.
		if n := countNonEmpty(spec); n > MaxRowRanges {
			return nil, bad("more than "+strconv.Itoa(MaxRowRanges)+" ranges", nil)
		}
	}
	var out []RowRange
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.Trim(part, " \t")
		if part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return nil, bad("range "+strconv.Quote(clipN(part, 40))+" has no '-'", nil)
		}
		a, b = strings.Trim(a, " \t"), strings.Trim(b, " \t")
		var r RowRange
		switch {
		case a == "" && b == "":
			return nil, bad("range '-' has no numbers", nil)
		case a == "":
			n, ok := parseRowNumber(b)
			if !ok {
				return nil, bad("bad row count "+strconv.Quote(clipN(b, 40)), nil)
			}
			r = RowRange{Kind: RangeLast, N: n}
		default:
			first, ok := parseRowNumber(a)
			if !ok {
				return nil, bad("bad row number "+strconv.Quote(clipN(a, 40)), nil)
			}
			r = RowRange{Kind: RangeFrom, First: first}
			if b != "" {
				last, ok := parseRowNumber(b)
				if !ok {
					return nil, bad("bad row number "+strconv.Quote(clipN(b, 40)), nil)
				}
				if last < first {
					return nil, bad("range "+part+" ends before it starts", nil)
				}
				r = RowRange{Kind: RangeSpan, First: first, Last: last}
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, bad("no ranges", nil)
	}
	return out, nil
}

func countNonEmpty(spec string) int {
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		if strings.Trim(part, " \t") != "" {
			n++
		}
	}
	return n
}

// parseRowNumber reads a non-negative decimal that fits an int64.
func parseRowNumber(s string) (int64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	return parseInt(s)
}

func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Span is a run of selected rows, 0-based and inclusive.
type Span struct{ First, Last int }

// Selection is the rows a Range selects from a result of Total rows:
// sorted, non-overlapping spans.
type Selection struct {
	Spans []Span
	Total int
}

// SelectRows applies ranges to a result of total rows (after Sort: the
// rows are counted in ORDER BY order). Ranges are clipped to the result,
// overlapping ones merged, and the spans returned in row order, so no
// row is sent twice.
//
// When total > 0 and no range reaches into the result, the error is a
// *RangeNotSatisfiableError (answer 416). An empty result is never an
// error: DavMail looks items up with rows=0-0 and needs a 207 with no
// rows when nothing matches (§5.1). rows=-0 selects nothing, without
// error.
func SelectRows(ranges []RowRange, total int) (Selection, error) {
	if total < 0 {
		total = 0
	}
	sel := Selection{Total: total}
	t := int64(total)
	satisfiable := false
	for _, r := range ranges {
		var first, last int64
		switch r.Kind {
		case RangeSpan, RangeFrom:
			if r.First >= t {
				continue
			}
			first, last = r.First, t-1
			if r.Kind == RangeSpan && r.Last < last {
				last = r.Last
			}
		case RangeLast:
			satisfiable = true // even rows=-0: it asks for the total only
			if r.N == 0 || t == 0 {
				continue
			}
			first, last = max(0, t-r.N), t-1
		default:
			continue
		}
		satisfiable = true
		sel.Spans = append(sel.Spans, Span{First: int(first), Last: int(last)})
	}
	if total > 0 && !satisfiable {
		return Selection{}, &RangeNotSatisfiableError{Total: total}
	}
	slices.SortFunc(sel.Spans, func(a, b Span) int { return a.First - b.First })
	merged := sel.Spans[:0]
	for _, s := range sel.Spans {
		if n := len(merged); n > 0 && s.First <= merged[n-1].Last+1 {
			merged[n-1].Last = max(merged[n-1].Last, s.Last)
			continue
		}
		merged = append(merged, s)
	}
	sel.Spans = merged
	return sel, nil
}

// Len returns the number of selected rows.
func (s Selection) Len() int {
	n := 0
	for _, sp := range s.Spans {
		n += sp.Last - sp.First + 1
	}
	return n
}

// Indexes yields the selected row numbers in order.
func (s Selection) Indexes() iter.Seq[int] {
	return func(yield func(int) bool) {
		for _, sp := range s.Spans {
			for i := sp.First; i <= sp.Last; i++ {
				if !yield(i) {
					return
				}
			}
		}
	}
}

// ContentRange returns the Content-Range value for the response (§3.2),
// e.g. "rows 0-9; total=100", with several spans comma-separated
// ("rows 0-4, 95-99; total=100"). With no rows selected (rows=-0, or an
// empty result) it is "rows *; total=N": Evolution reads the number after
// "rows " (atoi gives 0 for "*") and the total, and stops at total=0.
func (s Selection) ContentRange() string {
	var b strings.Builder
	b.WriteString("rows ")
	if len(s.Spans) == 0 {
		b.WriteString("*")
	}
	for i, sp := range s.Spans {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(sp.First))
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(sp.Last))
	}
	b.WriteString("; total=")
	b.WriteString(strconv.Itoa(s.Total))
	return b.String()
}
