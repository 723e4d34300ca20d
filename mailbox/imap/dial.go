package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TLSMode is how the gateway talks to the upstream server.
type TLSMode string

// The TLS modes of --imap-tls.
const (
	// TLSNone is plain IMAP. Credentials cross the wire in clear: use it
	// only on loopback or a private link.
	TLSNone TLSMode = "none"
	// TLSStartTLS upgrades a plain connection with STARTTLS (RFC 3501
	// §6.2.1) before logging in; a server without it is refused.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit is IMAPS: TLS from the first byte (RFC 8314 §3.3).
	TLSImplicit TLSMode = "tls"
)

// ParseTLSMode checks a --imap-tls value.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(strings.TrimSpace(s))); m {
	case TLSNone, TLSStartTLS, TLSImplicit:
		return m, nil
	case "":
		return TLSNone, nil
	}
	return "", fmt.Errorf("imap: TLS mode %q: want none, starttls or tls", s)
}

// ErrLoginFailed is the error of credentials the upstream server refused
// (a tagged NO to LOGIN, RFC 3501 §6.2.3). Any other login error means
// the server could not be asked (network, TLS, greeting).
var ErrLoginFailed = errors.New("imap: upstream refused the credentials")

// ErrNoCredentials is returned when a connection must be opened for a
// user whose password the gateway no longer holds (it forgot it after the
// idle time, see auth.Upstream): the user must authenticate again.
var ErrNoCredentials = errors.New("imap: no upstream credentials held for this user")

// defaultDialTimeout bounds connect, TLS handshake, greeting and LOGIN:
// 10 s is ample on a LAN and short enough that a dead upstream fails a
// request instead of hanging it (the HTTP server's own timeouts are
// longer).
const defaultDialTimeout = 10 * time.Second

// Dialer opens logged-in connections to the upstream server. The zero
// TLS is TLSNone.
type Dialer struct {
	// Addr is HOST:PORT of the upstream IMAP server.
	Addr string
	// TLS selects plain, STARTTLS or implicit TLS.
	TLS TLSMode
	// TLSConfig for STARTTLS and implicit TLS; nil verifies the server
	// against the system roots with ServerName from Addr.
	TLSConfig *tls.Config
	// Timeout bounds connect, greeting, TLS and LOGIN. 0 means 10 s.
	Timeout time.Duration
}

// dial connects, reads the greeting and logs in as login. ctx bounds the
// whole exchange together with d.Timeout. A refused login is
// ErrLoginFailed. The password is sent only in the LOGIN command and is
// never logged (no DebugWriter is set).
func (d *Dialer) dial(ctx context.Context, login, password string) (*imapclient.Client, net.Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nd := &net.Dialer{Timeout: timeout}
	raw, err := nd.DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("imap: dial %s: %w", d.Addr, err)
	}
	// Until LOGIN completes, ctx's end closes the socket, which unblocks
	// every read below.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	// Envelopes are not decoded by the client: the index reads the header
	// fields itself with convert.ScanEnvelope (sync.go).
	opts := &imapclient.Options{}
	tlsConf := d.TLSConfig
	if tlsConf == nil {
		host, _, _ := net.SplitHostPort(d.Addr)
		tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	opts.TLSConfig = tlsConf
	var c *imapclient.Client
	switch d.TLS {
	case TLSImplicit:
		tc := tls.Client(raw, tlsConf.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, fmt.Errorf("imap: TLS with %s: %w", d.Addr, err)
		}
		c = imapclient.New(tc, opts)
	case TLSStartTLS:
		c, err = imapclient.NewStartTLS(raw, opts)
		if err != nil {
			raw.Close()
			return nil, nil, fmt.Errorf("imap: STARTTLS with %s: %w", d.Addr, err)
		}
	default:
		c = imapclient.New(raw, opts)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("imap: greeting of %s: %w", d.Addr, ctxErr(ctx, err))
	}
	if err := c.Login(login, password).Wait(); err != nil {
		c.Close()
		var ie *imapv2.Error
		if errors.As(err, &ie) {
			return nil, nil, fmt.Errorf("%w (%s)", ErrLoginFailed, ie.Code)
		}
		return nil, nil, fmt.Errorf("imap: login at %s: %w", d.Addr, ctxErr(ctx, err))
	}
	if !stop() {
		c.Close()
		return nil, nil, ctx.Err()
	}
	return c, raw, nil
}

// Login checks login and password against the upstream server and logs
// out again. It is what auth.Upstream calls on a credential-cache miss.
func (d *Dialer) Login(ctx context.Context, login, password string) error {
	c, _, err := d.dial(ctx, login, password)
	if err != nil {
		return err
	}
	_ = c.Logout().Wait() // the answer to LOGOUT changes nothing
	return c.Close()
}

// Ping connects and reads the greeting without logging in (Store.Ready).
func (d *Dialer) Ping(ctx context.Context) error {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		return fmt.Errorf("imap: upstream %s: %w", d.Addr, err)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var c *imapclient.Client
	if d.TLS == TLSImplicit {
		conf := d.TLSConfig
		if conf == nil {
			host, _, _ := net.SplitHostPort(d.Addr)
			conf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		c = imapclient.New(tls.Client(raw, conf.Clone()), nil)
	} else {
		c = imapclient.New(raw, nil)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return fmt.Errorf("imap: upstream %s: %w", d.Addr, ctxErr(ctx, err))
	}
	return nil
}

// ctxErr prefers ctx's error over the I/O error its cancellation caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
