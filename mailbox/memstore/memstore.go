// Package memstore is an in-memory mailbox.Store, for tests and for
// "davmail localserve". It implements the full contract of package
// mailbox exactly as the conformance suite in mailbox/mailboxtest pins it
// down, so that protocol layers can be tested against it and then trusted
// against the Maildir backend.
//
// Everything lives in memory and is lost on Close or exit. Because it may
// serve a real (loopback) client, the store is bounded like every other
// part of davmail: the number of mailboxes, folders and messages and the
// total message bytes are capped (Options). A refusal is a *limits.Error
// with status 507 Insufficient Storage (RFC 4918 §11.5). Nothing is ever
// evicted: dropping mail to make room would lose data, so the store
// refuses instead, and Len and StoredBytes tell how full it is.
//
// Concurrency: one RWMutex per mailbox guards its tree; the map of
// mailboxes has its own mutex. Message bytes are immutable once stored,
// so Open hands out readers over them without holding any lock, and Copy
// shares them.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// Defaults for Options. They are far above what tests and a localserve
// session use, and low enough that a runaway client cannot exhaust the
// host's memory through a store meant for development.
const (
	// DefaultMaxUsers: a test run or localserve has a handful of users.
	DefaultMaxUsers = 1024
	// DefaultMaxFolders per mailbox: real mailboxes rarely pass a few
	// hundred folders; mkcorpus writes six.
	DefaultMaxFolders = 10000
	// DefaultMaxMessages per mailbox: ten times mkcorpus's big-folder
	// stress setting, and each message costs a few hundred bytes of
	// metadata even when empty.
	DefaultMaxMessages = 1000000
	// DefaultMaxBytes of message content for the whole store: 1 GiB holds
	// any test corpus (mkcorpus with -oversize 60MiB and -large included).
	DefaultMaxBytes = 1 << 30
)

// Options bound a Store. For every field, 0 means the default above and
// -1 means unlimited (the go-message convention, style.md §3).
type Options struct {
	MaxUsers    int   // mailboxes in the store
	MaxFolders  int   // folders per mailbox, root excluded
	MaxMessages int   // messages per mailbox
	MaxBytes    int64 // message bytes in the whole store
}

func (o Options) withDefaults() Options {
	if o.MaxUsers == 0 {
		o.MaxUsers = DefaultMaxUsers
	}
	if o.MaxFolders == 0 {
		o.MaxFolders = DefaultMaxFolders
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = DefaultMaxMessages
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// errClosed is returned by every call on a closed Store.
var errClosed = errors.New("memstore: store is closed")

// Store is an in-memory mailbox.Store. Create it with New or
// NewWithOptions; the zero value is not usable.
type Store struct {
	opts Options

	mu     sync.Mutex
	users  map[string]*mbox // keyed by user name; capped by opts.MaxUsers, never evicted
	closed bool

	// bytes is the sum of the sizes of all stored messages.
	bytes atomic.Int64
}

var _ mailbox.Store = (*Store)(nil)

// New returns an empty Store with the default Options.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty Store bounded by opts.
func NewWithOptions(opts Options) *Store {
	return &Store{opts: opts.withDefaults(), users: make(map[string]*mbox)}
}

// Mailbox returns user's mailbox, creating it with an empty INBOX on first
// use. The same user always gets the same state.
func (s *Store) Mailbox(ctx context.Context, user string) (mailbox.Mailbox, error) {
	return s.mailbox(ctx, user)
}

func (s *Store) mailbox(ctx context.Context, user string) (*mbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !mailbox.ValidSegment(user) {
		return nil, fmt.Errorf("memstore: user %q: %w", user, mailbox.ErrInvalidName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if mb := s.users[user]; mb != nil {
		return mb, nil
	}
	if s.opts.MaxUsers >= 0 && len(s.users) >= s.opts.MaxUsers {
		return nil, full("memstore-max-users", int64(s.opts.MaxUsers), int64(len(s.users)+1), "mailboxes")
	}
	mb := newMbox(s, user)
	s.users[user] = mb
	return mb, nil
}

// Ready returns nil while the store is open: there is nothing to reach.
func (s *Store) Ready(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return ctx.Err()
}

// Close drops every mailbox. Later calls on the Store fail; Mailbox
// handles obtained before keep working on their (now detached) state
// until released. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.users = nil
	return nil
}

// Len returns the number of mailboxes in the store.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users)
}

// StoredBytes returns the sum of the sizes of all messages in the store,
// the figure Options.MaxBytes caps.
func (s *Store) StoredBytes() int64 { return s.bytes.Load() }

// reserve accounts n more message bytes, or refuses with 507 when the
// store would pass MaxBytes.
func (s *Store) reserve(n int64) error {
	if n == 0 {
		return nil
	}
	after := s.bytes.Add(n)
	if s.opts.MaxBytes >= 0 && after > s.opts.MaxBytes {
		s.bytes.Add(-n)
		return full("memstore-max-bytes", s.opts.MaxBytes, after, "")
	}
	return nil
}

func (s *Store) release(n int64) { s.bytes.Add(-n) }

// full returns the refusal of a store cap: 507 Insufficient Storage
// (RFC 4918 §11.5), the status WebDAV has for "no room for this".
func full(limit string, value, size int64, unit string) *limits.Error {
	kind := limits.ErrTooLarge
	if unit != "" {
		kind = limits.ErrTooComplex
	}
	return &limits.Error{Kind: kind, Limit: limit, Value: value, Size: size, Unit: unit, Status: http.StatusInsufficientStorage}
}

// Seed appends raw to folder in user's mailbox, creating the mailbox and
// the folder (with its missing parents) as needed. It is a convenience for
// tests and localserve sample data; opts are those of Append.
func (s *Store) Seed(user, folder string, raw []byte, opts mailbox.AppendOptions) (mailbox.Message, error) {
	ctx := context.Background()
	mb, err := s.mailbox(ctx, user)
	if err != nil {
		return mailbox.Message{}, err
	}
	if folder == "" {
		return mailbox.Message{}, fmt.Errorf("memstore: seed: the root holds no messages: %w", mailbox.ErrForbidden)
	}
	if !validPath(folder) {
		return mailbox.Message{}, errFolder(folder, mailbox.ErrInvalidName)
	}
	// Create the missing ancestors, top down, then the folder itself.
	for i := 0; i <= len(folder); i++ {
		if i < len(folder) && folder[i] != '/' {
			continue
		}
		err := mb.CreateFolder(ctx, folder[:i])
		if err != nil && !errors.Is(err, mailbox.ErrExists) {
			return mailbox.Message{}, err
		}
	}
	return mb.Append(ctx, folder, bytes.NewReader(raw), opts)
}

// MustSeed is Seed with default options that panics on error. It is meant
// for test set-up only, where a failure is a bug in the test.
func (s *Store) MustSeed(user, folder string, raw []byte) mailbox.Message {
	m, err := s.Seed(user, folder, raw, mailbox.AppendOptions{})
	if err != nil {
		panic(fmt.Sprintf("memstore: MustSeed(%q, %q): %v", user, folder, err))
	}
	return m
}

// content is an open message: a reader over immutable bytes.
type content struct {
	r      *bytes.Reader
	closed atomic.Bool
}

var errContentClosed = errors.New("memstore: content is closed")

func (c *content) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, errContentClosed
	}
	return c.r.Read(p)
}

func (c *content) ReadAt(p []byte, off int64) (int, error) {
	if c.closed.Load() {
		return 0, errContentClosed
	}
	return c.r.ReadAt(p, off)
}

func (c *content) Seek(off int64, whence int) (int64, error) {
	if c.closed.Load() {
		return 0, errContentClosed
	}
	return c.r.Seek(off, whence)
}

func (c *content) Size() int64 { return c.r.Size() }

func (c *content) Close() error {
	c.closed.Store(true)
	return nil
}

var _ mailbox.Content = (*content)(nil)

// ctxReader fails a read as soon as ctx is done, so an Append whose
// client went away stops reading and stores nothing.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
