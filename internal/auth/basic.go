package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
)

// Authenticator finds the user of a request from one kind of credentials.
// The middleware tries its authenticators in order:
//
//   - (user, true, nil): authenticated as user; no further authenticator runs.
//   - ("", false, nil): no credentials of this kind; the next one is tried.
//   - (user, false, err): credentials of this kind were presented and are
//     wrong or malformed; the request is refused with 401 after the
//     brute-force delay, counted against user (if known) and the client
//     address. err is logged, never sent.
//
// The OWA forms-login session (cookies "sessionid"/"cadata") will be an
// Authenticator placed before Basic.
type Authenticator interface {
	Authenticate(r *http.Request) (user string, ok bool, err error)
}

// ErrBadCredentials is the error of a wrong user name or password.
var ErrBadCredentials = errors.New("wrong user name or password")

// ErrMalformed is the error of an Authorization header that cannot be
// parsed.
var ErrMalformed = errors.New("malformed credentials")

// maxBasicToken caps the base64 credentials of a Basic header: a 64-byte
// name, a colon and a 72-byte password are 184 base64 characters; 1 KiB
// leaves room for clients that send longer passwords (which then fail).
const maxBasicToken = 1 << 10

// ParseBasic parses an Authorization header value of the Basic scheme
// (RFC 7617 §2: "Basic" SP token68, the scheme case-insensitive, the
// token the standard base64 of user-id ":" password). The user-id cannot
// contain a colon; the password can. With charset="UTF-8" (which the
// server advertises, RFC 7617 §2.1) both are UTF-8: a user name that is
// not is refused; a password is passed on as bytes, so a client that sends
// Latin-1 simply fails to match. ok is false when h is not Basic at all;
// err is ErrMalformed when it is Basic but unparsable.
func ParseBasic(h string) (user, password string, ok bool, err error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, nil
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxBasicToken {
		return "", "", true, ErrMalformed
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		// Some clients drop the padding; accept it without.
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(token, "=")); err != nil {
			return "", "", true, ErrMalformed
		}
	}
	user, password, found := strings.Cut(string(raw), ":")
	if !found || !utf8.ValidString(user) {
		return "", "", true, ErrMalformed
	}
	return user, password, true, nil
}

// BasicAuthenticator checks RFC 7617 Basic credentials against Users.
type BasicAuthenticator struct {
	Users *Users
}

// Authenticate implements Authenticator.
func (b BasicAuthenticator) Authenticate(r *http.Request) (string, bool, error) {
	user, password, found, err := ParseBasic(r.Header.Get("Authorization"))
	if !found {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	ok, err := b.Users.VerifyContext(r.Context(), user, password)
	if err != nil {
		return user, false, err
	}
	if !ok {
		return user, false, ErrBadCredentials
	}
	return user, true, nil
}

// BasicOptions tune the middleware; zero values take the defaults.
type BasicOptions struct {
	// Realm is sent in WWW-Authenticate. Default "davmail".
	Realm string
	// Before are authenticators tried, in order, before Basic (the OWA
	// session cookie, later).
	Before []Authenticator
	// Throttle delays failed logins; default NewThrottle with defaults.
	Throttle *Throttle
	// Sleep waits d or until ctx ends; tests inject a recorder. Default
	// a timer select, which holds no lock and no worker beyond the wait.
	Sleep func(ctx context.Context, d time.Duration)
}

// Basic is the authentication middleware.
type Basic struct {
	log      zerolog.Logger
	chain    []Authenticator
	throttle *Throttle
	sleep    func(context.Context, time.Duration)
	// challenge is the WWW-Authenticate value (RFC 7617 §2, §2.1).
	challenge string
}

// NewBasic returns the middleware checking credentials against users.
func NewBasic(users *Users, log zerolog.Logger, opts BasicOptions) *Basic {
	if opts.Realm == "" {
		opts.Realm = "davmail"
	}
	if opts.Throttle == nil {
		opts.Throttle = NewThrottle(ThrottleOptions{})
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	chain := append(append([]Authenticator(nil), opts.Before...), BasicAuthenticator{Users: users})
	return &Basic{
		log:       log,
		chain:     chain,
		throttle:  opts.Throttle,
		sleep:     opts.Sleep,
		challenge: `Basic realm="` + strings.NewReplacer(`"`, ``, `\`, ``).Replace(opts.Realm) + `", charset="UTF-8"`,
	}
}

// Throttle returns the middleware's throttle (for its Len).
func (b *Basic) Throttle() *Throttle { return b.throttle }

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Wrap returns next behind authentication. On success the user is set in
// the request's reqlog entry (and its logger); otherwise the answer is 401
// with a Basic challenge.
func (b *Basic) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, a := range b.chain {
			user, ok, err := a.Authenticate(r)
			if ok {
				e := reqlog.From(r.Context())
				e.User = user
				e.Log = e.Log.With().Str("user", user).Logger()
				next.ServeHTTP(w, r)
				return
			}
			if err != nil {
				b.fail(w, r, user, err)
				return
			}
		}
		// No credentials at all: the normal first request of every
		// client. Not a failure, no delay.
		b.unauthorized(w, "authentication required")
	})
}

// fail logs a refused login, waits the throttle's delay and answers 401.
func (b *Basic) fail(w http.ResponseWriter, r *http.Request, user string, err error) {
	addr := clientKey(r)
	ctx := r.Context()
	if ctx.Err() != nil {
		return // the client is gone (VerifyContext gave up waiting)
	}
	// Only names that could exist are tracked per user: anything else
	// (garbage, a password typed into the name field) is counted against
	// the address only and never logged.
	tracked := ""
	if ValidName(user) {
		tracked = user
	}
	d := b.throttle.Fail(tracked, addr)
	// The request's logger carries the request id; without the access-log
	// middleware (tests, embedding) there is none, so use our own.
	lg := b.log
	if e := reqlog.From(ctx); e.ID != "" {
		lg = e.Log
	}
	ev := lg.Warn()
	if tracked != "" {
		ev = ev.Str("user", tracked)
	}
	ev.Str("remote", addr).Err(err).Dur("delay", d).Msg("authentication failed")
	b.sleep(ctx, d)
	b.unauthorized(w, "wrong user name or password")
}

func (b *Basic) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", b.challenge)
	http.Error(w, "401 Unauthorized: "+msg, http.StatusUnauthorized)
}

// clientKey is the client's address for the throttle: the IP without the
// port, and for IPv6 its /64, since one host is routinely given a whole
// /64 and could otherwise rotate addresses to escape the per-address
// delay. Behind a reverse proxy it is the proxy's address; trusted-proxy
// headers are a later addition.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
