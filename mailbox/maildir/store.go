package maildir

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/mailbox"
)

// Defaults for Options.
const (
	// DefaultMaxOpen is the number of mailboxes kept open (index loaded,
	// bbolt file open). 1,000 covers the active users of a large site; an
	// idle mailbox costs a file descriptor and its in-memory index, and
	// reopening one costs a load of its index (about 0.1 s per 100,000
	// messages).
	DefaultMaxOpen = 1000
	// DefaultMaxOpenMessages caps the messages whose index entries the
	// open mailboxes hold in memory, together: 2,000,000 at about 600
	// bytes each (the record and its envelope strings) is about 1.2 GiB.
	// A count of mailboxes alone does not bound memory: 1,000 mailboxes
	// of 100,000 messages would hold 60 GiB.
	DefaultMaxOpenMessages = 2_000_000
	// DefaultMaxFolders per mailbox, the same as memstore's: real
	// mailboxes rarely pass a few hundred folders.
	DefaultMaxFolders = 10000
	// DefaultGranularity is the file-system time-stamp granularity assumed
	// for directory mtimes: a directory scanned less than this after its
	// last change may have changed again without its mtime moving, so it
	// is scanned again. One second covers every file system in use
	// (ext3 and HFS+ have one-second time stamps).
	DefaultGranularity = time.Second
)

// Options configure a Store.
type Options struct {
	// Root holds the mailboxes: Root/<user>/Maildir.
	Root string
	// IndexDir holds one bbolt index per user: IndexDir/<user>.db. It is
	// created if missing.
	IndexDir string
	Logger   zerolog.Logger
	// CreateMissing creates Root/<user>/Maildir with cur/, new/ and tmp/
	// on the first Mailbox call for a user who has none; otherwise such a
	// user gets mailbox.ErrNotFound.
	CreateMissing bool
	// Workers is the number of files parsed in parallel when a folder is
	// indexed; 0 means GOMAXPROCS.
	Workers int
	// MaxOpen caps the mailboxes kept open; the least recently used idle
	// one is closed beyond it. 0 means DefaultMaxOpen.
	MaxOpen int
	// MaxOpenMessages caps the messages held in memory by the open
	// mailboxes together; beyond it the least recently used idle ones are
	// closed, except the most recently used, whatever its size. 0 means
	// DefaultMaxOpenMessages.
	MaxOpenMessages int64
	// MaxFolders caps the folders of one mailbox (CreateFolder refuses
	// more with a 507 *limits.Error; folders found on disk beyond it are
	// ignored with a warning). 0 means DefaultMaxFolders, -1 unlimited.
	MaxFolders int
	// Granularity is the directory time-stamp granularity, see
	// DefaultGranularity. 0 means DefaultGranularity.
	Granularity time.Duration
}

// Stats are counters since Open, for tests and metrics.
type Stats struct {
	// Parsed counts message files opened and scanned for their envelope
	// while indexing (not Appends, whose envelope is read while writing).
	Parsed uint64
	// Scans counts folder directory scans (readdir of cur/ and/or new/).
	Scans uint64
	// RootScans counts scans of Maildir roots for the folder list.
	RootScans uint64
	// Loaded counts message records decoded from an index file.
	Loaded uint64
	// Opened counts message files opened for Open (content served).
	Opened uint64
	// Loads counts mailbox loads (index opened and read).
	Loads uint64
	// StructFills counts structures scanned on first use because their
	// index record was missing (a migrated index, a copied message).
	StructFills uint64
}

type counters struct {
	parsed, scans, rootScans, loaded, opened, loads, structFills atomic.Uint64
}

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("maildir: store is closed")

// Store is the Maildir++ mailbox.Store. It is safe for concurrent use.
type Store struct {
	opts Options
	log  zerolog.Logger
	host string // sanitized host name for unique file names
	pid  int

	seq   atomic.Uint64 // the Q<n> counter of unique names
	stats counters
	// noatimeRefused: the kernel refused O_NOATIME once (see openScan).
	noatimeRefused atomic.Bool
	// copyBufs holds the fixed buffers of message copies.
	copyBufs sync.Pool

	mu    sync.Mutex
	boxes map[string]*mbox // open mailboxes by user; capped by opts.MaxOpen (LRU of idle ones)
	lru   *list.List       // of *mbox, most recently used first
	// inMem is the messages held in memory by the open mailboxes, as
	// counted when each was last released; capped by opts.MaxOpenMessages.
	inMem  int64
	closed bool
}

var _ mailbox.Store = (*Store)(nil)

// Open returns a Store serving the mailboxes under opts.Root.
func Open(opts Options) (*Store, error) {
	if opts.Root == "" || opts.IndexDir == "" {
		return nil, errors.New("maildir: Root and IndexDir are required")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("maildir: root: %w", err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("maildir: root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("maildir: root %s is not a directory", root)
	}
	opts.Root = root
	if opts.IndexDir, err = filepath.Abs(opts.IndexDir); err != nil {
		return nil, fmt.Errorf("maildir: index dir: %w", err)
	}
	if err := os.MkdirAll(opts.IndexDir, 0o700); err != nil {
		return nil, fmt.Errorf("maildir: index dir: %w", err)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxOpenMessages <= 0 {
		opts.MaxOpenMessages = DefaultMaxOpenMessages
	}
	if opts.MaxOpen <= 0 {
		opts.MaxOpen = DefaultMaxOpen
	}
	if opts.MaxFolders == 0 {
		opts.MaxFolders = DefaultMaxFolders
	}
	if opts.Granularity <= 0 {
		opts.Granularity = DefaultGranularity
	}
	if err := checkIndexVersions(opts.IndexDir); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	s := &Store{
		opts:  opts,
		log:   opts.Logger,
		host:  sanitizeHost(host),
		pid:   os.Getpid(),
		boxes: make(map[string]*mbox),
		lru:   list.New(),
	}
	s.copyBufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	return s, nil
}

// Stats returns the counters since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Parsed:      s.stats.parsed.Load(),
		Scans:       s.stats.scans.Load(),
		RootScans:   s.stats.rootScans.Load(),
		Loaded:      s.stats.loaded.Load(),
		Opened:      s.stats.opened.Load(),
		Loads:       s.stats.loads.Load(),
		StructFills: s.stats.structFills.Load(),
	}
}

// MessagesInMemory returns the messages held in memory by the open
// mailboxes (bounded by Options.MaxOpenMessages).
func (s *Store) MessagesInMemory() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inMem
}

// MaxOpenMessages returns the budget of messages held in memory
// (Options.MaxOpenMessages, defaults applied).
func (s *Store) MaxOpenMessages() int64 { return s.opts.MaxOpenMessages }

// Len returns the number of open mailboxes.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.boxes)
}

// Mailbox returns user's mailbox. The handle is cheap and stays valid
// while the Store is open, even when the mailbox is closed to make room
// for others: the next call reopens it.
func (s *Store) Mailbox(ctx context.Context, user string) (mailbox.Mailbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validUser(user) {
		return nil, fmt.Errorf("maildir: user %q: %w", user, mailbox.ErrInvalidName)
	}
	b, err := s.acquire(ctx, user)
	if err != nil {
		return nil, err
	}
	s.release(b)
	return &handle{s: s, user: user}, nil
}

// acquire returns user's open mailbox, loading it if needed, and holds a
// reference on it that release drops; a referenced mailbox is never
// closed to make room.
func (s *Store) acquire(ctx context.Context, user string) (*mbox, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	b := s.boxes[user]
	if b == nil {
		b = newMbox(s, user)
		s.boxes[user] = b
		b.elem = s.lru.PushFront(b)
	} else {
		s.lru.MoveToFront(b.elem)
	}
	b.refs++
	evict := s.evictLocked()
	s.mu.Unlock()
	for _, e := range evict {
		e.close()
	}

	b.mu.Lock()
	err := b.ensureLoaded(ctx)
	b.mu.Unlock()
	if err != nil {
		s.mu.Lock()
		b.refs--
		if s.boxes[user] == b && b.refs == 0 {
			// Forget a mailbox that failed to load so the next call
			// tries again from scratch.
			s.forgetLocked(b)
		}
		s.mu.Unlock()
		return nil, err
	}
	return b, nil
}

func (s *Store) release(b *mbox) {
	s.mu.Lock()
	b.refs--
	if s.boxes[b.user] == b {
		n := b.memMsgs.Load()
		s.inMem += n - b.counted
		b.counted = n
	}
	var evict []*mbox
	if b.broken.Load() && b.refs == 0 && s.boxes[b.user] == b {
		// Its index update failed: drop the in-memory state so the next
		// call reloads it from the index and the disk.
		s.forgetLocked(b)
		evict = append(evict, b)
	}
	evict = append(evict, s.evictLocked()...)
	s.mu.Unlock()
	for _, e := range evict {
		e.close()
	}
}

// evictLocked removes idle mailboxes beyond MaxOpen, or beyond
// MaxOpenMessages held in memory, from the cache, least recently used
// first, and returns them for closing. For the message budget the most
// recently used mailbox stays, however large: closing it would reload
// its index on every request of its user.
func (s *Store) evictLocked() []*mbox {
	var out []*mbox
	for e := s.lru.Back(); e != nil && (len(s.boxes) > s.opts.MaxOpen || s.inMem > s.opts.MaxOpenMessages); {
		prev := e.Prev()
		b := e.Value.(*mbox)
		if b.refs == 0 && (len(s.boxes) > s.opts.MaxOpen || e != s.lru.Front()) {
			s.forgetLocked(b)
			out = append(out, b)
		}
		e = prev
	}
	return out
}

// forgetLocked removes b from the cache of open mailboxes.
func (s *Store) forgetLocked(b *mbox) {
	delete(s.boxes, b.user)
	s.lru.Remove(b.elem)
	s.inMem -= b.counted
	b.counted = 0
}

// Ready reports whether Root is readable and IndexDir writable.
func (s *Store) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	d, err := os.Open(s.opts.Root)
	if err != nil {
		return fmt.Errorf("maildir: root not readable: %w", err)
	}
	_, err = d.Readdirnames(1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("maildir: root not readable: %w", err)
	}
	f, err := os.CreateTemp(s.opts.IndexDir, ".ready-*")
	if err != nil {
		return fmt.Errorf("maildir: index dir not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("maildir: index dir: %w", err)
	}
	return nil
}

// Close closes every mailbox's index. Later calls fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	boxes := make([]*mbox, 0, len(s.boxes))
	for _, b := range s.boxes {
		boxes = append(boxes, b)
	}
	s.boxes = nil
	s.lru.Init()
	s.mu.Unlock()
	var errs []error
	for _, b := range boxes {
		if err := b.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// uniqueBase returns a new Maildir base:
// "<secs>.M<usec>P<pid>Q<n>.<host>" (cr.yp.to/proto/maildir.html, in the
// form Dovecot uses), unique within this host as long as the process
// counter and clock do not both repeat.
func (s *Store) uniqueBase() string {
	now := time.Now()
	n := s.seq.Add(1)
	return strconv.FormatInt(now.Unix(), 10) + ".M" + strconv.Itoa(now.Nanosecond()/1000) +
		"P" + strconv.Itoa(s.pid) + "Q" + strconv.FormatUint(n, 10) + "." + s.host
}
