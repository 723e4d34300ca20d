// Package owa serves the Outlook Web Access URLs that Exchange-dialect
// clients use around the WebDAV mailbox tree (exchange-webdav.md §1.1,
// §2):
//
//   - Exchange 2003 forms-based login (§2.2): the logon form
//     (/exchweb/bin/auth/owalogon.asp), its POST target
//     (/exchweb/bin/auth/owaauth.dll), which creates an auth.Sessions
//     session and sets the "sessionid" and "cadata" cookies, and log off
//     (/exchweb/bin/auth/owalogoff.dll). The Exchange 2007 names of the
//     form and its target (/owa/auth/logon.aspx, /owa/auth/owaauth.dll,
//     §2.3) are served too: DavMail falls back to POSTing
//     /owa/auth/owaauth.dll when it cannot find a form.
//   - The OWA start page (GET /exchange/ without "Translate: f", §2.4),
//     whose one-line <BASE href="…/exchange/<user>/"> is how DavMail and
//     Evolution find the mailbox.
//   - The public folder vroot /public/ (§1.1): an empty tree, so that
//     DavMail's PROPFIND probe after login succeeds.
//
// Which requests need a login, and what an unauthenticated one gets (the
// auth table of §2.2), is decided in one place, auth.Basic.Wrap; this
// package only supplies the logon URL it redirects to (LogonURL).
//
// CSRF: the login POST is the only state change without authentication.
// It is refused when a browser marks it cross-origin (Sec-Fetch-Site, or
// an Origin naming another host: net/http's CrossOriginProtection), which
// stops a foreign page from logging a victim's browser into the
// attacker's account; clients that send neither header (DavMail,
// Evolution) are not browsers and pass. Log off is a GET, as on Exchange
// (OWA links to it): a foreign page can at worst log a user off, which
// costs a login and exposes nothing. The session cookies are
// SameSite=Lax, so they are not sent with cross-site POSTs or
// subrequests to the mailbox tree.
package owa

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/davmail/davmail/internal/auth"
	"github.com/rs/zerolog"
)

// URL paths of the forms login (exchange-webdav.md §1.1, §2.2, §2.3).
const (
	LogonPath     = "/exchweb/bin/auth/owalogon.asp"
	AuthPath      = "/exchweb/bin/auth/owaauth.dll"
	LogoffPath    = "/exchweb/bin/auth/owalogoff.dll"
	Logon2007Path = "/owa/auth/logon.aspx"
	Auth2007Path  = "/owa/auth/owaauth.dll"
)

// Logon reasons in the "reason" query parameter of the logon page, as
// Exchange uses them. DavMail takes a final URL whose query holds
// "reason=2" or "reason=4" after its login POST as a wrong password
// (ExchangeFormAuthenticator.checkFormLoginQueryString).
const (
	reasonNone     = "0"
	reasonBadCreds = "2"
)

// maxDestination caps the URL carried through the login (the "url" and
// "destination" parameters): 2,048 bytes is about Internet Explorer's
// URL limit (2,083), which OWA URLs were built to fit; a longer one is
// replaced by the mailbox root rather than echoed.
const maxDestination = 2048

// Options configure a Handler.
type Options struct {
	// Sessions checks passwords and holds the sessions. Required.
	Sessions *auth.Sessions
	// LoginFailed records a refused login, logs it and waits the
	// throttle's delay, and reports false if the client is gone;
	// auth.Basic.LoginFailed, so that the form and Basic share one
	// throttle. Required.
	LoginFailed func(r *http.Request, user string, err error) bool
	// Logger receives logins and logoffs (never passwords or ids).
	Logger zerolog.Logger
	// Prefix is the mailbox vroot, "/exchange/" (the default).
	Prefix string
	// PublicPrefix is the public folder vroot, "/public/" (the default).
	PublicPrefix string
}

// Handler serves the OWA URLs.
type Handler struct {
	sessions    *auth.Sessions
	loginFailed func(*http.Request, string, error) bool
	log         zerolog.Logger
	prefix      string
	public      string
	cop         *http.CrossOriginProtection
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Sessions == nil || opts.LoginFailed == nil {
		return nil, errors.New("owa: Options.Sessions and Options.LoginFailed are required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/exchange/"
	}
	if opts.PublicPrefix == "" {
		opts.PublicPrefix = "/public/"
	}
	for _, p := range []string{opts.Prefix, opts.PublicPrefix} {
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 3 {
			return nil, errors.New("owa: prefixes must be paths like /exchange/")
		}
	}
	return &Handler{
		sessions:    opts.Sessions,
		loginFailed: opts.LoginFailed,
		log:         opts.Logger,
		prefix:      opts.Prefix,
		public:      opts.PublicPrefix,
		cop:         http.NewCrossOriginProtection(),
	}, nil
}

// LogonURL returns the function auth.FormsOptions.LogonURL needs: the
// absolute URL of the logon page carrying r's own absolute URL, as
// Exchange 2003 redirects (§2.2 step 1):
// "http://host/exchweb/bin/auth/owalogon.asp?url=<url-encoded URL>&reason=0".
// A URL longer than maxDestination is replaced by the mailbox root,
// prefix.
func LogonURL(prefix string) func(r *http.Request) string {
	return func(r *http.Request) string {
		o := origin(r)
		dest := o + r.URL.RequestURI()
		if len(dest) > maxDestination {
			dest = o + prefix
		}
		return logonURL(o, LogonPath, dest, reasonNone)
	}
}

func logonURL(origin, path, dest, reason string) string {
	return origin + path + "?url=" + url.QueryEscape(dest) + "&reason=" + reason
}

// origin returns "scheme://host" of r as the client addressed it: https
// when the connection is TLS, and the Host header (the request's own
// local address for an HTTP/1.0 request without one). Behind a
// TLS-terminating proxy this says http; trusted X-Forwarded-Proto
// handling is a later addition.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	return scheme + "://" + host
}

// safeDestination returns where to send the client after login or in the
// logon form: raw if it is a URL on this server, else the mailbox root.
// Accepted are an absolute path ("/exchange/") and an http or https URL
// whose host name is the request's (port and scheme may differ: behind a
// TLS-terminating proxy the request arrives as http on another port than
// the client used). Everything else, including "//host/…", backslashes,
// user info, control characters, spaces and non-ASCII bytes (a browser
// sends URLs percent-encoded), becomes origin(r)+prefix, so the login is
// never an open redirect. The result is always absolute, as Exchange's
// Location headers are.
func safeDestination(r *http.Request, raw, prefix string) string {
	def := origin(r) + prefix
	if raw == "" || len(raw) > maxDestination {
		return def
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return def
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil {
		return def
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return def
	}
	query := ""
	if u.RawQuery != "" {
		query = "?" + u.RawQuery
	}
	switch {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(raw, "/"):
		return origin(r) + path + query
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && sameHostName(u.Host, r.Host):
		return u.Scheme + "://" + u.Host + path + query
	}
	return def
}

// sameHostName reports whether host-with-optional-port a and b name the
// same host, ignoring case and ports.
func sameHostName(a, b string) bool {
	ha := (&url.URL{Host: a}).Hostname()
	hb := (&url.URL{Host: b}).Hostname()
	return ha != "" && strings.EqualFold(ha, hb)
}

// translateF reports whether r asks for raw content ("Translate: f"), as
// WebDAV clients do; OWA pages are for requests without it.
func translateF(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("Translate")), "f")
}

// setPageHeaders sets the headers of every HTML page here: no caching
// (pages name the user or carry the login), no framing (clickjacking of
// the form), no sniffing, and a content security policy that allows no
// script at all.
func setPageHeaders(w http.ResponseWriter, baseURI string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri "+baseURI)
}
