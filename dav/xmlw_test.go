package dav

import (
	"net/http"
	"testing"
	"time"
)

func TestDateFormats(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", -5*3600)),
		time.Unix(0, 0),
	} {
		if got, want := string(appendHTTPDate(nil, tm)), tm.UTC().Format(http.TimeFormat); got != want {
			t.Errorf("http date %q, want %q", got, want)
		}
		if got, want := string(appendISODate(nil, tm)), tm.UTC().Format("2006-01-02T15:04:05Z"); got != want {
			t.Errorf("iso date %q, want %q", got, want)
		}
		if got, want := string(appendExchangeDate(nil, tm)), tm.UTC().Format("2006-01-02T15:04:05.000Z"); got != want {
			t.Errorf("exchange date %q, want %q", got, want)
		}
	}
}
