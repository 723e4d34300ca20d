package dav

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// httpError is a deliberate status with a message for the client. Err,
// when set, is logged and never sent.
type httpError struct {
	Code int
	Msg  string
	// Cond is an RFC 4918 precondition element name in DAV: (e.g.
	// "propfind-finite-depth"); when set the body is a DAV:error document.
	Cond string
	Err  error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Msg)
}

func (e *httpError) Unwrap() error { return e.Err }

func errorf(code int, format string, args ...any) error {
	return &httpError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to its status and client message. It is the one
// place that decides what a failure looks like on the wire (style.md §6).
func statusOf(err error) (code int, msg string) {
	var he *httpError
	var le *limits.Error
	var mbe *http.MaxBytesError
	// Typed errors of other packages (exsql's syntax and range errors)
	// carry their status.
	var hs interface {
		error
		HTTPStatus() int
	}
	switch {
	case errors.As(err, &he):
		return he.Code, he.Msg
	case errors.As(err, &le):
		return le.Status, le.Error()
	case errors.As(err, &hs):
		return hs.HTTPStatus(), err.Error()
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, mailbox.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, mailbox.ErrExists):
		return http.StatusPreconditionFailed, "the destination exists"
	case errors.Is(err, mailbox.ErrNoParent):
		return http.StatusConflict, "the parent collection does not exist"
	case errors.Is(err, mailbox.ErrInvalidName):
		return http.StatusForbidden, "this name cannot be stored in a mailbox (no \".\" in folder names, no \"/\", \"\\\" or control characters)"
	case errors.Is(err, mailbox.ErrEmptyMessage):
		return http.StatusForbidden, "this mailbox cannot store an empty message"
	case errors.Is(err, mailbox.ErrForbidden):
		return http.StatusForbidden, "this operation is not allowed on this folder"
	case errors.Is(err, mailbox.ErrTooManyProps):
		return http.StatusInsufficientStorage, fmt.Sprintf("too many dead properties (at most %d, %d bytes per resource)", mailbox.MaxDeadProps, mailbox.MaxDeadPropBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A request body that stalled past the server's read or idle
		// timeout (a slow or stuck client): the client's side failed.
		return http.StatusRequestTimeout, "the request body stopped arriving before the server's timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away; nobody reads this. 499 is nginx's
		// "client closed request", logged so the access log tells.
		return 499, "client closed request"
	}
	return http.StatusInternalServerError, "internal server error"
}

// writeError answers r with err. It records the refusal (limit name,
// value, size) or the internal error in the request's log entry.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := statusOf(err)
	e := reqlog.From(r.Context())
	var le *limits.Error
	if errors.As(err, &le) {
		e.Limit, e.LimitValue, e.LimitSize = le.Limit, le.Value, le.Size
		if le.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((le.RetryAfter+999e6)/1e9)))
		}
	}
	if code >= 500 {
		e.Err = err
		if code == http.StatusInternalServerError && e.ID != "" {
			msg += " (request " + e.ID + ")"
		}
	}
	if code == 499 {
		e.Err = err
		return
	}
	var he *httpError
	if errors.As(err, &he) && he.Cond != "" {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a:error xmlns:a=\"DAV:\"><a:%s/><a:responsedescription>%s</a:responsedescription></a:error>\n", he.Cond, xmlEscapeString(msg))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s: %s\n", code, http.StatusText(code), msg)
}
