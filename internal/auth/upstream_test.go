package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeUpstream accepts one password per user and counts logins.
type fakeUpstream struct {
	passwords map[string]string
	calls     atomic.Int64
	down      atomic.Bool
}

var errUpstreamDown = errors.New("upstream down")

func (f *fakeUpstream) login(ctx context.Context, user, password string) (bool, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return false, errUpstreamDown
	}
	return f.passwords[user] == password, nil
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newTestUpstream(t *testing.T, f *fakeUpstream, clock *testClock, log *bytes.Buffer, opts UpstreamOptions) *Upstream {
	t.Helper()
	opts.Login = f.login
	opts.Now = clock.now
	opts.Logger = zerolog.New(log)
	u, err := NewUpstream(opts)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUpstreamVerifyCaches(t *testing.T) {
	f := &fakeUpstream{passwords: map[string]string{"alice": "s3cret-alice", "bob": "s3cret-bob"}}
	clock := &testClock{t: time.Unix(1700000000, 0)}
	var log bytes.Buffer
	u := newTestUpstream(t, f, clock, &log, UpstreamOptions{CacheTTL: time.Minute, HoldFor: 10 * time.Minute})
	ctx := t.Context()

	for i := 0; i < 3; i++ {
		ok, err := u.VerifyContext(ctx, "alice", "s3cret-alice")
		if !ok || err != nil {
			t.Fatalf("verify %d: %v %v", i, ok, err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("3 verifications of the same credentials: %d upstream logins, want 1", got)
	}
	// A wrong password is asked upstream every time and never cached.
	for i := 0; i < 2; i++ {
		if ok, err := u.VerifyContext(ctx, "alice", "wrong"); ok || err != nil {
			t.Fatalf("wrong password accepted: %v %v", ok, err)
		}
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("two wrong passwords: %d logins in all, want 3", got)
	}
	// Past the TTL, upstream is asked again.
	clock.t = clock.t.Add(2 * time.Minute)
	if ok, _ := u.VerifyContext(ctx, "alice", "s3cret-alice"); !ok {
		t.Fatal("refused after TTL")
	}
	if got := f.calls.Load(); got != 4 {
		t.Errorf("after TTL: %d logins, want 4", got)
	}
	// Invalid input never reaches upstream.
	for _, c := range [][2]string{{"", "x"}, {"alice", ""}, {"al/ice", "x"}, {"alice", strings.Repeat("x", maxUpstreamPassword+1)}} {
		if ok, err := u.VerifyContext(ctx, c[0], c[1]); ok || err != nil {
			t.Errorf("VerifyContext(%q, len %d) = %v, %v", c[0], len(c[1]), ok, err)
		}
	}
	if got := f.calls.Load(); got != 4 {
		t.Errorf("invalid input reached upstream: %d logins, want 4", got)
	}
	// An upstream failure is an error, not a refusal, and is not cached.
	f.down.Store(true)
	if ok, err := u.VerifyContext(ctx, "bob", "s3cret-bob"); ok || !errors.Is(err, errUpstreamDown) {
		t.Errorf("upstream down: %v %v, want errUpstreamDown", ok, err)
	}
	f.down.Store(false)
	if ok, err := u.VerifyContext(ctx, "bob", "s3cret-bob"); !ok || err != nil {
		t.Errorf("upstream back: %v %v", ok, err)
	}
	for _, secret := range []string{"s3cret-alice", "s3cret-bob", "wrong"} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("log contains a password: %s", log.String())
		}
	}
}

func TestUpstreamHeldPasswords(t *testing.T) {
	f := &fakeUpstream{passwords: map[string]string{}}
	for i := 0; i < 5; i++ {
		f.passwords[fmt.Sprintf("u%d", i)] = fmt.Sprintf("pw%d", i)
	}
	clock := &testClock{t: time.Unix(1700000000, 0)}
	var log bytes.Buffer
	u := newTestUpstream(t, f, clock, &log, UpstreamOptions{HoldFor: time.Minute, MaxHeld: 3})
	ctx := t.Context()
	if _, ok := u.Password("u0"); ok {
		t.Fatal("password held before any login")
	}
	if ok, _ := u.VerifyContext(ctx, "u0", "pw0"); !ok {
		t.Fatal("login refused")
	}
	if pw, ok := u.Password("u0"); !ok || pw != "pw0" {
		t.Fatalf("Password(u0) = %q, %v", pw, ok)
	}
	// A refused login does not replace the held password.
	u.VerifyContext(ctx, "u0", "nope")
	if pw, _ := u.Password("u0"); pw != "pw0" {
		t.Errorf("held password after a refused login: %q", pw)
	}
	// Use extends the hold; idleness ends it.
	clock.t = clock.t.Add(50 * time.Second)
	if _, ok := u.Password("u0"); !ok {
		t.Fatal("dropped before HoldFor")
	}
	clock.t = clock.t.Add(61 * time.Second)
	if _, ok := u.Password("u0"); ok {
		t.Error("held past HoldFor without use")
	}
	// The table is capped, least recently used out first.
	for i := 0; i < 5; i++ {
		if ok, _ := u.VerifyContext(ctx, fmt.Sprintf("u%d", i), fmt.Sprintf("pw%d", i)); !ok {
			t.Fatalf("login u%d refused", i)
		}
	}
	if n := u.Held(); n != 3 {
		t.Errorf("Held() = %d, want the cap 3", n)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := u.Password(fmt.Sprintf("u%d", i)); ok != want {
			t.Errorf("u%d held = %v, want %v", i, ok, want)
		}
	}
	// Forget drops the password and the cached credentials.
	calls := f.calls.Load()
	u.Forget("u4")
	if _, ok := u.Password("u4"); ok {
		t.Error("held after Forget")
	}
	u.VerifyContext(ctx, "u4", "pw4")
	if f.calls.Load() != calls+1 {
		t.Error("credentials still cached after Forget")
	}
}

func TestUpstreamAuthenticate(t *testing.T) {
	f := &fakeUpstream{passwords: map[string]string{"alice": "pw:with:colons"}}
	clock := &testClock{t: time.Unix(1700000000, 0)}
	var log bytes.Buffer
	u := newTestUpstream(t, f, clock, &log, UpstreamOptions{})
	var _ Authenticator = u
	req := func(user, pw string) (string, bool, error) {
		r := httptest.NewRequest("PROPFIND", "/exchange/alice/", nil)
		r.SetBasicAuth(user, pw)
		return u.Authenticate(r)
	}
	if name, ok, err := req("alice", "pw:with:colons"); !ok || err != nil || name != "alice" {
		t.Errorf("good credentials: %q %v %v", name, ok, err)
	}
	if name, ok, err := req("alice", "bad"); ok || !errors.Is(err, ErrBadCredentials) || name != "alice" {
		t.Errorf("bad credentials: %q %v %v", name, ok, err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	if _, ok, err := u.Authenticate(r); ok || err != nil {
		t.Errorf("no credentials: %v %v, want the next authenticator", ok, err)
	}
	r.Header.Set("Authorization", "Basic !!!")
	if _, ok, err := u.Authenticate(r); ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed: %v %v", ok, err)
	}
}
