package exsql

import (
	"errors"
	"fmt"
	"net/http"
)

// SyntaxError is a statement Parse cannot accept. The dav handler answers
// it with 400 and Error() as the message: it names the byte offset and
// what was expected there.
type SyntaxError struct {
	// Pos is the byte offset into the SQL text (0-based) where the
	// problem starts.
	Pos int
	// Msg says what was expected and what was found instead.
	Msg string
	// Unsupported is set when the statement is valid Exchange SQL that
	// this package does not implement (CONTAINS, FREETEXT, GROUP BY, an
	// unknown CAST type): the client is not wrong, the gateway is limited.
	Unsupported bool
}

func (e *SyntaxError) Error() string {
	if e.Unsupported {
		return fmt.Sprintf("SEARCH SQL at byte %d: not supported: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("SEARCH SQL syntax error at byte %d: %s", e.Pos, e.Msg)
}

// HTTPStatus is 400 for both kinds: Exchange refuses a query it cannot
// run with 400 too.
func (e *SyntaxError) HTTPStatus() int { return http.StatusBadRequest }

// ErrRangeUnit is matched (errors.Is) by the *RangeError of a Range header
// whose unit is not "rows" (e.g. "bytes=0-9"). RFC 9110 §14.2: a server
// ignores a Range with a unit it does not support, so the handler should
// answer the whole result without Content-Range.
var ErrRangeUnit = errors.New("range unit is not rows")

// RangeError is a Range header ParseRange refuses. Kind is ErrRangeUnit
// for another unit, nil for a malformed or over-long rows= value.
type RangeError struct {
	Header string // the header value, cut to 100 bytes
	Msg    string
	Kind   error
}

func (e *RangeError) Error() string { return fmt.Sprintf("Range %q: %s", e.Header, e.Msg) }

// Is makes errors.Is(err, ErrRangeUnit) work.
func (e *RangeError) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// HTTPStatus is 400 for a malformed rows= value. (For ErrRangeUnit the
// handler should ignore the header instead of failing, see ErrRangeUnit.)
func (e *RangeError) HTTPStatus() int { return http.StatusBadRequest }

// RangeNotSatisfiableError is returned by Select when no requested range
// overlaps the Total matching rows. The handler answers 416 (§3.2;
// Evolution reads 416 as "no more rows").
type RangeNotSatisfiableError struct {
	Total int
}

func (e *RangeNotSatisfiableError) Error() string {
	return fmt.Sprintf("no requested row range starts before row %d, the number of matching rows", e.Total)
}

// HTTPStatus is 416 Range Not Satisfiable.
func (e *RangeNotSatisfiableError) HTTPStatus() int { return http.StatusRequestedRangeNotSatisfiable }

// ContentRange is the Content-Range value to send with the 416, in the
// RFC 9110 §14.4 unsatisfied-range form: "rows */N".
func (e *RangeNotSatisfiableError) ContentRange() string {
	return fmt.Sprintf("rows */%d", e.Total)
}
