package auth

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Forms-login sessions (Exchange 2003 forms-based authentication,
// exchange-webdav.md §2.2).
//
// A successful POST to the logon form creates a session: a random 128-bit
// id sent to the client in two cookies, "sessionid" and "cadata" (the
// names Exchange uses and DavMail looks for), bound to the user and to the
// user's password hash at login. Every later request carrying the cookie
// is that user's until the session is idle too long, reaches its absolute
// lifetime, is logged off, or the user's password changes or the user is
// removed (the hash no longer matches).
//
// Sessions live in memory only and do not survive a restart. Persisting
// them would write bearer secrets to disk (to be protected, fsynced on
// every login and cleaned up) for little gain: a restart is rare, the
// clients that hold sessions recover by themselves (DavMail maps the 440
// answer to "log in again" and replays the login with the password it
// holds; Evolution does the same; a browser shows the logon form once),
// and a restart is a natural point at which every bearer token should
// die. It also means sessions are per process: several davmail instances
// behind one load balancer need sticky routing.

// Cookie names of a forms-login session. Exchange 2003 sets both
// (§2.2 step 4); DavMail 6 treats a cookie named "sessionid" or starting
// with "cadata" as "logged in" (ExchangeFormAuthenticator.isAuthenticated).
// Both carry the same session id here: one secret under the two names
// clients look for.
const (
	SessionCookie = "sessionid"
	CadataCookie  = "cadata"
)

// Session defaults, with their reasons.
const (
	// 30 minutes idle: DavMail checks its session before every IMAP
	// command (§2.6), so an active client never idles out; 30 minutes is
	// the common web-session idle limit (OWASP) and what OWA 2003 used
	// for "private computer" logons before its registry tweak.
	DefaultSessionIdle = 30 * time.Minute
	// 12 hours absolute: a working day; past that even an active session
	// logs in again, which bounds the life of a stolen cookie.
	DefaultSessionLifetime = 12 * time.Hour
	// 10,000 sessions (~2 MiB): several devices for thousands of users.
	// Over the cap the least recently used session goes.
	DefaultMaxSessions = 10000
	// 50 per user: a person's browsers, phones and a DavMail instance
	// with its connection pool need a handful; 50 leaves room for a
	// client that logs in again often, while one user (or one stolen
	// password) cannot fill the table at everyone else's expense.
	DefaultMaxSessionsPerUser = 50
)

// sessionIDBytes is the entropy of a session id: 128 bits (OWASP's
// minimum of 64 bits of entropy, doubled), unguessable online.
const sessionIDBytes = 16

// sessionIDLen is the length of an id on the wire: lower-case hex, which
// holds no comma, quote, semicolon or space, so that no cookie parser
// (RFC 2109, RFC 6265, commons-httpclient 3) splits or quotes it
// (exchange-webdav.md §0.3 #10).
const sessionIDLen = 2 * sessionIDBytes

// ErrSessionStale is the error of a session cookie that names no live
// session: unknown, idle or past its lifetime, logged off, or revoked by a
// password change. The middleware answers it per the auth table (440 or
// the logon page) without the brute-force delay: 128-bit ids cannot be
// guessed, and a stale cookie is the normal state of a client that was
// idle.
var ErrSessionStale = errors.New("session expired or unknown")

var (
	errSessionUnknown  = fmt.Errorf("%w: unknown or logged off", ErrSessionStale)
	errSessionIdle     = fmt.Errorf("%w: idle timeout", ErrSessionStale)
	errSessionLifetime = fmt.Errorf("%w: lifetime over", ErrSessionStale)
	errSessionRevoked  = fmt.Errorf("%w: password changed or user removed", ErrSessionStale)
)

// SessionOptions tune a Sessions table; zero values take the defaults.
type SessionOptions struct {
	// Users checks passwords at login and, on every lookup, that the
	// user still exists with the same password hash. One of Users and
	// Verifier is required.
	Users *Users
	// Verifier checks passwords at login when there is no users file
	// (pass-through login to an upstream server): a session then lasts
	// its idle and absolute lifetimes, since no hash can show a password
	// change; logging off ends it.
	Verifier Verifier
	// OnLogout, if set, is called with the user of a session that logs
	// off (the upstream login forgets the password it held).
	OnLogout func(user string)
	// IdleTimeout ends a session not used for this long. Default 30 min.
	IdleTimeout time.Duration
	// Lifetime ends a session this long after login, used or not.
	// Default 12 h.
	Lifetime time.Duration
	// MaxSessions caps the table; over it the least recently used
	// session is evicted. Default 10,000.
	MaxSessions int
	// MaxPerUser caps one user's sessions; over it that user's least
	// recently used session is evicted. Default 50.
	MaxPerUser int
	// Now returns the current time; tests inject a clock. Default time.Now.
	Now func() time.Time
	// Logger receives evictions (never ids or secrets).
	Logger zerolog.Logger
}

// Sessions is the in-memory table of forms-login sessions. It is safe for
// concurrent use; its lock is never held during I/O or bcrypt.
type Sessions struct {
	users             *Users
	verifier          Verifier // when users is nil
	onLogout          func(user string)
	idle, lifetime    time.Duration
	maxTotal, maxUser int
	now               func() time.Time
	log               zerolog.Logger

	mu sync.Mutex
	// m is keyed by SHA-256 of the id, so the table never holds a usable
	// id and map lookups leak no timing about ids.
	m      map[[sha256.Size]byte]*session
	lru    *list.List            // of *session, least recently used first
	byUser map[string]*list.List // of *session per user, LRU first; at most len(m) keys
}

type session struct {
	key      [sha256.Size]byte
	user     string
	hash     []byte // the user's bcrypt hash at login (shared, never written)
	created  time.Time
	lastUsed time.Time
	all, own *list.Element
}

// NewSessions returns an empty session table. opts.Users is required:
// without it a session could not notice a password change, so a nil
// Users is a programming error and panics.
func NewSessions(opts SessionOptions) *Sessions {
	if opts.Users == nil && opts.Verifier == nil {
		panic("auth: NewSessions without Users or Verifier")
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultSessionIdle
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultSessionLifetime
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxPerUser <= 0 {
		opts.MaxPerUser = DefaultMaxSessionsPerUser
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sessions{
		users: opts.Users, verifier: opts.Verifier, onLogout: opts.OnLogout, idle: opts.IdleTimeout, lifetime: opts.Lifetime,
		maxTotal: opts.MaxSessions, maxUser: opts.MaxPerUser, now: opts.Now, log: opts.Logger,
		m: map[[sha256.Size]byte]*session{}, lru: list.New(), byUser: map[string]*list.List{},
	}
}

// Len returns the number of sessions held, including expired ones not yet
// swept (they go when next looked up or when they reach the front of the
// LRU list at a login).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Login checks name's password (bcrypt through Users, with its cache and
// constant-time handling of unknown names) and on success creates a
// session bound to the password hash that was checked. It returns
// ErrBadCredentials for a wrong name or password, or ctx's error when the
// client went away while waiting for a bcrypt slot.
func (s *Sessions) Login(ctx context.Context, name, password string) (id string, err error) {
	if s.users == nil {
		ok, err := s.verifier.VerifyContext(ctx, name, password)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", ErrBadCredentials
		}
		return s.create(name, nil)
	}
	before, _ := s.users.currentHash(name)
	ok, err := s.users.VerifyContext(ctx, name, password)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ErrBadCredentials
	}
	// The password was checked against the hash of the users file at
	// some moment between these two reads; if the file changed in
	// between, we cannot tell which hash passed: refuse, the client
	// retries against the new file.
	after, known := s.users.currentHash(name)
	if !known || !bytes.Equal(before, after) {
		return "", ErrBadCredentials
	}
	return s.create(name, after)
}

// create adds a session for user bound to hash and returns its id.
func (s *Sessions) create(user string, hash []byte) (string, error) {
	var raw [sessionIDBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("auth: session id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	now := s.now()
	e := &session{key: sha256.Sum256([]byte(id)), user: user, hash: hash, created: now, lastUsed: now}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Sessions idle past the timeout are at the front of the LRU list:
	// sweep them first, so that expired sessions go before live ones.
	for front := s.lru.Front(); front != nil; front = s.lru.Front() {
		old := front.Value.(*session)
		if now.Sub(old.lastUsed) < s.idle {
			break
		}
		s.removeLocked(old)
	}
	own := s.byUser[user]
	if own == nil {
		own = list.New()
		s.byUser[user] = own
	}
	for own.Len() >= s.maxUser {
		s.removeLocked(own.Front().Value.(*session))
		s.log.Info().Str("user", user).Int("max", s.maxUser).Msg("session limit per user reached, least recently used session ended")
	}
	for len(s.m) >= s.maxTotal {
		s.removeLocked(s.lru.Front().Value.(*session))
		s.log.Warn().Int("max", s.maxTotal).Msg("session table full, least recently used session ended")
	}
	// removeLocked may have dropped the user's (now empty) list.
	if s.byUser[user] == nil {
		s.byUser[user] = own
	}
	e.all = s.lru.PushBack(e)
	e.own = own.PushBack(e)
	s.m[e.key] = e
	return id, nil
}

// removeLocked drops e from every index. s.mu is held.
func (s *Sessions) removeLocked(e *session) {
	delete(s.m, e.key)
	s.lru.Remove(e.all)
	if own := s.byUser[e.user]; own != nil {
		own.Remove(e.own)
		if own.Len() == 0 {
			delete(s.byUser, e.user)
		}
	}
}

// Lookup returns the user of session id and marks the session used. The
// error wraps ErrSessionStale when id names no live session; a session
// found expired or revoked is removed.
func (s *Sessions) Lookup(id string) (string, error) {
	if !validSessionID(id) {
		return "", errSessionUnknown
	}
	key := sha256.Sum256([]byte(id))
	now := s.now()

	s.mu.Lock()
	e, ok := s.m[key]
	if !ok {
		s.mu.Unlock()
		return "", errSessionUnknown
	}
	var stale error
	switch {
	case now.Sub(e.created) >= s.lifetime:
		stale = errSessionLifetime
	case now.Sub(e.lastUsed) >= s.idle:
		stale = errSessionIdle
	}
	if stale != nil {
		s.removeLocked(e)
		s.mu.Unlock()
		return "", stale
	}
	user, hash := e.user, e.hash
	if s.users == nil { // pass-through login: no hash to compare
		e.lastUsed = now
		s.lru.MoveToBack(e.all)
		s.byUser[user].MoveToBack(e.own)
		s.mu.Unlock()
		return user, nil
	}
	s.mu.Unlock()

	// Outside the lock: this may stat and reload the users file.
	cur, known := s.users.currentHash(user)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[key] != e {
		return "", errSessionUnknown // logged off meanwhile
	}
	if !known || !bytes.Equal(cur, hash) {
		s.removeLocked(e)
		return "", errSessionRevoked
	}
	e.lastUsed = now
	s.lru.MoveToBack(e.all)
	s.byUser[user].MoveToBack(e.own)
	return user, nil
}

// Logout ends session id. It returns the session's user and whether there
// was such a session.
func (s *Sessions) Logout(id string) (user string, ok bool) {
	if !validSessionID(id) {
		return "", false
	}
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return "", false
	}
	s.removeLocked(e)
	if s.onLogout != nil {
		s.onLogout(e.user)
	}
	return e.user, true
}

// InvalidateUser ends every session of name (an admin action, "log out
// everywhere") and returns how many there were. A password change or
// removal in the users file needs no call: lookups notice it by
// themselves.
func (s *Sessions) InvalidateUser(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	own := s.byUser[name]
	if own == nil {
		return 0
	}
	n := own.Len()
	for own.Len() > 0 {
		s.removeLocked(own.Front().Value.(*session))
	}
	return n
}

// Authenticate implements Authenticator with the session cookies:
// ("", false, nil) when the request carries none, (user, true, nil) for a
// live session, and an error wrapping ErrSessionStale when it carries
// session ids none of which is live.
func (s *Sessions) Authenticate(r *http.Request) (string, bool, error) {
	ids := SessionIDs(r.Header)
	if len(ids) == 0 {
		return "", false, nil
	}
	var stale error
	for _, id := range ids {
		user, err := s.Lookup(id)
		if err == nil {
			return user, true, nil
		}
		stale = err
	}
	return "", false, stale
}

// currentHash returns name's bcrypt hash as the users file has it now
// (Lookup hides hashes from other packages).
func (u *Users) currentHash(name string) ([]byte, bool) {
	u.maybeReload()
	u.mu.RLock()
	defer u.mu.RUnlock()
	usr, ok := u.users[name]
	return usr.hash, ok
}

// validSessionID reports whether id has the shape of our ids: exactly
// sessionIDLen lower-case hex digits.
func validSessionID(id string) bool {
	if len(id) != sessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Cookie parsing caps, with their reasons.
const (
	// maxCookiePairs bounds the name=value pairs looked at per request:
	// browsers keep at most ~180 cookies per domain (Chrome), so 512
	// covers any real client; the rest of an absurd header is ignored.
	maxCookiePairs = 512
	// maxSessionCandidates bounds the session ids tried per request (one
	// table lookup each): a client sends sessionid and cadata, perhaps
	// twice with different paths; 4 covers that.
	maxSessionCandidates = 4
)

// SessionIDs returns the distinct well-formed session ids carried by the
// "sessionid" and "cadata" cookies of h, sessionid first, at most
// maxSessionCandidates.
//
// It reads every Cookie header (HTTP/1.1 clients may send several; DavMail
// 5.5.1, through commons-httpclient 3, sends one per cookie, §0.3 #10) and
// accepts both separators of RFC 2109 §4.3.4 (";" and ","), so that
// Exchange's own "sessionid=<guid>,0x409" form yields the id. Attributes
// of RFC 2109 ("$Version", "$Path", "$Domain") are skipped and quoted
// values unquoted. A value that is not one of our ids (32 lower-case hex
// digits, matched case-insensitively) is ignored: it is another
// application's cookie ("sessionid" is also Django's default name) and
// must not turn a Basic client's 401 into a 440.
func SessionIDs(h http.Header) []string {
	var sid, cad []string
	add := func(list []string, v string) []string {
		v = strings.ToLower(v)
		if !validSessionID(v) || len(sid)+len(cad) >= maxSessionCandidates {
			return list
		}
		for _, x := range sid {
			if x == v {
				return list
			}
		}
		for _, x := range cad {
			if x == v {
				return list
			}
		}
		return append(list, v)
	}
	parseCookies(h.Values("Cookie"), func(name, value string) {
		switch name {
		case SessionCookie:
			sid = add(sid, value)
		case CadataCookie:
			cad = add(cad, value)
		}
	})
	return append(sid, cad...)
}

// parseCookies calls visit for each cookie of the Cookie header values
// (RFC 6265 §4.2.1 and RFC 2109 §4.3.4): pairs separated by ";" or ",",
// spaces and tabs around names and values trimmed, a value in double
// quotes unquoted, names starting with "$" (RFC 2109 attributes) and
// pairs without "=" skipped. At most maxCookiePairs pairs are visited.
func parseCookies(values []string, visit func(name, value string)) {
	n := 0
	for _, line := range values {
		for line != "" {
			if n >= maxCookiePairs {
				return
			}
			var part string
			if i := strings.IndexAny(line, ";,"); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			name, value, found := strings.Cut(part, "=")
			name = strings.Trim(name, " \t")
			if !found || name == "" || name[0] == '$' {
				continue
			}
			n++
			value = strings.Trim(value, " \t")
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			visit(name, value)
		}
	}
}

// SetSessionCookies sends session id in the "sessionid" and "cadata"
// cookies: Path=/ (the session covers /exchange, /public and the web UI),
// HttpOnly (no script reads them), SameSite=Lax (not sent on cross-site
// subrequests or POSTs, so a foreign page cannot act as the user), Secure
// when the request came over TLS. No Expires: the server enforces the
// idle timeout and lifetime, and the browser forgets the cookies when it
// closes.
func SetSessionCookies(w http.ResponseWriter, id string, secure bool) {
	for _, name := range []string{SessionCookie, CadataCookie} {
		http.SetCookie(w, &http.Cookie{
			Name: name, Value: id, Path: "/",
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
		})
	}
}

// ExpireSessionCookies tells the client to forget both session cookies
// (Max-Age=0 for RFC 6265 clients, an Expires date in 1970 for RFC 2109
// and Netscape-style ones).
func ExpireSessionCookies(w http.ResponseWriter, secure bool) {
	for _, name := range []string{SessionCookie, CadataCookie} {
		http.SetCookie(w, &http.Cookie{
			Name: name, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(1, 0),
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
		})
	}
}

// NormalizeLogin returns the user name to look up for a login name typed
// into a form or a client: "DOMAIN\user" (DavMail prepends
// davmail.defaultDomain this way, §2.1) becomes "user"; surrounding
// spaces go. "user@domain" stays as is, since such names are valid user
// names of their own.
func NormalizeLogin(name string) string {
	name = strings.TrimSpace(name)
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
	}
	return name
}
