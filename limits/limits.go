// Package limits holds the caps that keep davmail bounded whatever clients
// send, and the typed errors that carry the status a refusal gets.
//
// Every refusal is a *Error naming the limit, its configured value and the
// size seen, so the single error-to-response adapter (dav.writeError) can
// tell the client exactly why, and the access log can record it
// (brief, failure 5: "every refusal says clearly why").
package limits

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel kinds, for errors.Is on a *Error.
var (
	// ErrTooLarge: a body or resource exceeds a size cap (413 for requests,
	// 4xx for responses, see Error.Status).
	ErrTooLarge = errors.New("too large")
	// ErrBusy: the server or the user's share of it is exhausted (429/503
	// with Retry-After).
	ErrBusy = errors.New("busy")
	// ErrTooComplex: a request exceeds a structural cap (elements, depth,
	// items).
	ErrTooComplex = errors.New("too complex")
)

// Error is a refusal by a limit.
type Error struct {
	Kind  error  // ErrTooLarge, ErrBusy or ErrTooComplex
	Limit string // the limit's name as in the config, e.g. "max-message-size"
	Value int64  // the configured value
	Size  int64  // what was seen; -1 when unknown
	// Status is the HTTP status to answer.
	Status int
	// RetryAfter, when non-zero, is sent as Retry-After.
	RetryAfter time.Duration
	// Unit is "bytes" (the default when empty), "elements", "levels", "items", "requests"…
	Unit string
}

func (e *Error) Error() string {
	unit := e.Unit
	if unit == "" {
		unit = "bytes"
	}
	if e.Size < 0 {
		return fmt.Sprintf("%s: limit %s is %s %s", e.Kind, e.Limit, fmtAmount(e.Value, unit), unit)
	}
	return fmt.Sprintf("%s: %s %s exceeds limit %s of %s %s", e.Kind, fmtAmount(e.Size, unit), unit, e.Limit, fmtAmount(e.Value, unit), unit)
}

// Is makes errors.Is(err, ErrTooLarge) and friends work.
func (e *Error) Is(target error) bool { return target == e.Kind }

// HTTPStatus returns the status to answer.
func (e *Error) HTTPStatus() int { return e.Status }

func fmtAmount(n int64, unit string) string {
	if unit != "bytes" || n < 1<<20 {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%d (%s)", n, FormatSize(n))
}

// TooLarge returns a 413 refusal of a request body.
func TooLarge(limit string, value, size int64) *Error {
	return &Error{Kind: ErrTooLarge, Limit: limit, Value: value, Size: size, Status: http.StatusRequestEntityTooLarge}
}

// ResponseTooLarge returns the refusal of a response whose body would be
// over a cap. 403 is used rather than 413, which speaks of the request:
// the client may not have this resource in one piece, and the body says
// why (../shared/docs/exchange-webdav.md §3.3 leaves the status open).
func ResponseTooLarge(limit string, value, size int64) *Error {
	return &Error{Kind: ErrTooLarge, Limit: limit, Value: value, Size: size, Status: http.StatusForbidden}
}

// TooComplex returns a 413 refusal for a structural cap.
func TooComplex(limit string, value, size int64, unit string) *Error {
	return &Error{Kind: ErrTooComplex, Limit: limit, Value: value, Size: size, Unit: unit, Status: http.StatusRequestEntityTooLarge}
}

// Reader reads at most N bytes from R and then fails with a *Error instead
// of the silent EOF of io.LimitReader (mox's moxio.LimitReader idea): a
// body cut at the limit must never be mistaken for a whole one.
type Reader struct {
	R     io.Reader
	N     int64 // bytes still allowed
	Limit string
	Max   int64 // the configured value, for the error
	read  int64
}

// NewReader caps r at max bytes, reporting limit by name.
func NewReader(r io.Reader, limit string, max int64) *Reader {
	return &Reader{R: r, N: max, Limit: limit, Max: max}
}

func (l *Reader) Read(p []byte) (int, error) {
	if l.N <= 0 {
		// Probe for one more byte: only a real extra byte is an error.
		var one [1]byte
		n, err := l.R.Read(one[:])
		if n > 0 {
			return 0, TooLarge(l.Limit, l.Max, l.read+1)
		}
		return 0, err
	}
	if int64(len(p)) > l.N {
		p = p[:l.N]
	}
	n, err := l.R.Read(p)
	l.N -= int64(n)
	l.read += int64(n)
	return n, err
}

// ParseSize reads a size such as "25MiB", "1GiB", "512KiB", "10MB" or a
// plain number of bytes. Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB,
// GB, TB) suffixes are accepted; "K", "M", "G" are binary, as in mkcorpus
// and most mail servers' configs.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number with KiB, MiB, GiB, KB, MB or GB", s)
	}
	if n > 0 && mult > 1 && n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// FormatSize prints n with the largest binary unit that keeps it exact to
// one decimal, e.g. "25 MiB", "1.5 GiB", "512 bytes".
func FormatSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	f := float64(n)
	u := -1
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[u])
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}
