// Package reqlog carries the per-request record that the access-log
// middleware writes as one zerolog event when the request ends. Handlers
// deeper in the chain (auth, dav, web) fill in what only they know: the
// user, the number of items listed, the limit that refused the request.
package reqlog

import (
	"context"

	"github.com/rs/zerolog"
)

// Entry is the mutable record of one request. It is used by one request
// goroutine at a time (handlers run sequentially in the chain), so it
// needs no lock.
type Entry struct {
	ID   string // request id, also sent as X-Request-Id
	User string // authenticated user, "" when none
	// Session is true when the user was authenticated by an OWA
	// forms-login session cookie rather than by Basic credentials: the
	// client speaks the Exchange dialect (DavMail 6 works only this way).
	Session bool
	Items   int64 // items listed (PROPFIND/SEARCH responses)
	// Refusal, when a limit refused the request: its name, value and the size seen.
	Limit      string
	LimitValue int64
	LimitSize  int64
	// Err is the internal error behind a 5xx, logged but never sent.
	Err error
	// Log is the request-scoped logger (request id and user as fields).
	Log zerolog.Logger
}

type key struct{}

// With returns ctx carrying e.
func With(ctx context.Context, e *Entry) context.Context {
	return context.WithValue(ctx, key{}, e)
}

// From returns the entry of ctx, or a throwaway one so callers never need
// a nil check (tests that call handlers without the middleware).
func From(ctx context.Context) *Entry {
	if e, ok := ctx.Value(key{}).(*Entry); ok {
		return e
	}
	return &Entry{Log: zerolog.Nop()}
}

// User returns the authenticated user of ctx, "" if none.
func User(ctx context.Context) string {
	if e, ok := ctx.Value(key{}).(*Entry); ok {
		return e.User
	}
	return ""
}
