package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestMethodLabels(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "PROPFIND": "PROPFIND", "X-MS-ENUMATTS": "X-MS-ENUMATTS", "get": "OTHER", "FROB": "OTHER", "": "OTHER"} {
		if got := Method(in); got != want {
			t.Errorf("Method(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOwnRegistry: two Metrics do not share figures, and the handler
// serves what Done recorded.
func TestOwnRegistry(t *testing.T) {
	a, b := New(zerolog.Nop()), New(zerolog.Nop())
	a.Started()
	a.Done(Request{Method: "GET", Status: 200, Duration: 3 * time.Millisecond, BytesOut: 10})
	a.Started()
	a.Done(Request{Method: "PUT", Status: 413, Limit: "max-message-size", BytesIn: 0})
	a.GaugeFunc("things", "Things.", nil, func() float64 { return 7 })
	scrapeText := func(m *Metrics) string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	ta, tb := scrapeText(a), scrapeText(b)
	for _, want := range []string{
		`davmail_http_requests_total{method="GET",status="200"} 1`,
		`davmail_http_requests_total{method="PUT",status="413"} 1`,
		`davmail_limit_refusals_total{limit="max-message-size"} 1`,
		`davmail_http_response_bytes_total{method="GET"} 10`,
		`davmail_http_request_duration_seconds_bucket{method="GET",le="0.004"} 1`,
		`davmail_http_requests_in_flight 0`,
		`davmail_things 7`,
	} {
		if !strings.Contains(ta, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(tb, `davmail_http_requests_total{`) || strings.Contains(tb, "davmail_things") {
		t.Error("a second Metrics sees the first one's figures")
	}
	// A duplicate registration is logged, not a panic.
	a.GaugeFunc("things", "Things.", nil, func() float64 { return 8 })
}
