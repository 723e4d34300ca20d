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
// An error wrapping ErrSessionStale is softer: the request carried a
// session cookie that names no live session. No delay is applied and the
// next authenticator is still tried (a client may send valid Basic
// credentials along with an old cookie); if none succeeds, the request is
// answered per the auth table (see Basic.Wrap).
//
// The OWA forms-login session (Sessions, cookies "sessionid"/"cadata") is
// the Authenticator placed before Basic.
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

// Verifier checks a user name and password: the users file (*Users) or
// an upstream server (*Upstream, the IMAP backend's pass-through login).
// An error means the check could not be made; ErrUnavailable among them
// is answered 503, not 401.
type Verifier interface {
	VerifyContext(ctx context.Context, name, password string) (bool, error)
}

// ErrUnavailable is wrapped by a Verifier that could not reach the
// server that knows the passwords.
var ErrUnavailable = errors.New("auth: the password server is unavailable")

// BasicAuthenticator checks RFC 7617 Basic credentials against Users.
type BasicAuthenticator struct {
	Users Verifier
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
	// session cookie).
	Before []Authenticator
	// Forms, when set, turns on the answers of Exchange forms-based
	// login (exchange-webdav.md §2.2): browser-style GETs without valid
	// credentials are sent to the logon page. Nil keeps plain Basic.
	Forms *FormsOptions
	// Throttle delays failed logins; default NewThrottle with defaults.
	Throttle *Throttle
	// Sleep waits d or until ctx ends; tests inject a recorder. Default
	// a timer select, which holds no lock and no worker beyond the wait.
	Sleep func(ctx context.Context, d time.Duration)
}

// FormsOptions configure the forms-login answers of the middleware.
type FormsOptions struct {
	// Prefix is the tree whose GET and HEAD requests (without
	// "Translate: f") go to the logon page when they carry no valid
	// credentials, e.g. "/exchange/" (the path without its final slash
	// is included). Required.
	Prefix string
	// LogonURL returns the Location of that redirect for r: the logon
	// page with the original URL, "…/owalogon.asp?url=…&reason=0".
	// Required.
	LogonURL func(r *http.Request) string
}

// Basic is the authentication middleware.
type Basic struct {
	log      zerolog.Logger
	chain    []Authenticator
	throttle *Throttle
	sleep    func(context.Context, time.Duration)
	forms    *FormsOptions
	// challenge is the WWW-Authenticate value (RFC 7617 §2, §2.1).
	challenge string
}

// StatusLoginTimeout is Exchange's "440 Login Timeout": not an IANA
// status, but DavMail (HttpClientAdapter maps it to LoginTimeoutException)
// and Evolution take it as "log in again" (exchange-webdav.md §2.2).
const StatusLoginTimeout = 440

// NewBasic returns the middleware checking credentials against users.
func NewBasic(users Verifier, log zerolog.Logger, opts BasicOptions) *Basic {
	if opts.Realm == "" {
		opts.Realm = "davmail"
	}
	if opts.Throttle == nil {
		opts.Throttle = NewThrottle(ThrottleOptions{})
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.Forms != nil && (opts.Forms.Prefix == "" || opts.Forms.LogonURL == nil) {
		panic("auth: FormsOptions needs Prefix and LogonURL")
	}
	chain := append(append([]Authenticator(nil), opts.Before...), BasicAuthenticator{Users: users})
	return &Basic{
		log:       log,
		chain:     chain,
		throttle:  opts.Throttle,
		sleep:     opts.Sleep,
		forms:     opts.Forms,
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
// the request's reqlog entry (and its logger). Otherwise the answer
// follows the auth table of exchange-webdav.md §2.2, implemented here and
// nowhere else:
//
//	request                                       | no credentials | wrong Basic       | stale session cookie
//	GET/HEAD under Forms.Prefix, no "Translate: f" | 302 logon page | 401 after a delay | 302 logon page, cookies expired
//	anything else                                 | 401 Basic      | 401 after a delay | 440, cookies expired
//
// Valid Basic credentials or a live session cookie are served either
// way. Without Forms the first row does not exist (plain Basic: 401),
// and a stale session gets 440 whatever the method.
func (b *Basic) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var stale error
		for _, a := range b.chain {
			user, ok, err := a.Authenticate(r)
			if ok {
				e := reqlog.From(r.Context())
				e.User = user
				_, e.Session = a.(*Sessions)
				e.Log = e.Log.With().Str("user", user).Logger()
				next.ServeHTTP(w, r)
				return
			}
			if err != nil {
				if errors.Is(err, ErrSessionStale) {
					stale = err
					continue
				}
				if errors.Is(err, ErrUnavailable) {
					// Not the client's fault: no delay, no count, 503.
					lg := b.logger(r.Context())
					lg.Warn().Err(err).Msg("cannot check credentials")
					w.Header().Set("Retry-After", "30")
					http.Error(w, "503 Service Unavailable: the password server cannot be reached; try again later", http.StatusServiceUnavailable)
					return
				}
				b.fail(w, r, user, err)
				return
			}
		}
		b.deny(w, r, stale)
	})
}

// deny answers a request that carried no valid credentials: none at all
// (the normal first request of every client: not a failure, no delay) or
// only stale session cookies.
func (b *Basic) deny(w http.ResponseWriter, r *http.Request, stale error) {
	if stale != nil {
		lg := b.logger(r.Context())
		lg.Debug().Err(stale).Msg("session cookie refused")
		ExpireSessionCookies(w, r.TLS != nil)
	}
	switch {
	case b.forms != nil && b.wantsLogonPage(r):
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, b.forms.LogonURL(r), http.StatusFound)
	case stale != nil:
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "440 Login Timeout: the session has expired; log in again", StatusLoginTimeout)
	default:
		b.unauthorized(w, "authentication required")
	}
}

// wantsLogonPage reports whether r is what a browser (or DavMail's FBA
// probe) sends to the OWA tree: GET or HEAD under Forms.Prefix without
// "Translate: f" (a WebDAV client fetching raw content sends "f").
func (b *Basic) wantsLogonPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Translate")), "f") {
		return false
	}
	p := b.forms.Prefix
	return strings.HasPrefix(r.URL.Path, p) || r.URL.Path == strings.TrimSuffix(p, "/")
}

// logger is the request's logger (it carries the request id) or, without
// the access-log middleware (tests, embedding), the middleware's own.
func (b *Basic) logger(ctx context.Context) zerolog.Logger {
	if e := reqlog.From(ctx); e.ID != "" {
		return e.Log
	}
	return b.log
}

// fail logs a refused login, waits the throttle's delay and answers 401.
func (b *Basic) fail(w http.ResponseWriter, r *http.Request, user string, err error) {
	if !b.LoginFailed(r, user, err) {
		return // the client is gone (VerifyContext gave up waiting)
	}
	b.unauthorized(w, "wrong user name or password")
}

// LoginFailed records a refused login of user (as typed; "" if unknown)
// from r's client address in the throttle, logs it without secrets, and
// waits the throttle's delay. The logon form uses it too, so that
// guesses through the form and through Basic share one throttle. It
// returns false, without counting or waiting, when the client is already
// gone; the caller then writes nothing.
func (b *Basic) LoginFailed(r *http.Request, user string, err error) bool {
	addr := clientKey(r)
	ctx := r.Context()
	if ctx.Err() != nil {
		return false
	}
	// Only names that could exist are tracked per user: anything else
	// (garbage, a password typed into the name field) is counted against
	// the address only and never logged.
	tracked := ""
	if ValidName(user) {
		tracked = user
	}
	d := b.throttle.Fail(tracked, addr)
	lg := b.logger(ctx)
	ev := lg.Warn()
	if tracked != "" {
		ev = ev.Str("user", tracked)
	}
	ev.Str("remote", addr).Err(err).Dur("delay", d).Msg("authentication failed")
	b.sleep(ctx, d)
	return true
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
