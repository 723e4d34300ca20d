package owa

import (
	"context"
	"errors"
	"html/template"
	"net/http"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
)

// maxFormBytes caps the login POST body: a destination URL (at most
// maxDestination), a user name (64) and a password (72) with Exchange's
// extra fields are under 3 KiB; 16 KiB is generous and still tiny.
const maxFormBytes = 16 << 10

// logonPage is the logon form. Its shape is what DavMail's form parser
// needs (exchange-webdav.md §2.2, ExchangeFormAuthenticator
// .buildLogonMethod): exactly one <form> on the page, named logonForm,
// with an absolute action; exactly one user field ("username") and one
// password field ("password") among the names DavMail recognises; and no
// hidden input outside the form, since DavMail copies every hidden input
// of the page into its POST. The hidden fields are Exchange's
// (destination, flags, forcedownlevel, isUtf8); "trusted" is a radio
// button, which DavMail replaces by trusted=4 as it does flags=4.
var logonPage = template.Must(template.New("logon").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log on – davmail</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 26rem; padding: 0 1rem; line-height: 1.5; }
label { display: block; margin-top: 1rem; }
input[type=text], input[type=password] { width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }
fieldset { margin-top: 1rem; }
fieldset label { display: inline; margin: 0; }
button { margin-top: 1rem; padding: .4rem 1.2rem; font-size: 1rem; }
.error { border: 2px solid #a00; padding: .5rem; color: #700; }
</style>
</head>
<body>
<main>
<h1>davmail</h1>
{{if .Error}}<p class="error" id="logon-error" role="alert">{{.Error}}</p>
{{end}}<form name="logonForm" id="logonForm" method="POST" action="{{.Action}}">
<input type="hidden" name="destination" value="{{.Destination}}">
<input type="hidden" name="flags" value="0">
<input type="hidden" name="forcedownlevel" value="0">
<input type="hidden" name="isUtf8" value="1">
<label for="username">User name</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus{{if .Error}} aria-describedby="logon-error"{{end}}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<fieldset>
<legend>Security</legend>
<input type="radio" id="trusted-public" name="trusted" value="0"> <label for="trusted-public">This is a public or shared computer</label><br>
<input type="radio" id="trusted-private" name="trusted" value="4" checked> <label for="trusted-private">This is a private computer</label>
</fieldset>
<button type="submit" name="SubmitCreds" value="Log On">Log On</button>
</form>
</main>
</body>
</html>
`))

type logonData struct {
	Action      string
	Destination string
	Error       string
}

// logoffPage is shown after log off.
var logoffPage = template.Must(template.New("logoff").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Logged off – davmail</title>
<style>body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 26rem; padding: 0 1rem; line-height: 1.5; }</style>
</head>
<body>
<main>
<h1>davmail</h1>
<p role="status">You have logged off. For your security, close all browser windows.</p>
<p><a href="{{.}}">Log on again</a></p>
</main>
</body>
</html>
`))

// Logon serves the logon form at LogonPath (and its Exchange 2007 name
// Logon2007Path, which posts to Auth2007Path). The "url" parameter (or
// "destination") is where to go after login; "reason=2" shows the
// wrong-password message.
func (h *Handler) Logon() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 Method Not Allowed: the form posts to "+AuthPath, http.StatusMethodNotAllowed)
			return
		}
		action := AuthPath
		if r.URL.Path == Logon2007Path {
			action = Auth2007Path
		}
		q := r.URL.Query()
		raw := q.Get("url")
		if raw == "" {
			raw = q.Get("destination")
		}
		d := logonData{Action: action, Destination: safeDestination(r, raw, h.prefix)}
		if q.Get("reason") == reasonBadCreds {
			d.Error = "The user name or password is not correct. Check them and try again."
		}
		setPageHeaders(w, "'none'")
		if r.Method == http.MethodHead {
			return
		}
		if err := logonPage.Execute(w, d); err != nil {
			reqlog.From(r.Context()).Log.Debug().Err(err).Msg("writing the logon page")
		}
	})
}

// Auth handles the login POST at AuthPath and Auth2007Path
// (exchange-webdav.md §2.2 steps 3 and 4). The body is
// application/x-www-form-urlencoded with "username", "password" and
// "destination"; "flags", "trusted", "forcedownlevel" and "isUtf8" are
// accepted and ignored (one idle timeout applies to every session; the
// body is always read as UTF-8). On success any session the client
// already had is ended (no session fixation), the session cookies are set
// and the answer is 302 to the destination. A wrong name or password
// waits the shared throttle's delay and is answered 302 back to the logon
// page with reason=2.
func (h *Handler) Auth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
		case http.MethodGet, http.MethodHead:
			// A bookmark or a reload of the POST target: show the form.
			http.Redirect(w, r, logonURL(origin(r), LogonPath, origin(r)+h.prefix, reasonNone), http.StatusFound)
			return
		default:
			w.Header().Set("Allow", "POST, GET, HEAD")
			http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := h.cop.Check(r); err != nil {
			http.Error(w, "403 Forbidden: cross-origin login refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				e := reqlog.From(r.Context())
				e.Limit, e.LimitValue, e.LimitSize = "login-form-bytes", maxFormBytes, -1
				http.Error(w, "413 Request Entity Too Large: the login form is limited to 16 KiB", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "400 Bad Request: unreadable login form", http.StatusBadRequest)
			return
		}
		// Credentials only from the body: never from the query string,
		// which lands in logs and browser history.
		f := r.PostForm
		user := auth.NormalizeLogin(f.Get("username"))
		dest := safeDestination(r, f.Get("destination"), h.prefix)

		id, err := h.sessions.Login(r.Context(), user, f.Get("password"))
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || r.Context().Err() != nil {
				return // the client went away while waiting for bcrypt
			}
			if !errors.Is(err, auth.ErrBadCredentials) {
				e := reqlog.From(r.Context())
				e.Err = err
				http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
				return
			}
			if !h.loginFailed(r, user, err) {
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, logonURL(origin(r), LogonPath, dest, reasonBadCreds), http.StatusFound)
			return
		}
		// A client that logs in again ends its previous session here
		// rather than leaving it to expire.
		for _, old := range auth.SessionIDs(r.Header) {
			h.sessions.Logout(old)
		}
		e := reqlog.From(r.Context())
		e.User = user
		e.Log = e.Log.With().Str("user", user).Logger()
		e.Log.Info().Str("method", "forms").Msg("logged on")

		auth.SetSessionCookies(w, id, r.TLS != nil)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, dest, http.StatusFound)
	})
}

// Logoff ends the request's session (LogoffPath), expires the cookies
// and shows the logged-off page. It is a GET, as on Exchange; see the
// package comment for why that is acceptable. POST is accepted too, for
// a log-off button.
func (h *Handler) Logoff() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		e := reqlog.From(r.Context())
		for _, id := range auth.SessionIDs(r.Header) {
			if user, ok := h.sessions.Logout(id); ok {
				e.User = user
				e.Log.Info().Str("user", user).Msg("logged off")
			}
		}
		auth.ExpireSessionCookies(w, r.TLS != nil)
		setPageHeaders(w, "'none'")
		if r.Method == http.MethodHead {
			return
		}
		o := origin(r)
		if err := logoffPage.Execute(w, logonURL(o, LogonPath, o+h.prefix, reasonNone)); err != nil {
			e.Log.Debug().Err(err).Msg("writing the logoff page")
		}
	})
}
