package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// counter counts bcrypt comparisons.
type counter struct{ n atomic.Int64 }

func (c *counter) compare(hash, pw []byte) error {
	c.n.Add(1)
	return bcrypt.CompareHashAndPassword(hash, pw)
}

// fast is the bcrypt cost for test users: the minimum, so tests run quickly.
var fast = Cost(bcrypt.MinCost)

type fixture struct {
	path  string
	clock *clock
	cmp   *counter
	users *Users
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "users"), clock: newClock(), cmp: &counter{}}
	opts.Now = f.clock.Now
	opts.Compare = f.cmp.compare
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	u, err := NewUsers(f.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Unknown users cost a bcrypt of the same cost as real ones; in tests
	// that is the minimum cost, as for the test users.
	u.dummy = []byte(hashOf(t, "never valid"))
	f.users = u
	return f
}

func (f *fixture) add(t *testing.T, name, pw, role string, opts ...WriteOption) {
	t.Helper()
	if err := AddUser(f.path, name, pw, role, append(opts, fast)...); err != nil {
		t.Fatalf("AddUser(%s): %v", name, err)
	}
}

// tick moves the clock past the reload interval and reloads.
func (f *fixture) tick(t *testing.T) {
	t.Helper()
	f.clock.Add(reloadInterval + time.Millisecond)
}

func hashOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseUsers(t *testing.T) {
	h := hashOf(t, "secret")
	good := func(name, text string, want ...string) {
		t.Helper()
		us, err := parseUsers(name, strings.NewReader(text))
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
			return
		}
		var got []string
		for _, u := range us {
			got = append(got, u.Name+"/"+u.Role)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	bad := func(name, text string, line int, msg string) {
		t.Helper()
		_, err := parseUsers(name, strings.NewReader(text))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a ParseError", name, err)
			return
		}
		if pe.Line != line || !strings.Contains(pe.Msg, msg) {
			t.Errorf("%s: got line %d %q, want line %d containing %q", name, pe.Line, pe.Msg, line, msg)
		}
	}
	good("empty", "")
	good("comments", "# users\n\n   # indented comment\n")
	good("one", "alice:"+h+"\n", "alice/")
	good("admin", "alice:"+h+":admin\n", "alice/admin")
	good("crlf", "alice:"+h+"\r\nbob:"+h+"\r\n", "alice/", "bob/")
	good("no final newline", "alice:"+h, "alice/")
	good("htpasswd -B style $2y$", "carol:"+strings.Replace(h, "$2a$", "$2y$", 1)+"\n", "carol/")
	good("name chars", "a.b_c@d+e-f:"+h+"\n", "a.b_c@d+e-f/")

	bad("no hash", "alice\n", 1, "want")
	bad("empty hash", "alice:\n", 1, "not a bcrypt hash")
	bad("md5 hash", "# x\nalice:$apr1$abc$def\n", 2, "not a bcrypt hash")
	bad("plain", "alice:secret\n", 1, "not a bcrypt hash")
	bad("role", "alice:"+h+":root\n", 1, "unknown role")
	bad("too many fields", "alice:"+h+":admin:x\n", 1, "want")
	bad("dot name", ".alice:"+h+"\n", 1, "invalid user name")
	bad("slash name", "a/b:"+h+"\n", 1, "invalid user name")
	bad("long name", strings.Repeat("a", 65)+":"+h+"\n", 1, "invalid user name")
	bad("duplicate", "alice:"+h+"\n\nalice:"+h+"\n", 3, "twice")
	bad("long line", "# "+strings.Repeat("x", maxLine)+"\n", 1, "longer than")
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "demo", "alice@example.com", "a.b", "A-Z_0+9", strings.Repeat("x", 64)} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", ".", "..", ".hidden", "a/b", "a b", "a:b", "a\\b", "ü", strings.Repeat("x", 65), "a\x00"} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
}

func TestAddDelList(t *testing.T) {
	f := newFixture(t, Options{})
	if n := f.users.Len(); n != 0 {
		t.Fatalf("missing file: %d users, want 0", n)
	}
	// An admin's comment survives rewrites.
	if err := os.WriteFile(f.path, []byte("# managed by hand\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.add(t, "alice", "pw-a", RoleAdmin)
	f.add(t, "bob", "pw-b", "")
	f.add(t, "carol", "pw-c", "")

	if err := AddUser(f.path, "bob", "other", "", fast); !errors.Is(err, ErrUserExists) {
		t.Errorf("duplicate AddUser: %v, want ErrUserExists", err)
	}
	for _, c := range []struct{ name, pw, role string }{
		{".x", "pw", ""}, {"x", "", ""}, {"x", strings.Repeat("p", 73), ""}, {"x", "pw", "root"},
	} {
		if err := AddUser(f.path, c.name, c.pw, c.role, fast); err == nil {
			t.Errorf("AddUser(%q, %q, %q) succeeded", c.name, c.pw, c.role)
		}
	}
	if err := DelUser(f.path, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := DelUser(f.path, "bob"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("second DelUser: %v, want ErrNoSuchUser", err)
	}

	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# managed by hand\n") {
		t.Errorf("comment lost:\n%s", data)
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(f.path), ".users.tmp*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}

	if err := f.users.Reload(); err != nil {
		t.Fatal(err)
	}
	got := f.users.List()
	if len(got) != 2 || got[0].Name != "alice" || !got[0].Admin() || got[1].Name != "carol" || got[1].Admin() {
		t.Errorf("List = %+v, want alice(admin), carol", got)
	}
	if u, ok := f.users.Lookup("carol"); !ok || u.Name != "carol" || u.hash != nil {
		t.Errorf("Lookup(carol) = %+v, %v", u, ok)
	}
	if _, ok := f.users.Lookup("bob"); ok {
		t.Error("Lookup(bob) found a deleted user")
	}

	// Replace changes the password and role in place.
	f.add(t, "alice", "new-a", "", Replace())
	f.tick(t)
	if f.users.Verify("alice", "pw-a") || !f.users.Verify("alice", "new-a") {
		t.Error("Replace did not change alice's password")
	}
	if u, _ := f.users.Lookup("alice"); u.Admin() {
		t.Error("Replace did not change alice's role")
	}
	if got := f.users.List(); got[0].Name != "alice" {
		t.Errorf("Replace moved alice: %+v", got)
	}
}

func TestAddUserRefusesBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	orig := "alice:not-a-hash\n"
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(path, "bob", "pw", "", fast); err == nil {
		t.Fatal("AddUser rewrote a file it cannot parse")
	}
	if data, _ := os.ReadFile(path); string(data) != orig {
		t.Errorf("file changed to %q", data)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, Options{})
	f.add(t, "alice", "correct horse", "")
	f.tick(t)

	if !f.users.Verify("alice", "correct horse") {
		t.Error("right password refused")
	}
	for _, c := range []struct{ name, pw string }{
		{"alice", "wrong"}, {"alice", ""}, {"alice", "correct horse "}, {"Alice", "correct horse"},
		{"nobody", "correct horse"}, {"", ""}, {"alice", "correct horse" + strings.Repeat("x", 100)},
	} {
		before := f.cmp.n.Load()
		if f.users.Verify(c.name, c.pw) {
			t.Errorf("Verify(%q, %q) = true", c.name, c.pw)
		}
		// Every refusal costs one bcrypt, so timing tells nothing about
		// which names exist.
		if d := f.cmp.n.Load() - before; d != 1 {
			t.Errorf("Verify(%q, %q): %d bcrypt runs, want 1", c.name, c.pw, d)
		}
	}
}

func TestVerifyDummyHashIsValidBcrypt(t *testing.T) {
	if c, err := bcrypt.Cost(dummyHash); err != nil || c != BcryptCost {
		t.Fatalf("dummy hash cost %d, %v; want %d so unknown users take as long as known ones", c, err, BcryptCost)
	}
}

func TestVerifyCache(t *testing.T) {
	f := newFixture(t, Options{})
	f.add(t, "alice", "pw", "")
	f.add(t, "bob", "pw-b", "")
	f.tick(t)

	if !f.users.Verify("alice", "pw") {
		t.Fatal("refused")
	}
	if n := f.cmp.n.Load(); n != 1 {
		t.Fatalf("%d bcrypt runs after first Verify, want 1", n)
	}
	for range 10 {
		if !f.users.Verify("alice", "pw") {
			t.Fatal("cached credentials refused")
		}
	}
	if n := f.cmp.n.Load(); n != 1 {
		t.Errorf("%d bcrypt runs after 11 Verify, want 1 (cache miss)", n)
	}
	if n := f.users.CacheLen(); n != 1 {
		t.Errorf("CacheLen = %d, want 1", n)
	}
	// A wrong password is never cached.
	f.users.Verify("alice", "nope")
	f.users.Verify("alice", "nope")
	if n := f.cmp.n.Load(); n != 3 {
		t.Errorf("%d bcrypt runs, want 3: wrong passwords must not be cached", n)
	}

	// Expiry.
	f.clock.Add(DefaultCacheTTL)
	if !f.users.Verify("alice", "pw") {
		t.Fatal("refused after expiry")
	}
	if n := f.cmp.n.Load(); n != 4 {
		t.Errorf("%d bcrypt runs, want 4: the entry should have expired", n)
	}

	// A password change invalidates alice's entry but not bob's.
	f.users.Verify("bob", "pw-b")
	f.add(t, "alice", "new", "", Replace())
	f.tick(t)
	before := f.cmp.n.Load()
	if f.users.Verify("alice", "pw") {
		t.Error("old password still accepted after the change")
	}
	if !f.users.Verify("bob", "pw-b") {
		t.Error("bob refused")
	}
	if d := f.cmp.n.Load() - before; d != 1 {
		t.Errorf("%d bcrypt runs, want 1 (alice's old password only; bob cached)", d)
	}
	if !f.users.Verify("alice", "new") {
		t.Error("new password refused")
	}

	// Deleting a user drops its entries.
	if err := DelUser(f.path, "bob"); err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	if f.users.Verify("bob", "pw-b") {
		t.Error("deleted user accepted from cache")
	}
}

func TestVerifyCacheCap(t *testing.T) {
	f := newFixture(t, Options{CacheSize: 3})
	names := []string{"u1", "u2", "u3", "u4"}
	for _, n := range names {
		f.add(t, n, "pw-"+n, "")
	}
	f.tick(t)
	for _, n := range names {
		if !f.users.Verify(n, "pw-"+n) {
			t.Fatalf("%s refused", n)
		}
	}
	if n := f.users.CacheLen(); n != 3 {
		t.Fatalf("CacheLen = %d, want the cap 3", n)
	}
	before := f.cmp.n.Load()
	f.users.Verify("u4", "pw-u4") // newest: cached
	f.users.Verify("u2", "pw-u2") // cached
	if d := f.cmp.n.Load() - before; d != 0 {
		t.Errorf("%d bcrypt runs for cached users, want 0", d)
	}
	f.users.Verify("u1", "pw-u1") // oldest: evicted
	if d := f.cmp.n.Load() - before; d != 1 {
		t.Errorf("%d bcrypt runs, want 1: u1 should have been evicted", d)
	}
	if n := f.users.CacheLen(); n != 3 {
		t.Errorf("CacheLen = %d, want 3", n)
	}
}

func TestReload(t *testing.T) {
	f := newFixture(t, Options{})
	if f.users.Verify("alice", "pw") {
		t.Fatal("accepted with no users file")
	}
	f.add(t, "alice", "pw", "")
	// Within the reload interval the change is not seen yet...
	if _, ok := f.users.Lookup("alice"); ok {
		t.Error("file re-read before the reload interval")
	}
	// ...after it, it is.
	f.tick(t)
	if !f.users.Verify("alice", "pw") {
		t.Fatal("new user not picked up")
	}
	// A broken edit keeps the previous users in force.
	if err := os.WriteFile(f.path, []byte("alice:garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.users.Reload(); err == nil {
		t.Error("Reload of a broken file: no error")
	}
	f.tick(t)
	if _, ok := f.users.Lookup("alice"); !ok {
		t.Error("broken file replaced the users")
	}
	// Fixing the file is picked up.
	if err := os.WriteFile(f.path, []byte(""), 0o600); err != nil {
		t.Fatal(err)
	}
	f.add(t, "bob", "pw-b", "")
	f.tick(t)
	if _, ok := f.users.Lookup("bob"); !ok {
		t.Error("repaired file not picked up")
	}
	// Removing the file empties the set.
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	if n := len(f.users.List()); n != 0 {
		t.Errorf("%d users after the file was removed, want 0", n)
	}
}

// TestConcurrent exercises Verify, edits and reloads together under -race.
func TestConcurrent(t *testing.T) {
	f := newFixture(t, Options{CacheSize: 8})
	f.add(t, "alice", "pw", "")
	f.tick(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				f.users.Verify("alice", "pw")
				f.users.Verify("nobody", "x")
				if g == 0 && i%5 == 0 {
					f.clock.Add(reloadInterval)
					_ = AddUser(f.path, "alice", "pw", "", Replace(), fast)
				}
				f.users.List()
				f.users.CacheLen()
			}
		}()
	}
	wg.Wait()
	f.tick(t)
	if !f.users.Verify("alice", "pw") {
		t.Error("alice refused after concurrent edits")
	}
}
