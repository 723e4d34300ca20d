package owa

import (
	"fmt"
	"html"
	"net/http"
	"net/url"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
)

// msWebStorage is the store version Exchange 2003 SP2 announces.
// Evolution reads the major.minor of this header to tell Exchange 2003
// (6.5) from 2000 (6.0) and 2007 (08.x) (exchange-webdav.md §2.4).
const msWebStorage = "6.5.7638"

// startPage is the OWA start page. The <BASE href> line must stay on a
// line of its own, with one space and a double-quoted absolute URL, and
// must be the first line holding "<base href=": DavMail reads the page
// line by line, lower-cases each line and takes the text after the
// literal `<base href="` up to the next quote
// (DavExchangeSession.getMailpathFromWelcomePage, §2.4). Links use
// absolute paths, since the base changes how relative ones resolve.
const startPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<BASE href="%[1]s">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%[2]s – davmail</title>
<style>body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; padding: 0 1rem; line-height: 1.5; }</style>
</head>
<body>
<main>
<h1>Mailbox of %[2]s</h1>
<p>Your mailbox is at <a href="%[1]s">%[1]s</a>. Use it with a WebDAV
mail client: DavMail in WebDav mode (davmail.url = this server's
%[3]s URL), Evolution's Exchange connector or Entourage.</p>
<p><a href="%[4]s">Log off</a></p>
</main>
</body>
</html>
`

// StartPage wraps the mailbox tree handler next (behind authentication)
// with the OWA start page: GET or HEAD of the vroot itself (Prefix) without
// "Translate: f" answers 200 HTML holding
// <BASE href="scheme://host/exchange/<user>/"> for the authenticated
// user, scheme and host as the request used them. Everything else goes to
// next.
func (h *Handler) StartPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			(r.URL.Path == h.prefix || r.URL.Path == h.prefix[:len(h.prefix)-1]) && !translateF(r) {
			h.serveStart(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) serveStart(w http.ResponseWriter, r *http.Request) {
	user := reqlog.User(r.Context())
	if user == "" {
		// Only reachable if StartPage is mounted without authentication.
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	o := origin(r)
	// User names are [A-Za-z0-9._@+-] (auth.ValidName): PathEscape keeps
	// them as they are, and escaping for HTML changes nothing; both are
	// here so that the line stays one quoted ASCII URL whatever the name.
	base := html.EscapeString(o + h.prefix + url.PathEscape(user) + "/")
	setPageHeaders(w, "'self'")
	w.Header().Set("MS-WebStorage", msWebStorage)
	if r.Method == http.MethodHead {
		return
	}
	logoff := html.EscapeString(LogoffPath)
	if _, err := fmt.Fprintf(w, startPage, base, html.EscapeString(user), html.EscapeString(h.prefix), logoff); err != nil {
		h.logger(r).Debug().Err(err).Msg("writing the start page")
	}
}

// logger returns the request's logger (with its request id), or the
// handler's own without the access-log middleware.
func (h *Handler) logger(r *http.Request) *zerolog.Logger {
	if e := reqlog.From(r.Context()); e.ID != "" {
		return &e.Log
	}
	return &h.log
}
