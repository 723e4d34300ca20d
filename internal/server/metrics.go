package server

import (
	"github.com/davmail/davmail/mailbox/maildir"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/davmail/davmail/internal/metrics"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/prometheus/client_golang/prometheus"
)

// maxIndexFiles bounds the walk that measures the index at each scrape:
// one file per user, so 100,000 covers any single server; past it the
// figure is a lower bound rather than a slow scrape.
const maxIndexFiles = 100_000

// registerMetrics registers the figures read at scrape time: the bounded
// tables the server can reach, the index size and the mail queue.
func (s *Server) registerMetrics() {
	m := s.metrics
	m.GaugeFunc("sessions", "Forms-login (OWA) sessions held in memory.", nil,
		func() float64 { return float64(s.sessions.Len()) })
	m.GaugeFunc("users", "Users in the users file.", nil,
		func() float64 { return float64(s.users.Len()) })
	m.GaugeFunc("credential_cache_entries", "Successful password checks cached (bcrypt is skipped for them).", nil,
		func() float64 { return float64(s.users.CacheLen()) })
	th := s.auth.Throttle()
	m.GaugeFunc("login_throttle_entries", "Keys tracked by the failed-login throttle, by table.", prometheus.Labels{"table": "users"},
		func() float64 { u, _ := th.Len(); return float64(u) })
	m.GaugeFunc("login_throttle_entries", "Keys tracked by the failed-login throttle, by table.", prometheus.Labels{"table": "addresses"},
		func() float64 { _, a := th.Len(); return float64(a) })
	m.GaugeFunc("dav_locks", "WebDAV locks held (bounded table).", nil,
		func() float64 { return float64(s.dav.LockCount()) })
	m.GaugeFunc("dav_subscriptions", "Exchange SUBSCRIBE subscriptions held (bounded table).", nil,
		func() float64 { return float64(s.dav.SubscriptionCount()) })
	if l, ok := s.store.(interface{ Len() int }); ok {
		m.GaugeFunc("mailboxes_open", "Mailboxes open in the store (index handles kept, bounded LRU).", nil,
			func() float64 { return float64(l.Len()) })
	}
	if l, ok := s.store.(interface{ MessagesInMemory() int64 }); ok {
		m.GaugeFunc("index_messages_in_memory", "Messages whose index entries the open mailboxes hold in memory (bounded by index-memory-messages: past it the least recently used idle mailboxes are unloaded).", nil,
			func() float64 { return float64(l.MessagesInMemory()) })
	}
	if lim := s.limiter; lim != nil {
		for _, g := range []struct {
			table string
			f     func() int
		}{{"users", lim.UsersLen}, {"addresses", lim.IPsLen}, {"coalesced_flights", lim.FlightsLen}} {
			m.GaugeFunc("limits_entries", "Keys tracked by the fair-share limiter, by table (each capped, LRU).", prometheus.Labels{"table": g.table},
				func() float64 { return float64(g.f()) })
		}
		m.GaugeFunc("requests_in_flight", "Requests being served now (the server-wide cap is max-in-flight).", nil,
			func() float64 { return float64(lim.InFlight()) })
	}
	// Index catch-up work. There is no lag gauge: the Maildir index is
	// brought up to date (changed folders rescanned) before each answer,
	// so its lag is the time of that rescan, which shows in the request
	// latency; these counters show how much catching up happens.
	if md, ok := s.store.(interface{ Stats() maildir.Stats }); ok {
		for _, c := range []struct {
			name, help string
			f          func(maildir.Stats) uint64
		}{
			{"index_messages_parsed_total", "Message files scanned into the index (new mail found by a rescan).", func(st maildir.Stats) uint64 { return st.Parsed }},
			{"index_folder_scans_total", "Folder rescans after the Maildir changed underneath (delivery, another IMAP client).", func(st maildir.Stats) uint64 { return st.Scans }},
			{"index_structure_fills_total", "MIME structures scanned on first use because the index lacked them (after an upgrade).", func(st maildir.Stats) uint64 { return st.StructFills }},
		} {
			m.CounterFunc(c.name, c.help, nil, func() float64 { return float64(c.f(md.Stats())) })
		}
	}
	m.CounterFunc("panics_total", "Handler panics recovered (each answered a 500): always a bug.", nil,
		func() float64 { return float64(s.panics.Load()) })
	dir := s.cfg.IndexDir()
	m.GaugeFunc("index_bytes", "Size of the mailbox index files under <data>/index.", nil,
		func() float64 { return float64(dirSize(dir, maxIndexFiles)) })
	m.GaugeFunc("index_files", "Index files under <data>/index (one per user whose mailbox was opened).", nil,
		func() float64 { return float64(fileCount(dir, maxIndexFiles)) })
	if s.submit != nil {
		q := s.submit.q
		m.GaugeFunc("queue_messages", "Messages in the outgoing mail queue, in flight included.", nil,
			func() float64 { return float64(q.Len()) })
		m.GaugeFunc("queue_in_flight", "Queued messages being delivered now.", nil,
			func() float64 { return float64(q.Stats().InFlight) })
		for _, c := range []struct {
			name string
			f    func() uint64
		}{
			{"delivered", func() uint64 { return q.Stats().Delivered }},
			{"bounced", func() uint64 { return q.Stats().Bounced }},
			{"deferred", func() uint64 { return q.Stats().Deferred }},
		} {
			m.CounterFunc("queue_recipients_total", "Recipients handled by the relay since start, by outcome.",
				prometheus.Labels{"outcome": c.name}, func() float64 { return float64(c.f()) })
		}
	}
	if s.certs != nil {
		m.GaugeFunc("tls_cert_not_after_seconds", "Expiry of the served TLS certificate (Unix time): alert well before it.", nil,
			func() float64 { return float64(s.certs.notAfter().Unix()) })
	}
	start := time.Now()
	m.GaugeFunc("start_time_seconds", "When this davmail started (Unix time).", nil,
		func() float64 { return float64(start.Unix()) })
}

// dirSize sums the sizes of the regular files under dir, visiting at
// most max entries. A missing dir is 0.
func dirSize(dir string, max int) int64 {
	var total int64
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: count what can be seen
		}
		if n++; n > max {
			return filepath.SkipAll
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// fileCount counts the regular files under dir, at most max.
func fileCount(dir string, max int) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if n++; n >= max {
				return filepath.SkipAll
			}
		}
		return nil
	})
	return n
}

// metricsForAdmins serves the metrics on the main listener, behind the
// same authentication as the mailboxes, to users with the admin role only
// (403 for others): mail users must not read the server's figures.
func (s *Server) metricsForAdmins() http.Handler {
	h := s.metrics.Handler()
	return s.auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.users.Lookup(reqlog.User(r.Context()))
		if !ok || !u.Admin() {
			http.Error(w, "403 Forbidden: /metrics is for admin users (or set metrics-listen)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// ServeMetrics serves /metrics (and /healthz) without authentication on
// ln, the metrics-listen address, until Shutdown. It returns nil after a
// Shutdown.
func (s *Server) ServeMetrics(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	// Scrapes are not logged as requests (one every 15 s would drown the
	// access log) and not counted in the request metrics.
	return s.serveSide(s.sideServer(mux), ln)
}

// Metrics returns the server's metrics (tests read the registry).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }
