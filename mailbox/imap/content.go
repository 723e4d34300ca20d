package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/davmail/davmail/mailbox"
)

// Open streams message bytes with partial fetches, BODY.PEEK[]<off.len>
// (RFC 3501 §6.4.5), in windows that double from minWindow up to
// maxWindow while reading goes on sequentially. Memory per open message
// is the client's buffers, whatever the message size: nothing is held in
// memory or spooled to disk. A Seek or ReadAt elsewhere ends the current
// window: its rest is drained when short (≤ maxDrain), otherwise the
// connection is closed, which is cheaper than reading megabytes to throw
// them away.
const (
	// minWindow: 256 KiB answers a small message, or the header of a big
	// one, in one round trip.
	minWindow = 256 << 10
	// maxWindow: 16 MiB windows make the per-window round trip (well
	// under a millisecond on a LAN) negligible against the transfer,
	// while a window stays cheap to abandon.
	maxWindow = 16 << 20
	// maxDrain: reading up to 1 MiB to keep a connection is cheaper than
	// a new LOGIN.
	maxDrain = 1 << 20
)

// content is an open message (mailbox.Content).
type content struct {
	m           *mbox
	ctx         context.Context
	upstream    string
	uidValidity uint32
	uid         uint32
	size        int64

	mu     sync.Mutex
	pos    int64 // Read/Seek position
	cn     *conn
	cmd    *imapclient.FetchCommand
	msg    *imapclient.FetchMessageData
	lit    imapv2.LiteralReader
	at     int64 // offset of the next byte lit yields
	end    int64 // offset after the window
	window int64
	closed bool
}

// Open implements mailbox.Mailbox. No upstream I/O happens until the
// first read.
func (m *mbox) Open(ctx context.Context, path, name string) (mailbox.Content, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	f, i, err := m.lookup(ctx, path, name)
	if err != nil {
		return nil, err
	}
	msg := f.msgs[i]
	return &content{
		m: m, ctx: ctx, upstream: m.upstream(path), uidValidity: f.UIDValidity,
		uid: msg.UID, size: msg.Size, window: minWindow,
	}, nil
}

// Size implements mailbox.Content.
func (c *content) Size() int64 { return c.size }

// Read implements io.Reader.
func (c *content) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos >= c.size {
		return 0, io.EOF
	}
	n, err := c.readLocked(p, c.pos)
	c.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt: it fills p or returns an error.
func (c *content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("imap: negative offset")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(p) {
		k, err := c.readLocked(p[n:], off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Seek implements io.Seeker; it does no I/O.
func (c *content) Seek(offset int64, whence int) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = c.pos + offset
	case io.SeekEnd:
		abs = c.size + offset
	default:
		return 0, errors.New("imap: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("imap: negative position")
	}
	c.pos = abs
	return abs, nil
}

// Close implements io.Closer: it ends the window and returns the
// connection to the pool.
func (c *content) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.endWindow()
	if c.cn != nil {
		c.m.pool.release(c.cn, time.Now())
		c.cn = nil
	}
	return nil
}

// readLocked reads at off into p (at most up to the window's end).
func (c *content) readLocked(p []byte, off int64) (int, error) {
	if c.closed {
		return 0, errors.New("imap: read of a closed message")
	}
	if off >= c.size {
		return 0, io.EOF
	}
	if c.lit == nil || off != c.at || c.at >= c.end {
		c.endWindow()
		if err := c.startWindow(off); err != nil {
			return 0, err
		}
	}
	if rest := c.end - c.at; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := io.ReadFull(c.lit, p)
	c.at += int64(n)
	if err != nil {
		if c.cn != nil {
			c.cn.broken = true
		}
		c.endWindow()
		if ce := c.ctx.Err(); ce != nil {
			err = ce
		}
		return n, fmt.Errorf("imap: reading message %d: %w", c.uid, err)
	}
	return n, nil
}

// startWindow sends the partial FETCH for the window starting at off.
func (c *content) startWindow(off int64) error {
	if c.cn == nil || !c.cn.alive() {
		if c.cn != nil {
			c.m.pool.release(c.cn, time.Now())
			c.cn = nil
		}
		cn, err := c.m.pool.acquire(c.ctx, c.m.s)
		if err != nil {
			return err
		}
		c.cn = cn
	}
	sd, err := c.cn.selectBox(c.ctx, c.upstream)
	if err != nil {
		return fmt.Errorf("imap: opening %q: %w", c.upstream, err)
	}
	if sd.UIDValidity != c.uidValidity {
		return errUIDValidity
	}
	n := min(c.window, c.size-off)
	c.window = min(c.window*2, maxWindow)
	section := &imapv2.FetchItemBodySection{Peek: true, Partial: &imapv2.SectionPartial{Offset: off, Size: n}}
	if off == 0 {
		// A read from the start (a plain GET) takes the whole message in
		// one FETCH: Dovecot serves BODY[] about twice as fast as the
		// same bytes in partial windows (BenchmarkOpenRead against
		// BenchmarkPlainFetch), and abandoning it costs a reconnect.
		section.Partial = nil
		c.window = maxWindow
	}
	c.cmd = c.cn.c.Fetch(imapv2.UIDSetNum(imapv2.UID(c.uid)), &imapv2.FetchOptions{UID: true, BodySection: []*imapv2.FetchItemBodySection{section}})
	msg := c.cmd.Next()
	for msg != nil {
		item := msg.Next()
		if item == nil {
			break
		}
		if bs, ok := item.(imapclient.FetchItemDataBodySection); ok && bs.Literal != nil {
			c.msg, c.lit, c.at, c.end = msg, bs.Literal, off, off+bs.Literal.Size()
			if bs.Literal.Size() == 0 {
				c.endWindow()
				return fmt.Errorf("imap: message %d: upstream has no bytes at %d of %d: %w", c.uid, off, c.size, io.ErrUnexpectedEOF)
			}
			return nil
		}
	}
	err = c.cmd.Close()
	c.cmd = nil
	if err != nil && !isIMAPError(err) {
		c.cn.broken = true
	}
	if err == nil {
		err = mailbox.ErrNotFound // expunged upstream: FETCH answers nothing
	}
	return fmt.Errorf("imap: message %d of %q: %w", c.uid, c.upstream, err)
}

// endWindow finishes the current FETCH: drains a short rest, or closes
// the connection when the rest is long.
func (c *content) endWindow() {
	if c.cmd == nil {
		return
	}
	if c.end-c.at > maxDrain && c.cn != nil {
		c.cn.abort() // the reads below then fail at once
	}
	if c.lit != nil {
		if _, err := io.Copy(io.Discard, c.lit); err != nil && c.cn != nil {
			c.cn.broken = true
		}
		// The client's decoder waits until every item of the message is
		// consumed (a UID after the literal, for one).
		if c.msg != nil {
			for it := c.msg.Next(); it != nil; it = c.msg.Next() {
				if bs, ok := it.(imapclient.FetchItemDataBodySection); ok && bs.Literal != nil {
					io.Copy(io.Discard, bs.Literal)
				}
			}
		}
	}
	if err := c.cmd.Close(); err != nil && !isIMAPError(err) && c.cn != nil {
		c.cn.broken = true
	}
	c.cmd, c.msg, c.lit = nil, nil, nil
}
