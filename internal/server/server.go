// Package server assembles davmail: it opens the Maildir store, loads the
// users, builds the WebDAV handler behind authentication, adds the health
// endpoints, the metrics and the access log, and runs the HTTP(S) server,
// with the optional HTTP→HTTPS redirect and metrics listeners beside it.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/metrics"
	"github.com/davmail/davmail/internal/owa"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/maildir"
	"github.com/davmail/davmail/web"
	"github.com/rs/zerolog"
)

// Prefix is where the mailbox tree is mounted.
const Prefix = "/exchange/"

// PublicPrefix is the public folder vroot (exchange-webdav.md §1.1): an
// empty tree, served so that DavMail's probe after login succeeds.
const PublicPrefix = "/public/"

// maxHeaderBytes caps request headers at 64 KiB: well above any real
// client's headers (a few KiB even with long cookies and Destination
// URLs), far below net/http's 1 MiB default that an idle attacker could
// make us buffer per connection.
const maxHeaderBytes = 64 << 10

// readyTimeout bounds a /readyz probe: load balancers probe every few
// seconds and must get an answer, not a hung connection.
const readyTimeout = 5 * time.Second

// Server is a running davmail.
type Server struct {
	cfg   config.Config
	log   zerolog.Logger
	store mailbox.Store
	users *auth.Users
	// sessions are the forms-login (OWA) sessions, in memory only.
	sessions *auth.Sessions
	auth     *auth.Basic
	owa      *owa.Handler
	dav      *dav.Handler
	mux      *http.ServeMux
	http     *http.Server

	panics atomic.Int64
	submit *submitter // nil when no relay is configured

	metrics *metrics.Metrics
	// activity feeds the web UI's admin page (per-user requests, bytes,
	// refusals and throttling in the last hour).
	activity *web.Activity
	// verifier checks passwords: users, or the IMAP upstream.
	verifier auth.Verifier
	// limiter is the fair share (limits.go).
	limiter *limits.Limiter
	certs   *certStore     // nil: plain HTTP
	proxies []netip.Prefix // trusted reverse proxies

	// side are the redirect and metrics servers, stopped by Shutdown.
	sideMu   sync.Mutex
	side     []*http.Server
	stopping bool
	// draining is set when Shutdown starts: /readyz says 503 so that a
	// load balancer stops sending new requests.
	draining atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// New builds a server from cfg: it creates the data directories, opens
// the Maildir store (index in <data>/index) and loads the users file.
// Nothing listens until Serve.
func New(cfg config.Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Data, cfg.MaildirRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	var store mailbox.Store
	var up *auth.Upstream
	if cfg.IMAPUpstream != "" {
		var err error
		if store, up, err = openIMAP(cfg, log); err != nil {
			return nil, err
		}
	} else {
		md, err := maildir.Open(maildir.Options{
			Root:            cfg.MaildirRoot,
			IndexDir:        cfg.IndexDir(),
			Logger:          log.With().Str("component", "maildir").Logger(),
			CreateMissing:   true,
			MaxOpenMessages: int64(cfg.IndexMemoryMessages),
		})
		if err != nil {
			return nil, err
		}
		store = md
	}
	s, err := newWithStoreAuth(cfg, log, store, up)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

// newWithStore wires a server around an open store (tests use memstore).
func newWithStore(cfg config.Config, log zerolog.Logger, store mailbox.Store) (*Server, error) {
	return newWithStoreAuth(cfg, log, store, nil)
}

// newWithStoreAuth is newWithStore with the password check: the users
// file, or with up (the IMAP backend's pass-through login) the upstream
// server, the users file then only naming admins.
func newWithStoreAuth(cfg config.Config, log zerolog.Logger, store mailbox.Store, up *auth.Upstream) (*Server, error) {
	users, err := auth.NewUsers(cfg.Users, auth.Options{Logger: log.With().Str("component", "auth").Logger()})
	if err != nil {
		return nil, err
	}
	var verifier auth.Verifier = users
	if up != nil {
		verifier = up
	}
	sub, err := openSubmitter(cfg, store, log.With().Str("component", "submit").Logger())
	if err != nil {
		return nil, err
	}
	var davSubmit dav.Submitter
	if sub != nil {
		davSubmit = sub
		defer func() {
			if err != nil { // a later step failed: release the queue's lock
				sub.q.Close(context.Background())
			}
		}()
	}
	dh, err := dav.New(dav.Config{
		Address:              func(user string) string { return mailAddress(user, cfg.MailDomain) },
		Submit:               davSubmit,
		Store:                store,
		Logger:               log.With().Str("component", "dav").Logger(),
		Prefix:               Prefix,
		MaxMessageSize:       cfg.MaxMessageSize,
		MaxResponseSize:      cfg.MaxResponseSize,
		MaxXMLBytes:          cfg.MaxXMLBytes,
		MaxXMLElements:       cfg.MaxXMLElements,
		MaxXMLDepth:          cfg.MaxXMLDepth,
		MaxDepthInfinity:     cfg.MaxDepthInfinity,
		AttachmentFolders:    cfg.AttachmentFolders,
		RangeOverResponseCap: cfg.RangeOverResponseCap,
	})
	if err != nil {
		return nil, err
	}
	authLog := log.With().Str("component", "auth").Logger()
	sessOpts := auth.SessionOptions{Users: users, Logger: authLog}
	if up != nil {
		sessOpts = auth.SessionOptions{Verifier: up, OnLogout: up.Forget, Logger: authLog}
	}
	sessions := auth.NewSessions(sessOpts)
	// The auth table of exchange-webdav.md §2.2 lives in auth.Basic: the
	// session cookie is tried before Basic, and browser-style GETs under
	// /exchange/ without credentials go to the OWA logon page.
	basic := auth.NewBasic(verifier, authLog, auth.BasicOptions{
		Before: []auth.Authenticator{sessions},
		Forms:  &auth.FormsOptions{Prefix: Prefix, LogonURL: owa.LogonURL(Prefix)},
	})
	oh, err := owa.New(owa.Options{
		Sessions:     sessions,
		LoginFailed:  basic.LoginFailed,
		Logger:       log.With().Str("component", "owa").Logger(),
		Prefix:       Prefix,
		PublicPrefix: PublicPrefix,
	})
	if err != nil {
		return nil, err
	}
	proxies, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return nil, err
	}
	var certs *certStore
	if cfg.TLSCert != "" {
		if certs, err = newCertStore(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	s := &Server{
		metrics:  metrics.New(log.With().Str("component", "metrics").Logger()),
		certs:    certs,
		proxies:  proxies,
		submit:   sub,
		cfg:      cfg,
		log:      log,
		store:    store,
		users:    users,
		verifier: verifier,
		sessions: sessions,
		auth:     basic,
		owa:      oh,
		dav:      dh,
		mux:      http.NewServeMux(),
	}
	s.limiter = limits.NewLimiter(limitsOptions(s))
	s.mux.Handle(Prefix, s.auth.Wrap(s.limiter.Gate(oh.StartPage(dh))))
	// /public is served as well as /public/: ServeMux would answer the
	// former with a 301, which a PROPFIND does not follow.
	s.mux.Handle(PublicPrefix, s.auth.Wrap(oh.Public()))
	s.mux.Handle(strings.TrimSuffix(PublicPrefix, "/"), s.auth.Wrap(oh.Public()))
	// Forms login (§2.2, and the Exchange 2007 names, §2.3). These are
	// reachable without credentials: they are how one gets them.
	s.mux.Handle(owa.LogonPath, oh.Logon())
	s.mux.Handle(owa.Logon2007Path, oh.Logon())
	s.mux.Handle(owa.AuthPath, oh.Auth())
	s.mux.Handle(owa.Auth2007Path, oh.Auth())
	s.mux.Handle(owa.LogoffPath, oh.Logoff())
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.MetricsListen == "" {
		s.mux.Handle("GET /metrics", s.metricsForAdmins())
	}
	s.mux.HandleFunc("/{$}", s.index)
	if err := s.mountWeb(); err != nil {
		return nil, err
	}

	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          stdlog.New(errorLogWriter{log.With().Str("component", "http").Logger()}, "", 0),
	}
	if certs != nil {
		s.http.TLSConfig = certs.tlsConfig()
	}
	s.registerMetrics()
	return s, nil
}

// Handler returns the complete handler: trusted-proxy rewriting, access
// log and metrics, panic recovery, limits and the routes.
func (s *Server) Handler() http.Handler {
	var routes http.Handler = s.wrapLimits(s.mux)
	if s.activity != nil {
		// Outside the limits, so that throttled requests count too.
		routes = s.activity.Middleware(routes)
	}
	return &proxyTrust{trusted: s.proxies, next: &accessLog{
		log: s.log, next: routes, panics: &s.panics,
		bodyIdle: s.cfg.IdleTimeout, metrics: s.metrics,
	}}
}

// Panics returns how many handler panics were recovered.
func (s *Server) Panics() int64 { return s.panics.Load() }

// Users returns the users set (Len, CacheLen for the credentials cache).
func (s *Server) Users() *auth.Users { return s.users }

// Throttle returns the failed-login throttle (Len for its maps).
func (s *Server) Throttle() *auth.Throttle { return s.auth.Throttle() }

// Sessions returns the forms-login session table (Len for its size).
func (s *Server) Sessions() *auth.Sessions { return s.sessions }

// Serve accepts connections on ln until Shutdown: HTTPS when a
// certificate is configured, plain HTTP otherwise. It returns nil after a
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.certs != nil {
		// The certificate comes from TLSConfig.GetCertificate; ServeTLS
		// adds the ALPN protocols (h2, http/1.1).
		err = s.http.ServeTLS(ln, "", "")
	} else {
		err = s.http.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections on every listener, waits for
// requests in progress (downloads included) until ctx ends, then stops
// the mail queue and closes the store, which flushes and closes the
// index. Requests still running when ctx ends have their connections
// closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		s.sideMu.Lock()
		s.stopping = true
		side := s.side
		s.sideMu.Unlock()
		for _, srv := range side {
			// Redirects and scrapes are short: close them at once.
			srv.Close()
		}
		err := s.http.Shutdown(ctx)
		if err != nil {
			// Deadline passed: cut the remaining connections so their
			// handlers see cancelled contexts before the store closes.
			err = errors.Join(err, s.http.Close())
		}
		if s.submit != nil {
			// Deliveries in flight finish or are cut; they resume at the
			// next start (the queue is persistent).
			err = errors.Join(err, s.submit.q.Close(ctx))
		}
		s.closeErr = errors.Join(err, s.store.Close())
	})
	return s.closeErr
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("shutting down\n"))
		return
	}
	if err := s.store.Ready(ctx); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("store not ready")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

const indexPage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>davmail</title></head>
<body>
<h1>davmail</h1>
<p>This is davmail, a WebDAV gateway to Maildir mailboxes.</p>
<p><a href="/web/">Read your mail in the browser</a>.</p>
<p>Mount <code>%[1]s&lt;user&gt;/</code> with a WebDAV client
(Finder, Windows Explorer, cadaver, rclone, DavMail) and log in with your
davmail user name and password. Folders are collections; messages are
<code>.EML</code> files.</p>
<p>Health: <a href="/healthz">/healthz</a>, readiness: <a href="/readyz">/readyz</a>.</p>
</body>
</html>
`

// index answers "/": a page saying what this is for browsers, and for
// OPTIONS the DAV headers, since Windows' WebDAV redirector probes the
// server root with OPTIONS before it talks to the mount point.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	const allow = "OPTIONS, GET, HEAD"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, indexPage, Prefix)
	case http.MethodOptions:
		w.Header().Set("Allow", allow)
		w.Header().Set("DAV", "1, 2")
		w.Header().Set("MS-Author-Via", "DAV")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", allow)
		http.Error(w, "405 Method Not Allowed: the mailboxes are under "+Prefix, http.StatusMethodNotAllowed)
	}
}

// errorLogWriter routes net/http's internal log (TLS handshake errors,
// accept errors, bad requests it answers itself) to zerolog.
type errorLogWriter struct{ log zerolog.Logger }

func (e errorLogWriter) Write(p []byte) (int, error) {
	e.log.Warn().Msg(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
