package server

import (
	"net/http"
	"strings"

	"github.com/davmail/davmail/limits"
)

// wrapLimits puts the first stage of the fair share (package limits)
// around next: Wrap admits on the server-wide count and the client
// address before anything else runs. It runs once, in Handler, inside the
// access log so that refusals are logged like any other response.
//
// The second stage, Gate, admits on the verified user, charges the
// handler's time to them and coalesces duplicate requests; it sits
// inside the authentication of the mailbox route (newWithStore), so it
// sees the user auth.Basic verified, and a password is checked once per
// request (upstream logins included).
func (s *Server) wrapLimits(next http.Handler) http.Handler {
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, Prefix) && hasDotSegment(r.URL.Path) {
			// The router would answer 307 to the cleaned path, and a
			// client following it re-sends a PUT or PROPPATCH body to
			// a resource it never named. WebDAV clients remove dot
			// segments (RFC 3986 §5.2.4) before sending: one that does
			// not is refused like the other path tricks dav refuses.
			http.Error(w, "400 Bad Request: \".\" and \"..\" segments are not allowed in paths", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
	return s.limiter.Wrap(route)
}

// limitsOptions are the limiter's settings from the configuration (0
// takes limits' default); the body digested for coalescing follows the
// XML body cap so that every body the handler would accept can be keyed.
func limitsOptions(s *Server) limits.Options {
	c := s.cfg
	return limits.Options{
		Logger:   s.log.With().Str("component", "limits").Logger(),
		Coalesce: limits.CoalesceOptions{MaxBody: c.MaxXMLBytes},
		User: limits.Quota{
			Budget:     c.UserTimeBudget,
			Concurrent: c.UserMaxConcurrent,
			Rate:       float64(c.UserRate),
			Burst:      10 * c.UserRate, // a client's start-up burst (a folder sync) is ~10 s of its rate
		},
		IPConcurrent: c.IPMaxConcurrent,
		IPRate:       float64(c.IPRate),
		IPBurst:      10 * c.IPRate,
		MaxInFlight:  c.MaxInFlight,
	}
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
