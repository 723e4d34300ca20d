// Package metrics holds davmail's Prometheus metrics (package
// github.com/prometheus/client_golang) on a registry of their own: nothing
// is registered in the client library's global default registry, so two
// servers in one process (the tests) never share or collide.
//
// The request metrics are fed by the access log, once per request, from
// what it already records (method, status, duration, bytes, the limit that
// refused the request). Everything else is a gauge or counter read at
// scrape time from the component that owns the figure (session table,
// lock table, mail queue, index directory), registered with GaugeFunc and
// CounterFunc: no figure is kept twice.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Namespace prefixes every davmail metric name.
const Namespace = "davmail"

// durationBuckets are the request latency histogram's upper bounds in
// seconds: ×4 steps from 1 ms (a cached PROPFIND Depth 0) to ~65 s (a
// large download or a Depth: infinity listing on a slow link). Nine
// buckets keep the series count per method small.
var durationBuckets = prometheus.ExponentialBuckets(0.001, 4, 9)

// knownMethods are the method label values. Methods are chosen by the
// client, so anything else is counted as "OTHER": a client must not be
// able to create series at will.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "PUT": true, "POST": true, "DELETE": true, "OPTIONS": true,
	"PROPFIND": true, "PROPPATCH": true, "MKCOL": true, "COPY": true, "MOVE": true,
	"LOCK": true, "UNLOCK": true, "SEARCH": true,
	"BPROPFIND": true, "BPROPPATCH": true, "BDELETE": true, "BMOVE": true, "BCOPY": true,
	"SUBSCRIBE": true, "UNSUBSCRIBE": true, "POLL": true, "X-MS-ENUMATTS": true,
}

// Method returns the method label for m: m itself when davmail knows it,
// "OTHER" otherwise.
func Method(m string) string {
	if knownMethods[m] {
		return m
	}
	return "OTHER"
}

// Metrics is the set of davmail metrics and their registry. Its methods
// are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	log zerolog.Logger

	requests  *prometheus.CounterVec   // method, status
	duration  *prometheus.HistogramVec // method
	bytesIn   *prometheus.CounterVec   // method
	bytesOut  *prometheus.CounterVec   // method
	refusals  *prometheus.CounterVec   // limit
	throttled *prometheus.CounterVec   // status
	inFlight  prometheus.Gauge
}

// New returns the metrics on a fresh registry, with the Go runtime and
// process collectors. Registration errors go to log (they are programmer
// errors: two metrics with one name).
func New(log zerolog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by method and status code.",
	}, []string{"method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time from the request's arrival to the end of its response, by method.",
		Buckets: durationBuckets,
	}, []string{"method"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_request_bytes_total",
		Help: "Request body bytes read, by method.",
	}, []string{"method"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_response_bytes_total",
		Help: "Response body bytes written, by method.",
	}, []string{"method"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "limit_refusals_total",
		Help: "Requests refused by a limit, by the limit's name (max-message-size, ...).",
	}, []string{"limit"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_throttled_total",
		Help: "Requests answered 429 Too Many Requests or 503 Service Unavailable, by status.",
	}, []string{"status"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "http_requests_in_flight",
		Help: "Requests being served now.",
	})
	m.register(m.requests, m.duration, m.bytesIn, m.bytesOut, m.refusals, m.throttled, m.inFlight,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: Namespace}))
	return m
}

func (m *Metrics) register(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			m.log.Error().Err(err).Msg("registering a metric")
		}
	}
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A scrape must never hang on a stuck collector.
		Timeout: 10 * time.Second,
	})
}

// Request is what the access log knows about one finished request.
type Request struct {
	Method   string
	Status   int
	Duration time.Duration
	BytesIn  int64
	BytesOut int64
	// Limit names the limit that refused the request, "" if none.
	Limit string
}

// Started counts a request in flight; call Done when it ends.
func (m *Metrics) Started() { m.inFlight.Inc() }

// Done records a finished request.
func (m *Metrics) Done(r Request) {
	m.inFlight.Dec()
	method := Method(r.Method)
	m.requests.WithLabelValues(method, strconv.Itoa(r.Status)).Inc()
	m.duration.WithLabelValues(method).Observe(r.Duration.Seconds())
	m.bytesIn.WithLabelValues(method).Add(float64(r.BytesIn))
	m.bytesOut.WithLabelValues(method).Add(float64(r.BytesOut))
	if r.Limit != "" {
		m.refusals.WithLabelValues(r.Limit).Inc()
	}
	if r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable {
		m.throttled.WithLabelValues(strconv.Itoa(r.Status)).Inc()
	}
}

// GaugeFunc registers a gauge davmail_<name> whose value f returns at
// each scrape. labels are constant labels ("map": "users"); nil for none.
// f must be cheap and safe for concurrent use.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: name, Help: help, ConstLabels: labels,
	}, f))
}

// CounterFunc registers a counter davmail_<name> read from f at each
// scrape; f must never decrease.
func (m *Metrics) CounterFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Name: name, Help: help, ConstLabels: labels,
	}, f))
}
