package imap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/mailbox"
)

// Credentials gives the store the password to log in upstream as a user.
// auth.Upstream implements it: it holds the passwords of users who
// authenticated recently, in memory only.
type Credentials interface {
	// Password returns user's password, false when none is held.
	Password(user string) (string, bool)
}

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Dialer reaches the upstream server. Required.
	Dialer *Dialer
	// IndexDir holds one bbolt index per user (<IndexDir>/<user>.db).
	// Required.
	IndexDir string
	// Credentials supplies passwords when a connection must be opened.
	// Required.
	Credentials Credentials
	// LoginName maps a davmail user to the upstream login name (for
	// example adding "@example.org"). Default: the same name.
	LoginName func(user string) string
	// MaxConnsPerUser caps one user's upstream connections (idle and in
	// use). Default 4: one for listings and writes (they are serialised
	// per user) and three for concurrent downloads, well under Dovecot's
	// mail_max_userip_connections (10).
	MaxConnsPerUser int
	// IdleTimeout closes connections unused this long. Default 5 min:
	// far under the 30-minute autologout RFC 3501 §5.4 allows servers,
	// long enough that a browsing user keeps the same connection.
	IdleTimeout time.Duration
	// MaxMessagesInMemory caps the messages whose index entries the
	// users' mailboxes hold in memory together; past it the least
	// recently used idle mailboxes are unloaded (index dropped, file
	// closed, reloaded on next use). Mailboxes idle longer than
	// IdleTimeout are unloaded too. Default DefaultMaxMessagesInMemory.
	MaxMessagesInMemory int64
	// Logger receives connection and sync events (never credentials).
	Logger zerolog.Logger
}

// Defaults of Options.
const (
	DefaultMaxConnsPerUser = 4
	DefaultIdleTimeout     = 5 * time.Minute
	// DefaultMaxMessagesInMemory is the Maildir backend's budget
	// (maildir.DefaultMaxOpenMessages): about 1.2 GiB of index entries.
	DefaultMaxMessagesInMemory = 2_000_000
)

// Store is the IMAP-backed mailbox.Store. It is safe for concurrent use.
type Store struct {
	dialer    *Dialer
	indexDir  string
	creds     Credentials
	loginName func(string) string
	maxConns  int
	idle      time.Duration
	log       zerolog.Logger

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	users  map[string]*mbox
	pools  map[string]*pool
	closed bool

	maxMsgs int64
	inMem   atomic.Int64 // messages held in memory by the mailboxes (MessagesInMemory)

	dials   atomic.Int64 // connections opened (Stats)
	fetches atomic.Int64 // FETCH commands for new messages' metadata (Stats)
	selects atomic.Int64 // SELECT commands (Stats)
}

// New returns a store. It starts one goroutine that closes idle
// connections; Close stops it.
func New(opts Options) (*Store, error) {
	if opts.Dialer == nil || opts.Dialer.Addr == "" {
		return nil, errors.New("imap: Options.Dialer with an Addr is required")
	}
	if opts.IndexDir == "" {
		return nil, errors.New("imap: Options.IndexDir is required")
	}
	if opts.Credentials == nil {
		return nil, errors.New("imap: Options.Credentials is required")
	}
	if opts.LoginName == nil {
		opts.LoginName = func(u string) string { return u }
	}
	if opts.MaxConnsPerUser <= 0 {
		opts.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxMessagesInMemory <= 0 {
		opts.MaxMessagesInMemory = DefaultMaxMessagesInMemory
	}
	if err := os.MkdirAll(opts.IndexDir, 0o700); err != nil {
		return nil, fmt.Errorf("imap: index dir: %w", err)
	}
	s := &Store{
		dialer: opts.Dialer, indexDir: opts.IndexDir, creds: opts.Credentials,
		loginName: opts.LoginName, maxConns: opts.MaxConnsPerUser, idle: opts.IdleTimeout,
		maxMsgs: opts.MaxMessagesInMemory,
		log:     opts.Logger,
		done:    make(chan struct{}), users: map[string]*mbox{}, pools: map[string]*pool{},
	}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// janitor closes idle connections past the idle timeout, checking at a
// quarter of it so that none lives more than 1.25 timeouts.
func (s *Store) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(s.idle / 4)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.mu.Lock()
			pools := make([]*pool, 0, len(s.pools))
			for _, p := range s.pools {
				pools = append(pools, p)
			}
			s.mu.Unlock()
			for _, p := range pools {
				p.sweep(now.Add(-s.idle))
			}
			s.unloadIdle(now.Add(-s.idle))
		}
	}
}

// MessagesInMemory returns the messages whose index entries the users'
// mailboxes hold in memory (bounded by Options.MaxMessagesInMemory).
func (s *Store) MessagesInMemory() int64 { return s.inMem.Load() }

// MaxMessagesInMemory returns the budget (Options.MaxMessagesInMemory,
// defaults applied).
func (s *Store) MaxMessagesInMemory() int64 { return s.maxMsgs }

// loadedMboxes returns the mailboxes holding messages in memory, least
// recently used first, without keep.
func (s *Store) loadedMboxes(keep *mbox) []*mbox {
	s.mu.Lock()
	out := make([]*mbox, 0, len(s.users))
	for _, m := range s.users {
		if m != keep && m.inMem.Load() > 0 {
			out = append(out, m)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *mbox) int { return cmp.Compare(a.lastUsed.Load(), b.lastUsed.Load()) })
	return out
}

// trim unloads idle mailboxes, least recently used first, while the
// mailboxes hold more messages than the budget; keep (the mailbox just
// used) stays, however large. A mailbox in use (its lock held) is
// skipped, never waited for.
func (s *Store) trim(keep *mbox) {
	if s.inMem.Load() <= s.maxMsgs {
		return
	}
	for _, m := range s.loadedMboxes(keep) {
		if s.inMem.Load() <= s.maxMsgs {
			return
		}
		if m.mu.TryLock() {
			m.unloadLocked()
			m.mu.Unlock()
		}
	}
}

// unloadIdle unloads the mailboxes not used since before: their
// connections are closed at that age too, so an inactive user holds
// neither memory nor file descriptors.
func (s *Store) unloadIdle(before time.Time) {
	for _, m := range s.loadedMboxes(nil) {
		if m.lastUsed.Load() >= before.UnixNano() {
			return // sorted: the rest were used later
		}
		if m.mu.TryLock() {
			m.unloadLocked()
			m.mu.Unlock()
		}
	}
}

// closeWait bounds how long Close waits for connections in use: long
// enough for a request to finish a window, short enough for a shutdown.
const closeWait = 5 * time.Second

// Stats are counters for tests and benchmarks.
type Stats struct {
	Dials   int64 // upstream connections opened
	Fetches int64 // FETCH commands for new messages' metadata
	Selects int64 // SELECT commands
}

// Stats returns the counters since New.
func (s *Store) Stats() Stats {
	return Stats{Dials: s.dials.Load(), Fetches: s.fetches.Load(), Selects: s.selects.Load()}
}

// Mailbox implements mailbox.Store. The mailbox is opened from its index
// without contacting upstream; the first call that needs upstream logs
// in with the user's credentials.
func (s *Store) Mailbox(ctx context.Context, user string) (mailbox.Mailbox, error) {
	if !mailbox.ValidSegment(user) {
		return nil, fmt.Errorf("user %q: %w", user, mailbox.ErrInvalidName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errPoolClosed
	}
	if m := s.users[user]; m != nil {
		return m, nil
	}
	p := newPool(user, s.maxConns)
	m, err := openMbox(s, user, p, filepath.Join(s.indexDir, user+".db"))
	if err != nil {
		return nil, err
	}
	s.users[user] = m
	s.pools[user] = p
	return m, nil
}

// Ready reports whether the upstream server answers (a greeting, without
// logging in).
func (s *Store) Ready(ctx context.Context) error {
	return s.dialer.Ping(ctx)
}

// Close logs out every connection and closes the indexes.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.wg.Wait()
		s.mu.Lock()
		s.closed = true
		users, pools := s.users, s.pools
		s.users, s.pools = map[string]*mbox{}, map[string]*pool{}
		s.mu.Unlock()
		// Wait a while for connections in use (requests finishing), then
		// log out everything idle; connections still in use are closed
		// by their release.
		deadline := time.NewTimer(closeWait)
		defer deadline.Stop()
	wait:
		for _, p := range pools {
			for i := 0; i < cap(p.sem); i++ {
				select {
				case p.sem <- struct{}{}:
				case <-deadline.C:
					break wait
				}
			}
		}
		for _, p := range pools {
			p.mu.Lock()
			p.closed = true
			p.mu.Unlock()
			p.sweep(time.Now().Add(time.Hour))
		}
		for _, m := range users {
			err = errors.Join(err, m.close())
		}
	})
	return err
}
