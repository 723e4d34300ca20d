package server

import (
	"net/http"
	"strings"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
)

// wrapLimits puts the per-user fair-share and request limits (package
// limits) around next. It runs once, in Handler, inside the access log so
// that refusals are logged like any other response.
//
// The limiter has two stages (see limits.Limiter): Wrap admits on the
// server-wide count and the client address before anything else runs;
// Gate admits on the verified user, charges the handler's time to them
// and coalesces duplicate requests, so it needs the user before the
// handler runs. Authentication runs inside the router, so for requests
// under Prefix the user is identified here, lazily, with the same
// authenticators auth.Basic uses (session cookie, then Basic through the
// users' credential cache: one HMAC per request once a password has been
// verified). The user goes into the reqlog entry, where auth.Basic puts
// the same value again. Requests that do not authenticate pass on
// untouched: auth.Basic answers them (401, delays) as before, and the
// address limits of the first stage bound them.
//
// The better wiring, which avoids the second credential check of a
// cache miss, is Gate inside the route in server.go:
//
//	s.mux.Handle(Prefix, s.auth.Wrap(lim.Gate(oh.StartPage(dh))))
//
// (then this function becomes `return lim.Wrap(next)`).
func (s *Server) wrapLimits(next http.Handler) http.Handler {
	lim := limits.NewLimiter(limitsOptions(s))
	s.limiter = lim
	authn := []auth.Authenticator{s.sessions, auth.BasicAuthenticator{Users: s.verifier}}
	gated := lim.Gate(next)
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		if hasDotSegment(r.URL.Path) {
			// The router would answer 307 to the cleaned path, and a
			// client following it re-sends a PUT or PROPPATCH body to
			// a resource it never named. WebDAV clients remove dot
			// segments (RFC 3986 §5.2.4) before sending: one that does
			// not is refused like the other path tricks dav refuses.
			http.Error(w, "400 Bad Request: \".\" and \"..\" segments are not allowed in paths", http.StatusBadRequest)
			return
		}
		for _, a := range authn {
			if user, ok, _ := a.Authenticate(r); ok {
				reqlog.From(r.Context()).User = user
				break
			}
		}
		gated.ServeHTTP(w, r)
	})
	return lim.Wrap(route)
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
