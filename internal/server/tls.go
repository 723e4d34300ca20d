package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// certStore holds the serving certificate and swaps it atomically on
// reload: tls.Config.GetCertificate reads the current one at each
// handshake, so new connections get the new certificate while connections
// already open keep the session they negotiated and are never dropped.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// newCertStore loads the pair once; a bad pair fails startup.
func newCertStore(certFile, keyFile string) (*certStore, error) {
	c := &certStore{certFile: certFile, keyFile: keyFile}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the pair again and swaps it in. On error the previous
// certificate stays in use.
func (c *certStore) reload() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil { // Go 1.23+ fills Leaf; parse it if not
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing TLS certificate %s: %w", c.certFile, err)
		}
	}
	c.cur.Store(&cert)
	return &cert, nil
}

func (c *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// notAfter is the current certificate's expiry.
func (c *certStore) notAfter() time.Time { return c.cur.Load().Leaf.NotAfter }

// tlsConfig is the server's TLS configuration. TLS 1.2 is the floor: the
// clients that matter (Windows 10+, macOS, rclone, cadaver with current
// OpenSSL/GnuTLS) all speak it, and older versions have known attacks.
func (c *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: c.getCertificate,
		MinVersion:     tls.VersionTLS12,
	}
}

// ErrNoTLS is returned by ReloadTLS when the server serves plain HTTP.
var ErrNoTLS = errors.New("no TLS certificate configured (tls-cert, tls-key)")

// TLS reports whether the server serves HTTPS.
func (s *Server) TLS() bool { return s.certs != nil }

// ReloadTLS reads the certificate and key files again (after a renewal;
// cmd/davmail calls it on SIGHUP). New connections get the new
// certificate; open ones keep theirs. On error the old certificate stays
// in use.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return ErrNoTLS
	}
	cert, err := s.certs.reload()
	if err != nil {
		s.log.Error().Err(err).Msg("TLS certificate reload failed; keeping the previous certificate")
		return err
	}
	s.log.Info().Str("subject", cert.Leaf.Subject.String()).Time("not_after", cert.Leaf.NotAfter).
		Str("cert", s.certs.certFile).Msg("TLS certificate reloaded")
	return nil
}

// redirectHandler answers every request on the plain-HTTP redirect
// listener with a redirect to the same host and path over HTTPS on
// httpsPort. /healthz is answered directly, so a probe that only speaks
// HTTP still sees the process.
func (s *Server) redirectHandler(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			s.healthz(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		} else {
			host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // IPv6 literal without port
		}
		if host == "" || strings.ContainsAny(host, "/\\@ []") {
			// No usable Host (HTTP/1.0, or junk): nothing to redirect to.
			http.Error(w, "400 Bad Request: this port only redirects to HTTPS and needs a Host header", http.StatusBadRequest)
			return
		}
		if httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		target := "https://" + host + r.URL.RequestURI()
		// 301 for GET/HEAD (every client knows it); 308 for the rest, so
		// that a PROPFIND or PUT is repeated with its method and body
		// (RFC 9110 §15.4.9) instead of being turned into a GET.
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		http.Redirect(w, r, target, code)
	})
}

// ServeRedirect answers plain HTTP on ln with redirects to HTTPS on the
// port of httpsAddr (the main listener's address) until Shutdown. It
// returns nil after a Shutdown.
func (s *Server) ServeRedirect(ln net.Listener, httpsAddr string) error {
	_, port, err := net.SplitHostPort(httpsAddr)
	if err != nil {
		return fmt.Errorf("redirect: HTTPS address %q: %w", httpsAddr, err)
	}
	srv := s.sideServer(&accessLog{log: s.log.With().Str("listener", "redirect").Logger(),
		next: s.redirectHandler(port), panics: &s.panics, bodyIdle: s.cfg.IdleTimeout})
	return s.serveSide(srv, ln)
}

// sideServer is an http.Server for the redirect and metrics listeners,
// with the main server's timeouts.
func (s *Server) sideServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadHeaderTimeout, // their requests have no bodies to wait for
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          s.http.ErrorLog,
	}
}

// serveSide runs srv on ln as one of the servers Shutdown stops.
func (s *Server) serveSide(srv *http.Server, ln net.Listener) error {
	s.sideMu.Lock()
	if s.stopping {
		s.sideMu.Unlock()
		ln.Close()
		return nil
	}
	s.side = append(s.side, srv)
	s.sideMu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
