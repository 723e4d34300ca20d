package imap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// conn is one logged-in upstream connection. It is used by one goroutine
// at a time (whoever acquired it from the pool).
type conn struct {
	c *imapclient.Client
	// raw is the socket under c. Aborting closes it, not c: the client's
	// Close waits for its reader, which may be blocked handing over a
	// literal nobody will read.
	raw net.Conn
	// selected is the upstream name of the mailbox selected with
	// CONDSTORE, "" when none; sel is what SELECT answered.
	selected string
	sel      *imapv2.SelectData
	idleFrom time.Time
	broken   bool
}

// do runs one exchange on cn with ctx's cancellation closing the
// connection (the only way to interrupt a blocked read), and marks the
// connection broken on any error that is not a tagged NO or BAD.
func (cn *conn) do(ctx context.Context, fn func(c *imapclient.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, cn.abort)
	err := fn(cn.c)
	if !stop() {
		cn.broken = true
		return ctxErr(ctx, err)
	}
	if err != nil && !isIMAPError(err) {
		cn.broken = true
	}
	return err
}

// abort closes the socket and marks the connection broken.
func (cn *conn) abort() {
	cn.broken = true
	cn.raw.Close()
}

// isIMAPError reports whether err is a server's tagged NO or BAD: the
// connection is still usable.
func isIMAPError(err error) bool {
	var ie *imapv2.Error
	return errors.As(err, &ie)
}

// imapCode returns the response code of a NO/BAD, "" otherwise.
func imapCode(err error) imapv2.ResponseCode {
	var ie *imapv2.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// alive reports whether the client's reader is still running (the server
// did not close the connection, e.g. by its autologout timer).
func (cn *conn) alive() bool {
	if cn.broken {
		return false
	}
	select {
	case <-cn.c.Closed():
		return false
	default:
		return true
	}
}

// selectBox selects name (read-write, CONDSTORE) unless it already is.
func (cn *conn) selectBox(ctx context.Context, name string) (*imapv2.SelectData, error) {
	if cn.selected == name && cn.sel != nil {
		return cn.sel, nil
	}
	var sd *imapv2.SelectData
	err := cn.do(ctx, func(c *imapclient.Client) (err error) {
		sd, err = c.Select(name, &imapv2.SelectOptions{CondStore: true}).Wait()
		return err
	})
	if err != nil {
		cn.selected, cn.sel = "", nil
		return nil, err
	}
	cn.selected, cn.sel = name, sd
	return sd, nil
}

// syncView closes the selected mailbox (UNSELECT, RFC 3691) before a
// STATUS or LIST-STATUS: Dovecot answers STATUS of the selected mailbox
// from the session's view, which lags changes made by other sessions
// until a command syncs it. The next use selects again and learns fresh
// values.
func (cn *conn) syncView(ctx context.Context) error {
	if cn.selected == "" {
		return nil
	}
	err := cn.do(ctx, func(c *imapclient.Client) error { return c.Unselect().Wait() })
	cn.selected, cn.sel = "", nil
	return err
}

// reselect forgets the selection so the next selectBox sends SELECT again
// (to learn fresh UIDNEXT/HIGHESTMODSEQ values).
func (cn *conn) reselect() { cn.sel = nil }

// pool holds one user's connections: at most max open (idle or in use),
// idle ones closed after the idle timeout.
type pool struct {
	login string
	sem   chan struct{} // one token per open or opening connection

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool    // the store closed: released connections are logged out
}

func newPool(login string, max int) *pool {
	return &pool{login: login, sem: make(chan struct{}, max)}
}

// errPoolClosed is returned after Store.Close.
var errPoolClosed = errors.New("imap: store closed")

// acquire returns an idle live connection or dials a new one, waiting
// for a slot while the user has max connections in use.
func (p *pool) acquire(ctx context.Context, s *Store) (*conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("imap: waiting for a connection slot: %w", ctx.Err())
	case <-s.done:
		return nil, errPoolClosed
	}
	p.mu.Lock()
	for len(p.idle) > 0 {
		cn := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if cn.alive() {
			p.mu.Unlock()
			return cn, nil
		}
		cn.raw.Close()
		cn.c.Close()
	}
	p.mu.Unlock()
	pw, ok := s.creds.Password(p.login)
	if !ok {
		<-p.sem
		return nil, ErrNoCredentials
	}
	c, raw, err := s.dialer.dial(ctx, s.loginName(p.login), pw)
	if err != nil {
		<-p.sem
		return nil, err
	}
	s.dials.Add(1)
	return &conn{c: c, raw: raw}, nil
}

// release returns cn to the pool, or closes it when it is broken.
func (p *pool) release(cn *conn, now time.Time) {
	if cn == nil {
		return
	}
	p.mu.Lock()
	keep := cn.alive() && !p.closed
	if keep {
		cn.idleFrom = now
		p.idle = append(p.idle, cn)
	}
	p.mu.Unlock()
	if !keep {
		cn.raw.Close()
		cn.c.Close()
	}
	<-p.sem
}

// sweep closes connections idle since before cutoff (all when cutoff is
// zero... or far in the future) with a LOGOUT, and reports how many stay.
func (p *pool) sweep(cutoff time.Time) int {
	p.mu.Lock()
	var old []*conn
	keep := p.idle[:0]
	for _, cn := range p.idle {
		if cn.idleFrom.Before(cutoff) || !cn.alive() {
			old = append(old, cn)
		} else {
			keep = append(keep, cn)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	n := len(keep)
	p.mu.Unlock()
	for _, cn := range old {
		logout(cn)
	}
	return n
}

// logout says goodbye and closes, bounded in time so that a dead server
// cannot hold Close.
func logout(cn *conn) {
	if cn.alive() {
		done := make(chan struct{})
		go func() {
			_ = cn.c.Logout().Wait()
			close(done)
		}()
		t := time.NewTimer(logoutWait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	cn.c.Close()
}

// logoutWait bounds the LOGOUT exchange at close: a healthy server
// answers in well under a millisecond on a LAN.
const logoutWait = 2 * time.Second
