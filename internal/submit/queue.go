package submit

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/limits"
)

// TLSMode is how the connection to the relay is protected.
type TLSMode string

// TLS modes.
const (
	// TLSNone: plain SMTP. Only for a relay on the same host or a trusted
	// network; AUTH is refused over it except to a loopback address.
	TLSNone TLSMode = "none"
	// TLSStartTLS: plain connection upgraded with STARTTLS (RFC 3207),
	// required: a relay that does not offer it is an error. The default.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit: TLS from the first byte (RFC 8314 §3, port 465).
	TLSImplicit TLSMode = "tls"
)

// Defaults of Options.
const (
	// DefaultWorkers: deliveries at once. A relay is one host; four
	// connections keep it busy without looking like a flood.
	DefaultWorkers = 4
	// DefaultMaxItems caps the queued messages (brief: 100,000).
	DefaultMaxItems = 100_000
	// DefaultMaxDomains caps the per-domain backoff hints (brief: 10,000;
	// about 100 bytes each).
	DefaultMaxDomains = 10_000
	// DefaultRetryInitial and DefaultRetryMax: the first retry after one
	// minute, doubling up to one hour, as most MTAs do.
	DefaultRetryInitial = time.Minute
	DefaultRetryMax     = time.Hour
	// DefaultMaxAge: give up after five days, the usual MTA setting (RFC
	// 5321 §4.5.4.1 asks for at least 4-5 days).
	DefaultMaxAge = 5 * 24 * time.Hour
	// DefaultDialTimeout: connecting (and the TLS handshake) to the relay.
	DefaultDialTimeout = 30 * time.Second
	// DefaultCommandTimeout: one command's reply, RFC 5321 §4.5.3.2 (5 min).
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultDataTimeout: the reply to the end of DATA, RFC 5321
	// §4.5.3.2.6 (10 min).
	DefaultDataTimeout = 10 * time.Minute
)

// Options configure a Queue. Zero values mean the defaults.
type Options struct {
	// Relay is the SMTP relay, "host:port". Required.
	Relay string
	// TLS is the protection of the relay connection; "" means starttls.
	TLS TLSMode
	// InsecureSkipVerify accepts any relay certificate. For tests only.
	InsecureSkipVerify bool
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN (RFC 4954, RFC 4616). The password is never logged.
	Username, Password string
	// HelloName is the EHLO name and the Reporting-MTA of bounces; ""
	// means the host name.
	HelloName string

	// Workers is the number of deliveries at once; 0 means DefaultWorkers.
	Workers int
	// MaxItems caps the queued messages; Enqueue refuses more with a 503
	// *limits.Error. 0 means DefaultMaxItems.
	MaxItems int
	// MaxDomains caps the per-domain backoff hints (LRU); 0 means
	// DefaultMaxDomains, -1 none kept.
	MaxDomains int
	// MaxRecipients caps the recipients of one message; 0 means
	// DefaultMaxRecipients.
	MaxRecipients int

	// RetryInitial is the delay before the first retry, doubled at each
	// attempt up to RetryMax. MaxAge is how long a message may wait before
	// its pending recipients are bounced. 0 means the defaults.
	RetryInitial, RetryMax, MaxAge time.Duration
	// DialTimeout, CommandTimeout and DataTimeout bound the SMTP
	// conversation; 0 means the defaults.
	DialTimeout, CommandTimeout, DataTimeout time.Duration

	// Bounce stores a delivery status notification msg (a whole RFC 5322
	// message) in user's Inbox. Required. An error keeps the bounce for a
	// later retry. It must return when ctx is cancelled.
	Bounce func(ctx context.Context, user string, msg io.Reader) error

	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
	// UnsafeNoSync skips every fsync: a crash may then lose or resend
	// messages. For tests and benchmarks only.
	UnsafeNoSync bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Relay == "" {
		return o, errors.New("submit: no relay configured (host:port)")
	}
	host, port, err := net.SplitHostPort(o.Relay)
	if err != nil || port == "" {
		return o, fmt.Errorf("submit: relay %q is not host:port", o.Relay)
	}
	switch o.TLS {
	case "":
		o.TLS = TLSStartTLS
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return o, fmt.Errorf("submit: unknown relay TLS mode %q (none, starttls or tls)", o.TLS)
	}
	if o.Username != "" && o.TLS == TLSNone {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return o, fmt.Errorf("submit: refusing to send the relay password in clear text to %s: use starttls or tls", host)
		}
	}
	if o.Bounce == nil {
		return o, errors.New("submit: Options.Bounce is required")
	}
	if o.HelloName == "" {
		o.HelloName, _ = os.Hostname()
		if o.HelloName == "" || strings.ContainsAny(o.HelloName, " \t\r\n") {
			o.HelloName = "localhost"
		}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Workers, DefaultWorkers)
	def(&o.MaxItems, DefaultMaxItems)
	def(&o.MaxDomains, DefaultMaxDomains)
	def(&o.MaxRecipients, DefaultMaxRecipients)
	if o.Workers < 1 || o.MaxItems < 1 || o.MaxRecipients < 1 {
		return o, errors.New("submit: Workers, MaxItems and MaxRecipients must be positive")
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&o.RetryInitial, DefaultRetryInitial)
	dur(&o.RetryMax, DefaultRetryMax)
	dur(&o.MaxAge, DefaultMaxAge)
	dur(&o.DialTimeout, DefaultDialTimeout)
	dur(&o.CommandTimeout, DefaultCommandTimeout)
	dur(&o.DataTimeout, DefaultDataTimeout)
	if o.RetryMax < o.RetryInitial {
		o.RetryMax = o.RetryInitial
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("submit: queue closed")

// Queue is the persistent outgoing mail queue. Its methods are safe for
// concurrent use.
type Queue struct {
	l    layout
	opts Options
	log  zerolog.Logger
	lock *os.File // dir/LOCK, flocked while open

	mu       sync.Mutex
	items    map[string]*entry // every queued item; at most MaxItems + what Open found
	due      entryHeap         // items waiting, by due time; the others are in flight
	reserved int               // Enqueue calls between the cap check and the insert
	domains  *domainLRU
	// relayHold: after a failure to talk to the relay at all, no delivery
	// starts before it (one backoff for the relay, not one per item).
	relayHold     time.Time
	relayFailures int
	closed        bool

	delivered, bounced, deferred atomic.Uint64

	wake      chan struct{} // buffered(1): the earliest due time may have changed
	work      chan *entry   // dispatcher → workers
	stop      chan struct{} // closed by Close
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
}

// entry is the in-memory index of one item: about 100 bytes.
type entry struct {
	id      string
	due     int64 // unix nanoseconds
	expires int64 // unix nanoseconds: Created + MaxAge
	pending bool  // has recipients to deliver (else only a bounce to store)
	idx     int   // position in Queue.due; -1 while in flight
}

// Open opens (creating it if needed) the queue in dir and starts its
// workers. Items found in flight are retried; a directory or record
// written by a newer format version is refused.
func Open(dir string, opts Options, log zerolog.Logger) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	q := &Queue{
		l:       newLayout(dir, opts.UnsafeNoSync),
		opts:    opts,
		log:     log.With().Str("component", "submit").Logger(),
		items:   make(map[string]*entry),
		domains: newDomainLRU(opts.MaxDomains),
		wake:    make(chan struct{}, 1),
		work:    make(chan *entry),
		stop:    make(chan struct{}),
	}
	if err := q.l.init(); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	q.lock = lock
	if err := q.clearTmp(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := q.load(); err != nil {
		lock.Close()
		return nil, err
	}
	q.runCtx, q.cancelRun = context.WithCancel(context.Background())
	q.wg.Add(1 + opts.Workers)
	go q.dispatch()
	for range opts.Workers {
		go q.worker()
	}
	q.log.Info().Int("queued", len(q.items)).Str("relay", opts.Relay).Str("tls", string(opts.TLS)).Msg("mail queue open")
	return q, nil
}

// clearTmp removes spools and records left by a previous process: none of
// them was acknowledged.
func (q *Queue) clearTmp() error {
	ents, err := os.ReadDir(q.l.tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(q.l.tmp, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// load builds the index from q/, reading the directory in batches so
// memory stays proportional to the items, not to the listing.
func (q *Queue) load() error {
	d, err := os.Open(q.l.q)
	if err != nil {
		return err
	}
	defer d.Close()
	now := q.opts.Now()
	var msgs []string // message files, checked for orphans afterwards
	for {
		// 1,024 names per read: a bounded listing buffer.
		ents, err := d.ReadDir(1024)
		for _, de := range ents {
			name := de.Name()
			id, ext, _ := strings.Cut(name, ".")
			switch {
			case !validID(id):
				q.log.Warn().Str("file", name).Msg("ignoring a file that is not a queue item")
			case ext == "msg":
				msgs = append(msgs, id)
			case ext == "json":
				if err := q.loadItem(id, now); err != nil {
					return err
				}
			default:
				q.log.Warn().Str("file", name).Msg("ignoring a file that is not a queue item")
			}
		}
		if err == io.EOF || len(ents) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	for _, id := range msgs {
		if _, ok := q.items[id]; !ok {
			// Written by an Enqueue that never returned: never acknowledged.
			q.log.Info().Str("id", id).Msg("removing a message whose enqueue did not complete")
			if err := os.Remove(q.l.msgPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return q.l.syncDir(q.l.q)
}

func (q *Queue) loadItem(id string, now time.Time) error {
	rec, err := q.l.readRecord(id)
	var ce *corruptError
	switch {
	case errors.As(err, &ce):
		q.log.Error().Err(err).Str("id", id).Msg("unreadable queue record moved to dead/")
		return q.l.bury(id)
	case err != nil: // a newer version, or an I/O error: refuse to start
		return err
	}
	if _, err := os.Stat(q.l.msgPath(id)); err != nil {
		q.log.Error().Err(err).Str("id", id).Msg("queue record without its message moved to dead/")
		return q.l.bury(id)
	}
	e := &entry{id: id, due: rec.Next.UnixNano(), expires: rec.Created.Add(q.opts.MaxAge).UnixNano(), pending: rec.count(rcptPending) > 0}
	if rec.InFlight {
		q.log.Info().Str("id", id).Int("attempts", rec.Attempts).Msg("retrying a delivery interrupted by a stop")
		e.due = now.UnixNano()
	}
	q.items[id] = e
	heap.Push(&q.due, e)
	return nil
}

// Spool is a temporary file in the queue directory that a prepared
// message is written to (the spool of PrepareRFC822), so that Enqueue
// moves it into the queue without a copy. Not safe for concurrent use.
type Spool struct {
	q    *Queue
	f    *os.File
	n    int64
	done bool
}

// NewSpool creates a spool. The caller must call Discard when done with it
// (a no-op after a successful Enqueue).
func (q *Queue) NewSpool() (*Spool, error) {
	f, err := os.CreateTemp(q.l.tmp, "spool-*")
	if err != nil {
		return nil, err
	}
	return &Spool{q: q, f: f}, nil
}

// Write appends to the spool.
func (s *Spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, os.ErrClosed
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

// Size returns the bytes written.
func (s *Spool) Size() int64 { return s.n }

// Reader returns the spooled bytes, for instance to store the copy in Sent
// Items. It is valid until Enqueue or Discard.
func (s *Spool) Reader() *io.SectionReader { return io.NewSectionReader(s.f, 0, s.n) }

// Discard removes the spool unless Enqueue took it. Safe to call twice.
func (s *Spool) Discard() error {
	if s.done {
		return nil
	}
	s.done = true
	s.f.Close()
	return os.Remove(s.f.Name())
}

// Enqueue makes the spooled message an item of the queue and returns its
// id once it is durable (files fsynced, renamed, directory fsynced). It
// refuses with a 503 *limits.Error (with RetryAfter) when MaxItems
// messages are queued, and with ErrClosed after Close. The spool is
// consumed on success and left to the caller's Discard on error.
func (q *Queue) Enqueue(ctx context.Context, env Envelope, sp *Spool) (string, error) {
	if sp == nil || sp.q != q || sp.done {
		return "", errors.New("submit: Enqueue needs an open spool of this queue")
	}
	return q.enqueue(ctx, env, func(dst string) (int64, error) {
		err := error(nil)
		if !q.opts.UnsafeNoSync {
			err = sp.f.Sync()
		}
		if cerr := sp.f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(sp.f.Name(), dst)
		}
		sp.done = true
		if err != nil {
			os.Remove(sp.f.Name())
		}
		return sp.n, err
	})
}

// EnqueueReader is Enqueue for a message held elsewhere: it copies r into
// the queue with a fixed buffer.
func (q *Queue) EnqueueReader(ctx context.Context, env Envelope, r io.Reader) (string, error) {
	return q.enqueue(ctx, env, func(dst string) (int64, error) {
		f, err := os.CreateTemp(q.l.tmp, "copy-*")
		if err != nil {
			return 0, err
		}
		n, err := io.CopyBuffer(f, r, make([]byte, 32<<10)) // one fixed buffer
		if err == nil && !q.opts.UnsafeNoSync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), dst)
		}
		if err != nil {
			os.Remove(f.Name())
		}
		return n, err
	})
}

func (q *Queue) enqueue(ctx context.Context, env Envelope, place func(dst string) (int64, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	rcpts, err := q.checkEnvelope(env)
	if err != nil {
		return "", err
	}

	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return "", ErrClosed
	}
	if n := len(q.items) + q.reserved; n >= q.opts.MaxItems {
		q.mu.Unlock()
		return "", &limits.Error{Kind: limits.ErrBusy, Limit: "max-queued-messages", Value: int64(q.opts.MaxItems),
			Size: int64(n + 1), Unit: "messages", Status: http.StatusServiceUnavailable,
			RetryAfter: q.opts.RetryInitial}
	}
	q.reserved++
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.reserved--
		q.mu.Unlock()
	}()

	now := q.opts.Now()
	id := newID(now)
	if _, err := os.Lstat(q.l.recordPath(id)); err == nil {
		return "", fmt.Errorf("submit: queue id %s already in use", id)
	}
	size, err := place(q.l.msgPath(id))
	if err != nil {
		return "", fmt.Errorf("submit: writing the queued message: %w", err)
	}
	// The message must be durable in q/ before the record that makes it
	// an item.
	if err := q.l.syncDir(q.l.q); err != nil {
		os.Remove(q.l.msgPath(id))
		return "", err
	}
	rec := &record{V: formatVersion, ID: id, User: env.User, From: env.From, MessageID: env.MessageID,
		Size: size, Created: now, Next: now}
	for _, r := range rcpts {
		rec.Rcpts = append(rec.Rcpts, rcptInfo{Addr: r, State: rcptPending})
	}
	if err := q.l.writeRecord(rec); err != nil {
		os.Remove(q.l.recordPath(id))
		os.Remove(q.l.msgPath(id))
		return "", fmt.Errorf("submit: writing the queue record: %w", err)
	}

	e := &entry{id: id, due: now.UnixNano(), expires: now.Add(q.opts.MaxAge).UnixNano(), pending: true}
	q.mu.Lock()
	q.items[id] = e
	heap.Push(&q.due, e)
	q.mu.Unlock()
	q.kick()
	q.log.Info().Str("id", id).Str("user", env.User).Int("rcpts", len(rcpts)).Int64("size", size).Msg("message queued")
	return id, nil
}

// checkEnvelope validates an envelope from any source and returns its
// recipients without duplicates.
func (q *Queue) checkEnvelope(env Envelope) ([]string, error) {
	if env.From != "" {
		if err := checkPath(env.From); err != nil {
			return nil, fmt.Errorf("submit: reverse-path: %w", err)
		}
	}
	rs := newRcptSet(q.opts.MaxRecipients)
	for _, r := range env.Recipients {
		if err := checkPath(r); err != nil {
			return nil, fmt.Errorf("submit: recipient: %w", err)
		}
		if err := rs.add(r); err != nil {
			return nil, err
		}
	}
	if rs.len() == 0 {
		return nil, &Error{Kind: ErrNoRecipients, Status: http.StatusBadRequest, Msg: "no recipients"}
	}
	return rs.list, nil
}

// checkPath accepts an address that can go on an SMTP command line.
func checkPath(p string) error {
	if len(p) > maxPath-2 || strings.LastIndexByte(p, '@') <= 0 || strings.HasSuffix(p, "@") {
		return fmt.Errorf("invalid address %q", truncate(p, maxQuoted))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '<' && i == 0 {
			return fmt.Errorf("invalid address %q", truncate(p, maxQuoted))
		}
	}
	return nil
}

// Stats is a snapshot of the queue. Counters count recipients since Open.
type Stats struct {
	Queued    int // messages in the queue, in flight included
	InFlight  int // messages being delivered or waiting for a worker
	Domains   int // domains with a backoff hint (at most MaxDomains)
	Delivered uint64
	Bounced   uint64 // failed permanently or expired (bounce stored or dropped)
	Deferred  uint64 // deferrals, one per recipient per attempt
}

// Stats returns a snapshot of the queue.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{Queued: len(q.items), InFlight: len(q.items) - len(q.due), Domains: q.domains.Len()}
	q.mu.Unlock()
	s.Delivered, s.Bounced, s.Deferred = q.delivered.Load(), q.bounced.Load(), q.deferred.Load()
	return s
}

// Len returns the number of queued messages.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Close stops the workers: no new delivery starts, and deliveries in
// progress may finish until ctx is done; then they are interrupted (their
// connections closed) and their items stay in flight on disk, to be
// retried by the next Open. It returns ctx.Err() in that case.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	q.cancelRun()
	<-done
	q.lock.Close()
	q.log.Info().Int("queued", q.Len()).Msg("mail queue closed")
	return err
}

// kick wakes the dispatcher: the earliest due time may have changed.
func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dispatch hands due items to the workers, sleeping until the earliest
// due time otherwise.
func (q *Queue) dispatch() {
	defer q.wg.Done()
	defer close(q.work)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var e *entry
		wait := time.Duration(-1)
		q.mu.Lock()
		if len(q.due) > 0 {
			if d := time.Duration(q.due[0].due - q.opts.Now().UnixNano()); d <= 0 {
				e = heap.Pop(&q.due).(*entry)
			} else {
				wait = d
			}
		}
		q.mu.Unlock()
		if e != nil {
			select {
			case q.work <- e:
				continue
			case <-q.stop:
				q.reschedule(e, time.Unix(0, e.due))
				return
			}
		}
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-tc:
		case <-q.wake:
		case <-q.stop:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

func (q *Queue) worker() {
	defer q.wg.Done()
	for e := range q.work {
		q.processSafe(e)
	}
}

// processSafe runs process and turns a panic (a bug, in this package or in
// Options.Bounce) into an error log: the worker survives, and the item
// stays out of the index until the next Open, so a bug cannot loop.
func (q *Queue) processSafe(e *entry) {
	defer func() {
		if v := recover(); v != nil {
			q.log.Error().Str("id", e.id).Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).
				Msg("BUG: panic while processing a queue item; it is retried at the next start")
		}
	}()
	q.process(e)
}

// reschedule puts e back in the index, due at t.
func (q *Queue) reschedule(e *entry, t time.Time) {
	q.mu.Lock()
	e.due = t.UnixNano()
	heap.Push(&q.due, e)
	q.mu.Unlock()
	q.kick()
}

// forget drops e from the index (the item is gone from disk).
func (q *Queue) forget(e *entry) {
	q.mu.Lock()
	delete(q.items, e.id)
	q.mu.Unlock()
}

// backoff returns the delay before retry n (n >= 1): RetryInitial doubled
// n-1 times, at most RetryMax.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.RetryInitial
	for i := 1; i < n && d < q.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, q.opts.RetryMax)
}

// entryHeap orders entries by due time, then id (ids start with their
// creation time, so older first).
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].id < h[j].id
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}
