// Package auth authenticates davmail's users: the users file (an
// htpasswd-compatible list of bcrypt hashes), a cache of verified
// credentials so that bcrypt runs once per client every few minutes rather
// than on every request, a brute-force throttle that delays failed logins,
// the OWA forms-login sessions (session.go, bounded and in memory), and the
// HTTP middleware that ties them together: the session cookie is tried
// before RFC 7617 Basic, and the auth table of exchange-webdav.md §2.2 is
// applied in one place (Basic.Wrap).
//
// Secrets never leave this package: passwords are not logged, not stored,
// and not kept in memory beyond the call that checks them; the cache holds
// only HMACs keyed by a per-process random key.
package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// Role names. A user's role is empty (a regular user) or RoleAdmin.
const (
	RoleUser  = ""
	RoleAdmin = "admin"
)

// BcryptCost is the cost of hashes written by AddUser. 10 (Go's
// bcrypt.DefaultCost, OWASP's minimum) takes ~50 ms of one core on current
// server CPUs: slow enough to make offline guessing of a stolen users file
// expensive, and affordable because the credentials cache makes it a
// once-per-client-per-5-minutes cost, not a per-request one.
const BcryptCost = 10

// MaxPasswordBytes is the longest password accepted. bcrypt only uses the
// first 72 bytes; accepting more would make every longer password with the
// same 72-byte prefix valid.
const MaxPasswordBytes = 72

// maxNameLen caps user names: they become URL path segments and Maildir
// directory names, and 64 is far above any real login.
const maxNameLen = 64

// maxUsersFile caps the users file read into memory. A line is ~80 bytes,
// so 16 MiB is ~200,000 users, far above what one gateway serves.
const maxUsersFile = 16 << 20

// maxLine caps one line of the users file: name (64) + hash (60) + role
// and separators fit in 200 bytes; 4 KiB leaves room for comments.
const maxLine = 4 << 10

// reloadInterval is how often Verify looks at the users file's mtime: once
// a second keeps the stat off the hot path and makes a change visible
// quickly enough for an admin who just ran `davmail user add`.
const reloadInterval = time.Second

// dummyHash is a cost-10 bcrypt hash of a random string that is never a
// valid password. Unknown users are checked against it so that a failed
// login takes the same time whether or not the name exists.
var dummyHash = []byte("$2a$10$HsA7wcLTLkqDu6SXmX1ZD.Std/mqhvwvxxL7tYIkRd6zYKt78Lxwu")

// User is one entry of the users file.
type User struct {
	Name string
	Role string // RoleUser ("") or RoleAdmin
	hash []byte
}

// Admin reports whether u has the admin role.
func (u User) Admin() bool { return u.Role == RoleAdmin }

// ValidName reports whether name can be a user name: 1–64 characters of
// [A-Za-z0-9._@+-], not starting with "." (names become path segments and
// Maildir directory names, where a leading dot means a hidden folder or
// "." and "..").
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '@' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return true
}

// Options tune a Users set. The zero value is the production setting.
type Options struct {
	// Logger receives reload events and errors (never secrets).
	Logger zerolog.Logger
	// Now returns the current time; tests inject a clock. Default time.Now.
	Now func() time.Time
	// Compare checks a password against a bcrypt hash; tests inject a
	// counting wrapper. Default bcrypt.CompareHashAndPassword.
	Compare func(hash, password []byte) error
	// CacheTTL is how long a verified credential is trusted without
	// running bcrypt again. Default 5 minutes.
	CacheTTL time.Duration
	// CacheSize caps the verified-credentials cache. Default 10,000.
	CacheSize int
}

// Default cache settings, with their reasons.
const (
	// 5 minutes: a client sends Basic on every request; one bcrypt per
	// client per 5 minutes is negligible, and a password change or removal
	// takes effect at the next reload anyway (the cache is invalidated).
	DefaultCacheTTL = 5 * time.Minute
	// 10,000 entries (~1 MiB): several credentials per user for thousands
	// of users; an attacker filling it with valid credentials is not
	// possible, since only successful logins are cached.
	DefaultCacheSize = 10000
)

// Users is the set of users loaded from a users file. It is safe for
// concurrent use; Verify notices changes to the file by itself.
type Users struct {
	path    string
	log     zerolog.Logger
	now     func() time.Time
	compare func(hash, password []byte) error
	// dummy is the hash unknown users are checked against (dummyHash;
	// tests swap in a cheap one).
	dummy []byte
	// hmacKey keys the credentials cache: random per process, so cache
	// keys are useless outside it.
	hmacKey [32]byte
	cache   *credCache
	// bcryptSem bounds concurrent bcrypt runs to the number of CPUs so
	// that a burst of logins queues instead of starving request handling.
	bcryptSem chan struct{}

	mu    sync.RWMutex
	users map[string]User
	order []string // names in file order, for List
	stat  fileStamp

	loaded bool // guarded by mu: the file was read at least once

	reloadMu sync.Mutex // serialises reloads; never held by Verify's fast path
	// badStat and badErr remember a users file that failed to parse, so
	// that it is not parsed and logged again every second until it
	// changes (guarded by reloadMu).
	badStat fileStamp
	badErr  error
	// nextCheck (UnixNano) is when maybeReload next stats the file; an
	// atomic keeps the once-a-second test off every lock.
	nextCheck atomic.Int64
}

// fileStamp identifies one version of the users file.
type fileStamp struct {
	exists bool
	info   os.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	if a.exists != b.exists {
		return false
	}
	if !a.exists {
		return true
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

// LoadUsers reads the users file at path. A missing file is an empty set
// (davmail starts, and every login fails, until a user is added).
func LoadUsers(path string) (*Users, error) {
	return NewUsers(path, Options{Logger: zerolog.Nop()})
}

// NewUsers is LoadUsers with options.
func NewUsers(path string, opts Options) (*Users, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Compare == nil {
		opts.Compare = bcrypt.CompareHashAndPassword
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	u := &Users{
		path:      path,
		log:       opts.Logger,
		now:       opts.Now,
		compare:   opts.Compare,
		dummy:     dummyHash,
		cache:     newCredCache(opts.CacheSize, opts.CacheTTL),
		bcryptSem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		users:     map[string]User{},
	}
	if _, err := rand.Read(u.hmacKey[:]); err != nil {
		return nil, fmt.Errorf("auth: random key: %w", err)
	}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Path returns the users file's path.
func (u *Users) Path() string { return u.path }

// Len returns the number of users.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.users)
}

// CacheLen returns the number of entries in the verified-credentials cache.
func (u *Users) CacheLen() int { return u.cache.Len() }

// Lookup returns the user called name.
func (u *Users) Lookup(name string) (User, bool) {
	u.maybeReload()
	u.mu.RLock()
	defer u.mu.RUnlock()
	usr, ok := u.users[name]
	usr.hash = nil
	return usr, ok
}

// List returns the users in file order, without their hashes.
func (u *Users) List() []User {
	u.maybeReload()
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]User, 0, len(u.order))
	for _, n := range u.order {
		out = append(out, User{Name: n, Role: u.users[n].Role})
	}
	return out
}

// Reload reads the users file again if it changed since the last load
// (mtime, size or identity). On a parse error the previous set stays in
// force and the error is returned. Credentials cached for a user whose
// hash changed, or who was removed, are dropped.
func (u *Users) Reload() error {
	u.reloadMu.Lock()
	defer u.reloadMu.Unlock()
	return u.reloadLocked()
}

func (u *Users) reloadLocked() error {
	u.nextCheck.Store(u.now().Add(reloadInterval).UnixNano())

	st, err := stampOf(u.path)
	if err != nil {
		return err
	}
	u.mu.RLock()
	unchanged := u.loaded && u.stat.same(st)
	u.mu.RUnlock()
	if unchanged {
		return nil
	}
	if u.badErr != nil && u.badStat.same(st) {
		return errStillBad{u.badErr}
	}
	var users []User
	if st.exists {
		users, err = readUsersFile(u.path)
		if err != nil {
			u.badStat, u.badErr = st, err
			return err
		}
	}
	u.badErr = nil
	m := make(map[string]User, len(users))
	order := make([]string, 0, len(users))
	for _, usr := range users {
		m[usr.Name] = usr
		order = append(order, usr.Name)
	}
	u.mu.Lock()
	old := u.users
	wasLoaded := u.loaded
	u.users, u.order, u.stat, u.loaded = m, order, st, true
	u.mu.Unlock()

	// Invalidate cached credentials of users whose hash changed or who
	// are gone. Users whose line did not change keep their entries.
	var changed []string
	for name, o := range old {
		if n, ok := m[name]; !ok || !bytes.Equal(n.hash, o.hash) {
			changed = append(changed, name)
		}
	}
	if len(changed) > 0 {
		u.cache.dropUsers(changed)
	}
	if wasLoaded && (len(changed) > 0 || len(old) != len(m)) {
		u.log.Info().Str("file", u.path).Int("users", len(m)).Msg("users file reloaded")
	}
	return nil
}

// maybeReload reloads the users file at most once per reloadInterval.
// Requests never wait for it: while one goroutine checks the file, the
// others go on with the users they have.
func (u *Users) maybeReload() {
	if u.now().UnixNano() < u.nextCheck.Load() {
		return
	}
	if !u.reloadMu.TryLock() {
		return
	}
	defer u.reloadMu.Unlock()
	if u.now().UnixNano() < u.nextCheck.Load() {
		return // another goroutine just checked
	}
	if err := u.reloadLocked(); err != nil && !errors.As(err, new(errStillBad)) {
		u.log.Error().Err(err).Str("file", u.path).Msg("users file not reloaded, keeping the previous users")
	}
}

// errStillBad is the error of a reload that found the users file as
// broken as last time; maybeReload does not log it again.
type errStillBad struct{ err error }

func (e errStillBad) Error() string { return e.err.Error() }
func (e errStillBad) Unwrap() error { return e.err }

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, fmt.Errorf("auth: users file: %w", err)
	}
	return fileStamp{exists: true, info: fi}, nil
}

// Verify reports whether password is name's password. It takes ~50 ms
// (bcrypt) on a cache miss and microseconds on a hit; unknown users and
// over-long passwords take the same time as a wrong password.
func (u *Users) Verify(name, password string) bool {
	ok, _ := u.VerifyContext(context.Background(), name, password)
	return ok
}

// VerifyContext is Verify that gives up waiting for a bcrypt slot when ctx
// ends (the error is then ctx.Err()).
func (u *Users) VerifyContext(ctx context.Context, name, password string) (bool, error) {
	u.maybeReload()
	u.mu.RLock()
	usr, known := u.users[name]
	u.mu.RUnlock()

	valid := known && len(password) <= MaxPasswordBytes && password != ""
	var key [sha256.Size]byte
	if valid {
		key = u.cacheKey(name, password)
		if u.cache.hit(key, usr.hash, u.now()) {
			return true, nil
		}
	}
	hash := u.dummy
	if valid {
		hash = usr.hash
	}
	select {
	case u.bcryptSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	err := u.compare(hash, []byte(password))
	<-u.bcryptSem
	if !valid || err != nil {
		return false, nil
	}
	u.cache.add(key, name, usr.hash, u.now())
	return true, nil
}

// cacheKey is HMAC-SHA256(hmacKey, name "\x00" password): the cache never
// holds a password or anything from which one can be tested offline
// without the per-process key.
func (u *Users) cacheKey(name, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, u.hmacKey[:])
	io.WriteString(m, name)
	m.Write([]byte{0})
	io.WriteString(m, password)
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// ParseError is a bad line in a users file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// parseLine parses one line of a users file. It returns ok=false for
// blank lines and comments.
func parseLine(line string) (usr User, ok bool, err error) {
	line = strings.TrimRight(line, "\r")
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' {
		return User{}, false, nil
	}
	fields := strings.Split(line, ":")
	if len(fields) < 2 || len(fields) > 3 {
		return User{}, false, errors.New(`want "name:bcrypt-hash" or "name:bcrypt-hash:role"`)
	}
	name, hash := fields[0], fields[1]
	if !ValidName(name) {
		return User{}, false, fmt.Errorf("invalid user name %q: want 1-64 characters of A-Z a-z 0-9 . _ @ + -, not starting with a dot", name)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil || !strings.HasPrefix(hash, "$2") {
		return User{}, false, fmt.Errorf("user %s: not a bcrypt hash (create one with `davmail user add` or `htpasswd -B`)", name)
	}
	role := ""
	if len(fields) == 3 {
		role = fields[2]
	}
	if role != RoleUser && role != RoleAdmin {
		return User{}, false, fmt.Errorf("user %s: unknown role %q: want %q or nothing", name, role, RoleAdmin)
	}
	return User{Name: name, Role: role, hash: []byte(hash)}, true, nil
}

// readUsersFile parses the users file.
func readUsersFile(path string) ([]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: users file: %w", err)
	}
	defer f.Close()
	return parseUsers(path, f)
}

// parseUsers parses a users file read from r; name is for errors.
func parseUsers(name string, r io.Reader) ([]User, error) {
	lr := &io.LimitedReader{R: r, N: maxUsersFile + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	var users []User
	seen := map[string]bool{}
	n := 0
	for sc.Scan() {
		n++
		usr, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, &ParseError{File: name, Line: n, Msg: err.Error()}
		}
		if !ok {
			continue
		}
		if seen[usr.Name] {
			return nil, &ParseError{File: name, Line: n, Msg: fmt.Sprintf("user %s listed twice", usr.Name)}
		}
		seen[usr.Name] = true
		users = append(users, usr)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{File: name, Line: n + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("auth: users file %s: %w", name, err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("auth: users file %s is larger than %d bytes", name, maxUsersFile)
	}
	return users, nil
}

// WriteOption changes how AddUser behaves.
type WriteOption func(*writeOptions)

type writeOptions struct {
	replace bool
	cost    int
}

// Replace lets AddUser change the password and role of an existing user.
func Replace() WriteOption { return func(o *writeOptions) { o.replace = true } }

// Cost sets the bcrypt cost of the new hash instead of BcryptCost.
// Values outside bcrypt's range (4–31) are refused by AddUser. Tests use
// bcrypt.MinCost for speed.
func Cost(c int) WriteOption { return func(o *writeOptions) { o.cost = c } }

// ErrUserExists is returned by AddUser for an existing name without Replace.
var ErrUserExists = errors.New("user already exists")

// ErrNoSuchUser is returned by DelUser for a name not in the file.
var ErrNoSuchUser = errors.New("no such user")

// AddUser adds name with password and role to the users file at path,
// creating the file (mode 0600) and its directory if needed. Existing
// lines, comments included, are kept as they are. An existing name is
// refused with ErrUserExists unless Replace is given, which rewrites that
// user's line in place. The file is replaced atomically.
func AddUser(path, name, password, role string, opts ...WriteOption) error {
	o := writeOptions{cost: BcryptCost}
	for _, f := range opts {
		f(&o)
	}
	if !ValidName(name) {
		return fmt.Errorf("invalid user name %q: want 1-64 characters of A-Z a-z 0-9 . _ @ + -, not starting with a dot", name)
	}
	if password == "" {
		return errors.New("empty password")
	}
	if len(password) > MaxPasswordBytes {
		return fmt.Errorf("password longer than %d bytes (bcrypt ignores the rest)", MaxPasswordBytes)
	}
	if role != RoleUser && role != RoleAdmin {
		return fmt.Errorf("unknown role %q: want %q or nothing", role, RoleAdmin)
	}
	if o.cost < bcrypt.MinCost || o.cost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost %d out of range %d-%d", o.cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), o.cost)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	line := name + ":" + string(hash)
	if role != "" {
		line += ":" + role
	}
	return editUsersFile(path, func(lines []string) ([]string, error) {
		for i, l := range lines {
			usr, ok, _ := parseLine(l)
			if ok && usr.Name == name {
				if !o.replace {
					return nil, fmt.Errorf("%w: %s", ErrUserExists, name)
				}
				lines[i] = line
				return lines, nil
			}
		}
		return append(lines, line), nil
	})
}

// DelUser removes name from the users file at path, keeping every other
// line. It returns ErrNoSuchUser if name is not there.
func DelUser(path, name string) error {
	return editUsersFile(path, func(lines []string) ([]string, error) {
		out := lines[:0]
		found := false
		for _, l := range lines {
			if usr, ok, _ := parseLine(l); ok && usr.Name == name {
				found = true
				continue
			}
			out = append(out, l)
		}
		if !found {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		return out, nil
	})
}

// editUsersFile applies edit to the lines of the users file under an
// exclusive lock (so two `davmail user` commands do not lose each other's
// change) and replaces the file atomically: write a temporary file in the
// same directory, fsync it, rename it over the old one, fsync the
// directory. A reader sees the old file or the new one, never a mix.
func editUsersFile(path string, edit func([]string) ([]string, error)) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("locking users file: %w", err)
	}
	defer unlock()

	var lines []string
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if len(data) > maxUsersFile {
			return fmt.Errorf("users file %s is larger than %d bytes", path, maxUsersFile)
		}
		// Validate before editing: never rewrite a file we cannot parse.
		if _, err := parseUsers(path, bytes.NewReader(data)); err != nil {
			return err
		}
		s := strings.TrimSuffix(string(data), "\n")
		if s != "" {
			lines = strings.Split(s, "\n")
		}
	}
	lines, err = edit(lines)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return writeFileAtomic(path, buf.Bytes(), 0o600)
}

// writeFileAtomic writes data to path via a temporary file, fsync and
// rename, then fsyncs the directory so the rename survives a crash.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	done = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
