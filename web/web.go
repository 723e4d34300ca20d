package web

import (
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
	"github.com/rs/zerolog"
)

// Prefix is where the UI is mounted by default.
const Prefix = "/web/"

// DefaultPageSize is the number of messages per page: 50 rows fill a
// desktop screen about twice, and rendering them costs well under a
// millisecond, so the page stays fast however large the folder.
const DefaultPageSize = 50

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Setting is one line of the admin status page's configuration table.
type Setting struct {
	Name  string // as in the configuration, e.g. "max-message-size"
	Value string // as a person reads it, e.g. "25 MiB"
}

// Options configure a Handler.
type Options struct {
	// Store holds the mailboxes. Required.
	Store mailbox.Store
	// Sessions is the forms-login session table shared with the Exchange
	// dialect (one session for the UI and WebDAV). Required.
	Sessions *auth.Sessions
	// Users tells who is an admin. Required.
	Users *auth.Users
	// LoginFailed records a refused login, logs it and waits the shared
	// throttle's delay (auth.Basic.LoginFailed); it reports false when
	// the client is gone. Required.
	LoginFailed func(r *http.Request, user string, err error) bool
	// Logger receives errors and the UI's events.
	Logger zerolog.Logger
	// Prefix is the UI's path, default Prefix ("/web/").
	Prefix string
	// DAVPrefix is the WebDAV mailbox tree, default "/exchange/": the
	// UI links a message's original (.EML) there, where WebDAV's limits
	// apply.
	DAVPrefix string
	// MaxMessageSize and MaxResponseSize are the server's limits (the
	// same values as WebDAV's). Attachments over either are refused, and
	// legacy messages over MaxMessageSize are explained. Required.
	MaxMessageSize, MaxResponseSize int64
	// Settings are shown on the admin status page.
	Settings []Setting
	// Activity, when set, is shown on the admin status page.
	Activity *Activity
	// PageSize is the number of messages per page, default
	// DefaultPageSize.
	PageSize int
}

// Handler serves the UI under Options.Prefix.
type Handler struct {
	opts    Options
	log     zerolog.Logger
	csrfKey [32]byte
	pages   map[string]*template.Template
	static  http.Handler
	cop     *http.CrossOriginProtection
	mux     *http.ServeMux
	started time.Time
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil || opts.Sessions == nil || opts.Users == nil || opts.LoginFailed == nil {
		return nil, errors.New("web: Options.Store, Sessions, Users and LoginFailed are required")
	}
	if opts.MaxMessageSize <= 0 || opts.MaxResponseSize <= 0 {
		return nil, errors.New("web: Options.MaxMessageSize and MaxResponseSize must be positive")
	}
	if opts.Prefix == "" {
		opts.Prefix = Prefix
	}
	if opts.DAVPrefix == "" {
		opts.DAVPrefix = "/exchange/"
	}
	for _, p := range []string{opts.Prefix, opts.DAVPrefix} {
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 3 {
			return nil, errors.New("web: prefixes must be paths like /web/")
		}
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	h := &Handler{opts: opts, log: opts.Logger, cop: http.NewCrossOriginProtection(), started: time.Now()}
	if _, err := rand.Read(h.csrfKey[:]); err != nil {
		return nil, fmt.Errorf("web: random key: %w", err)
	}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix(opts.Prefix+"static/", http.FileServerFS(sub))

	p := opts.Prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+p+"{$}", h.serveRoot)
	m.HandleFunc("GET "+p+"login", h.handle(h.loginPage))
	m.HandleFunc("POST "+p+"login", h.handle(h.loginPost))
	m.HandleFunc("POST "+p+"logout", h.handle(h.authed(h.logout)))
	m.HandleFunc("GET "+p+"folder", h.handle(h.authed(h.folderPage)))
	m.HandleFunc("GET "+p+"msg", h.handle(h.authed(h.messagePage)))
	m.HandleFunc("GET "+p+"body", h.handle(h.authed(h.bodyFrame)))
	m.HandleFunc("GET "+p+"part", h.handle(h.authed(h.partDownload)))
	m.HandleFunc("POST "+p+"action", h.handle(h.authed(h.action)))
	m.HandleFunc("GET "+p+"admin", h.handle(h.authed(h.adminPage)))
	m.HandleFunc("GET "+p+"static/", h.serveStatic)
	m.HandleFunc(p, h.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "There is no page at this address.")
	}))
	h.mux = m
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) serveRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.folderURL(mailbox.Inbox, listQuery{}), http.StatusFound)
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Assets change only with the binary; an hour of caching saves the
	// round trips of a session without making an upgrade wait long.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.static.ServeHTTP(w, r)
}

// httpError is a deliberate refusal: Code is the status, Msg the sentence
// shown to the person (plain text, escaped by the template).
type httpError struct {
	Code int
	Msg  string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Msg) }

func errorf(code int, format string, args ...any) error {
	return &httpError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// handlerFunc is a handler that returns its error to fail.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h *Handler) handle(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.fail(w, r, err)
		}
	}
}

// fail turns err into a status and an error page: the one place where
// errors become responses. Deliberate refusals and limits say why;
// store errors map to 404/400/409/403; anything else is a 500 naming the
// request id, with the detail only in the log.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := reqlog.From(r.Context())
	code, msg := http.StatusInternalServerError, ""
	var he *httpError
	var le *limits.Error
	switch {
	case errors.As(err, &he):
		code, msg = he.Code, he.Msg
	case errors.As(err, &le):
		code, msg = le.HTTPStatus(), limitMessage(le)
		e.Limit, e.LimitValue, e.LimitSize = le.Limit, le.Value, le.Size
		e.Log.Warn().Str("limit", le.Limit).Int64("value", le.Value).Int64("size", le.Size).Msg("refused by a limit")
		if le.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(le.RetryAfter.Seconds()+0.5)))
		}
	case errors.Is(err, mailbox.ErrNotFound):
		code, msg = http.StatusNotFound, "This folder or message does not exist (any more)."
	case errors.Is(err, mailbox.ErrInvalidName):
		code, msg = http.StatusBadRequest, "That name cannot be used for a folder or message."
	case errors.Is(err, mailbox.ErrExists):
		code, msg = http.StatusConflict, "Something with that name already exists there."
	case errors.Is(err, mailbox.ErrForbidden):
		code, msg = http.StatusForbidden, "That operation is not allowed on this folder."
	default:
		if r.Context().Err() != nil {
			return // the client went away; nobody reads an answer
		}
		e.Err = err
		e.Log.Error().Err(err).Msg("web UI request failed")
		msg = "Something went wrong on the server (request " + e.ID + "). The details are in the server's log."
	}
	h.page(w, r, code, "error", pageData{Title: http.StatusText(code), Error: msg})
}

// limitMessage says in a sentence which limit refused what.
func limitMessage(le *limits.Error) string {
	if le.Size >= 0 {
		return fmt.Sprintf("Refused: this is %s, over the limit %s of %s.", sizeText(le.Size), le.Limit, sizeText(le.Value))
	}
	return fmt.Sprintf("Refused by the limit %s (%s).", le.Limit, sizeText(le.Value))
}

// sizeText prints a byte count for a person: "512 bytes", "1.5 MiB".
func sizeText(n int64) string { return limits.FormatSize(n) }
