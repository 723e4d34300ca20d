package imap

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/mailbox/imap/imaptest"
)

// The tests run against a real Dovecot (Debian package dovecot-imapd)
// started once for the package on 127.0.0.1, with the approach of
// bench/compare/dovecot.go: a generated config, nothing from /etc.
// Without Dovecot the tests skip, except under CI=true, where they fail.

// testPassword is every test user's password (static passdb).
const testPassword = "test-secret"

// testDovecot is the running server, nil when Dovecot is not installed.
var testDovecot *imaptest.Dovecot

// dovecotMissing says why testDovecot is nil.
var dovecotMissing string

// userSeq makes upstream user names unique per store, so that every
// store (every conformance subtest) starts from empty mailboxes.
var userSeq atomic.Int64

func TestMain(m *testing.M) {
	d, err := imaptest.Start()
	if err != nil {
		dovecotMissing = err.Error()
		if imaptest.Required() {
			fmt.Fprintf(os.Stderr, "mailbox/imap: Dovecot is required under CI=true (apt-get install dovecot-imapd): %v\n", err)
			os.Exit(1)
		}
	}
	testDovecot = d
	code := m.Run()
	d.Stop()
	os.Exit(code)
}

// needDovecot skips t without Dovecot (CI never gets here without it:
// TestMain fails first).
func needDovecot(t testing.TB) *imaptest.Dovecot {
	t.Helper()
	if testDovecot == nil {
		t.Skipf("Dovecot not available (%s); install dovecot-imapd", dovecotMissing)
	}
	return testDovecot
}

// staticCreds gives every user the test password.
type staticCreds struct{}

func (staticCreds) Password(string) (string, bool) { return testPassword, true }

// newTestStore returns a store over the test Dovecot whose users map to
// fresh upstream users (prefix-user), closed at the end of the test
// unless the caller closes it.
func newTestStore(t testing.TB, prefix string, mod ...func(*Options)) *Store {
	t.Helper()
	d := needDovecot(t)
	if prefix == "" {
		prefix = fmt.Sprintf("t%d", userSeq.Add(1))
	}
	opts := Options{
		Dialer:      &Dialer{Addr: d.Addr, TLS: TLSNone},
		IndexDir:    t.TempDir(),
		Credentials: staticCreds{},
		LoginName:   func(u string) string { return prefix + "-" + u },
		Logger:      zerolog.New(zerolog.NewTestWriter(t)),
	}
	for _, f := range mod {
		f(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
