package dav_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/memstore"
	"github.com/rs/zerolog"
)

// testPasswords are the Basic credentials the test server accepts.
var testPasswords = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// withBasic is a minimal stand-in for internal/auth: it checks Basic
// credentials against testPasswords and records the user.
func withBasic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || testPasswords[u] != p || p == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="davmail"`)
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		e := &reqlog.Entry{User: u, Log: zerolog.Nop()}
		next.ServeHTTP(w, r.WithContext(reqlog.With(r.Context(), e)))
	})
}

type testServer struct {
	*httptest.Server
	store mailbox.Store
	h     *dav.Handler
}

func newTestServer(t testing.TB, cfg dav.Config) *testServer {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memstore.New()
	}
	h, err := dav.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/exchange/", withBasic(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, store: cfg.Store, h: h}
}
