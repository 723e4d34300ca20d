package auth

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Upstream authenticates users by logging in to the upstream IMAP server
// with their own credentials (pass-through login, issue 8): there is no
// users file. It is the Authenticator of Basic credentials and the
// password verifier of forms login when the IMAP backend is in use.
//
// Two in-memory tables, never written to disk and never logged:
//
//   - a credential cache, as Users has: HMAC-SHA256 (per-process key) of
//     user and password for credentials upstream accepted recently, so a
//     client sending Basic on every request costs one HMAC, not one IMAP
//     login, per request. It cannot yield a password.
//   - the held passwords: the last accepted password of each user, which
//     the IMAP store needs to open connections on the user's behalf
//     (Password). A password is dropped after HoldFor without any
//     successful authentication or use, or when the table is full
//     (least recently used first), or by Forget.
type Upstream struct {
	login   func(ctx context.Context, user, password string) (bool, error)
	now     func() time.Time
	log     zerolog.Logger
	holdFor time.Duration
	maxHeld int
	hmacKey [32]byte
	cache   *credCache
	// sem bounds concurrent upstream logins, so that a burst of new
	// clients queues instead of opening hundreds of IMAP connections.
	sem chan struct{}

	mu   sync.Mutex
	held map[string]*list.Element // of *heldPassword
	lru  *list.List               // least recently used first
}

type heldPassword struct {
	user, password string
	expires        time.Time
}

// UpstreamOptions configure Upstream. Zero values take the defaults.
type UpstreamOptions struct {
	// Login asks the upstream server: (true, nil) accepted, (false, nil)
	// refused credentials, (false, err) the server could not be asked.
	// Required. For the IMAP backend:
	//
	//	func(ctx context.Context, u, p string) (bool, error) {
	//		err := dialer.Login(ctx, u, p)
	//		if errors.Is(err, imap.ErrLoginFailed) {
	//			return false, nil
	//		}
	//		return err == nil, err
	//	}
	Login func(ctx context.Context, user, password string) (bool, error)
	// CacheTTL is how long accepted credentials are trusted without
	// asking upstream again. Default DefaultCacheTTL (5 min): a password
	// changed upstream stops working here within that time.
	CacheTTL time.Duration
	// CacheSize caps the credential cache. Default DefaultCacheSize.
	CacheSize int
	// HoldFor is how long a user's password is held after its last
	// successful authentication or use. Default DefaultSessionIdle
	// (30 min), the forms-login idle timeout: a session that is still
	// alive can still reach upstream.
	HoldFor time.Duration
	// MaxHeld caps the held passwords (one per user). Default
	// DefaultMaxSessions.
	MaxHeld int
	// MaxConcurrentLogins bounds upstream logins in flight. Default 8:
	// enough to absorb a morning rush, far below an IMAP server's
	// per-IP connection limits.
	MaxConcurrentLogins int
	// Now returns the current time; tests inject a clock.
	Now func() time.Time
	// Logger receives refusals and upstream failures (user names only).
	Logger zerolog.Logger
}

// maxUpstreamPassword caps passwords passed upstream: bcrypt's 72 bytes
// (MaxPasswordBytes) do not apply, IMAP servers accept long app
// passwords and tokens; 512 bytes is above any of them and below what a
// 1 KiB Basic token (maxBasicToken) can carry.
const maxUpstreamPassword = 512

// defaultConcurrentLogins is UpstreamOptions.MaxConcurrentLogins' default.
const defaultConcurrentLogins = 8

// NewUpstream returns an Upstream authenticator.
func NewUpstream(opts UpstreamOptions) (*Upstream, error) {
	if opts.Login == nil {
		return nil, errors.New("auth: UpstreamOptions.Login is required")
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.HoldFor <= 0 {
		opts.HoldFor = DefaultSessionIdle
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = DefaultMaxSessions
	}
	if opts.MaxConcurrentLogins <= 0 {
		opts.MaxConcurrentLogins = defaultConcurrentLogins
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	u := &Upstream{
		login: opts.Login, now: opts.Now, log: opts.Logger, holdFor: opts.HoldFor, maxHeld: opts.MaxHeld,
		cache: newCredCache(opts.CacheSize, opts.CacheTTL),
		sem:   make(chan struct{}, opts.MaxConcurrentLogins),
		held:  map[string]*list.Element{}, lru: list.New(),
	}
	if _, err := io.ReadFull(rand.Reader, u.hmacKey[:]); err != nil {
		return nil, err
	}
	return u, nil
}

// cacheKey is HMAC-SHA256(hmacKey, name "\x00" password), as Users does.
func (u *Upstream) cacheKey(name, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, u.hmacKey[:])
	io.WriteString(m, name)
	m.Write([]byte{0})
	io.WriteString(m, password)
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// VerifyContext reports whether upstream accepts name and password,
// from the cache when it accepted them within CacheTTL. An error means
// upstream could not be asked (or ctx ended); the caller should answer
// 503, not 401.
func (u *Upstream) VerifyContext(ctx context.Context, name, password string) (bool, error) {
	if !ValidName(name) || password == "" || len(password) > maxUpstreamPassword {
		return false, nil
	}
	key := u.cacheKey(name, password)
	now := u.now()
	if u.cache.hit(key, nil, now) {
		u.hold(name, password, now)
		return true, nil
	}
	select {
	case u.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	ok, err := u.login(ctx, name, password)
	<-u.sem
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		u.log.Warn().Str("user", name).Err(err).Msg("upstream login failed")
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !ok {
		return false, nil
	}
	now = u.now()
	u.cache.add(key, name, nil, now)
	u.hold(name, password, now)
	return true, nil
}

// Authenticate implements Authenticator for RFC 7617 Basic credentials.
func (u *Upstream) Authenticate(r *http.Request) (string, bool, error) {
	name, password, found, err := ParseBasic(r.Header.Get("Authorization"))
	if !found {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	ok, err := u.VerifyContext(r.Context(), name, password)
	if err != nil {
		return name, false, err
	}
	if !ok {
		return name, false, ErrBadCredentials
	}
	return name, true, nil
}

// hold remembers name's password until now+HoldFor.
func (u *Upstream) hold(name, password string, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if el, ok := u.held[name]; ok {
		h := el.Value.(*heldPassword)
		h.password, h.expires = password, now.Add(u.holdFor)
		u.lru.MoveToBack(el)
		return
	}
	for u.lru.Len() >= u.maxHeld {
		front := u.lru.Front()
		delete(u.held, front.Value.(*heldPassword).user)
		u.lru.Remove(front)
	}
	u.held[name] = u.lru.PushBack(&heldPassword{user: name, password: password, expires: now.Add(u.holdFor)})
}

// Password returns the password held for user (imap.Credentials). A use
// extends the hold: the store asks when it opens a connection, which is
// when the user is active.
func (u *Upstream) Password(user string) (string, bool) {
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	el, ok := u.held[user]
	if !ok {
		return "", false
	}
	h := el.Value.(*heldPassword)
	if !now.Before(h.expires) {
		delete(u.held, user)
		u.lru.Remove(el)
		return "", false
	}
	h.expires = now.Add(u.holdFor)
	u.lru.MoveToBack(el)
	return h.password, true
}

// Forget drops user's held password and cached credentials (logout,
// admin action).
func (u *Upstream) Forget(user string) {
	u.mu.Lock()
	if el, ok := u.held[user]; ok {
		delete(u.held, user)
		u.lru.Remove(el)
	}
	u.mu.Unlock()
	u.cache.dropUsers([]string{user})
}

// Held returns the number of held passwords (for metrics).
func (u *Upstream) Held() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.held)
}

// CacheLen returns the number of cached credentials (for metrics).
func (u *Upstream) CacheLen() int { return u.cache.Len() }
