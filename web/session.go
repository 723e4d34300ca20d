package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
)

// maxFormBytes caps a POSTed form: the largest is an action (a folder
// path and a message name of at most a few hundred bytes each, a token);
// 64 KiB is far above that and still small.
const maxFormBytes = 64 << 10

// maxNext caps the "next" URL carried through the login: 2,048 bytes, the
// URL length browsers and proxies all handle.
const maxNext = 2048

// csrfField is the form field carrying the CSRF token.
const csrfField = "csrf"

// who is the authenticated user of a request and its session id.
type who struct {
	User    string
	Session string
	Admin   bool
	CSRF    string
}

type whoKey struct{}

func whoFrom(ctx context.Context) who {
	w, _ := ctx.Value(whoKey{}).(who)
	return w
}

// session finds the live session of r (the "sessionid" or "cadata"
// cookie the forms login set) and its user.
func (h *Handler) session(r *http.Request) (who, bool) {
	for _, id := range auth.SessionIDs(r.Header) {
		user, err := h.opts.Sessions.Lookup(id)
		if err == nil {
			u, _ := h.opts.Users.Lookup(user)
			return who{User: user, Session: id, Admin: u.Admin(), CSRF: h.csrfToken(id)}, true
		}
	}
	return who{}, false
}

// csrfToken is the token of a session: HMAC-SHA256 of its id under the
// handler's random key, so it needs no storage, dies with the session,
// and cannot be computed without the key. A page reading it reveals
// nothing about the id.
func (h *Handler) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, h.csrfKey[:])
	m.Write([]byte("csrf\x00" + sessionID))
	return hex.EncodeToString(m.Sum(nil)[:16]) // 128 bits: unguessable
}

// authed wraps a handler of pages that need a login. Without a live
// session, a GET goes to the login page (and back afterwards); anything
// else is 401. POSTs must pass the CSRF check.
func (h *Handler) authed(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		wh, ok := h.session(r)
		if !ok {
			if auth.SessionIDs(r.Header) != nil {
				auth.ExpireSessionCookies(w, r.TLS != nil)
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				w.Header().Set("Cache-Control", "no-store")
				http.Redirect(w, r, h.opts.Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
				return nil
			}
			return errorf(http.StatusUnauthorized, "Your session has ended. Log in again.")
		}
		e := reqlog.From(r.Context())
		e.User, e.Session = wh.User, true
		e.Log = e.Log.With().Str("user", wh.User).Logger()
		if r.Method == http.MethodPost {
			if err := h.checkPost(w, r, wh); err != nil {
				return err
			}
		}
		return next(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, wh)))
	}
}

// checkPost parses a state-changing form and checks that it comes from
// one of our own pages: not marked cross-origin by the browser, and
// carrying this session's CSRF token.
func (h *Handler) checkPost(w http.ResponseWriter, r *http.Request, wh who) error {
	if err := h.cop.Check(r); err != nil {
		return errorf(http.StatusForbidden, "This request came from another site and was refused.")
	}
	if err := h.parseForm(w, r); err != nil {
		return err
	}
	got := r.PostForm.Get(csrfField)
	if !hmac.Equal([]byte(got), []byte(wh.CSRF)) {
		return errorf(http.StatusForbidden, "This form has expired (its security token does not match your session). Go back, reload the page and try again.")
	}
	return nil
}

func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := reqlog.From(r.Context())
			e.Limit, e.LimitValue, e.LimitSize = "web-form-bytes", maxFormBytes, -1
			return errorf(http.StatusRequestEntityTooLarge, "The form is larger than the %s this page accepts.", sizeText(maxFormBytes))
		}
		return errorf(http.StatusBadRequest, "The form could not be read.")
	}
	return nil
}

// safeNext returns where to go after login: a path under the UI, else
// the UI's start. Only local paths are accepted, so the login is never an
// open redirect.
func (h *Handler) safeNext(next string) string {
	if next == "" || len(next) > maxNext || !strings.HasPrefix(next, h.opts.Prefix) ||
		strings.ContainsAny(next, "\\\r\n\t ") || strings.HasPrefix(next, "//") {
		return h.opts.Prefix
	}
	return next
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) error {
	if _, ok := h.session(r); ok {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, h.safeNext(r.URL.Query().Get("next")), http.StatusFound)
		return nil
	}
	d := pageData{Title: "Log in", Next: h.safeNext(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("bye") == "1" {
		d.Notice = "You have logged out."
	}
	h.page(w, r, http.StatusOK, "login", d)
	return nil
}

// loginPost checks the credentials through the shared session table (so
// the Exchange dialect and the UI have one session), with the shared
// failed-login throttle: a wrong password is delayed, and counted against
// that user and that client address only.
func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) error {
	if err := h.cop.Check(r); err != nil {
		return errorf(http.StatusForbidden, "This login came from another site and was refused.")
	}
	if err := h.parseForm(w, r); err != nil {
		return err
	}
	f := r.PostForm
	user := auth.NormalizeLogin(f.Get("username"))
	next := h.safeNext(f.Get("next"))
	id, err := h.opts.Sessions.Login(r.Context(), user, f.Get("password"))
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the client went away while waiting for bcrypt
		}
		if !errors.Is(err, auth.ErrBadCredentials) {
			return err
		}
		if !h.opts.LoginFailed(r, user, err) {
			return nil
		}
		h.page(w, r, http.StatusUnauthorized, "login", pageData{
			Title: "Log in", Next: next, LoginName: user,
			Error: "The user name or password is not correct.",
		})
		return nil
	}
	// No session fixation: whatever session the browser had ends here.
	for _, old := range auth.SessionIDs(r.Header) {
		h.opts.Sessions.Logout(old)
	}
	e := reqlog.From(r.Context())
	e.User = user
	e.Log = e.Log.With().Str("user", user).Logger()
	e.Log.Info().Str("method", "web").Msg("logged on")
	auth.SetSessionCookies(w, id, r.TLS != nil)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	wh := whoFrom(r.Context())
	h.opts.Sessions.Logout(wh.Session)
	reqlog.From(r.Context()).Log.Info().Msg("logged off")
	auth.ExpireSessionCookies(w, r.TLS != nil)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.opts.Prefix+"login?bye=1", http.StatusSeeOther)
	return nil
}
