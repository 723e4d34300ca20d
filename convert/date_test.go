package convert

import (
	"net/mail"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	for _, c := range []struct {
		in   string
		want time.Time // zero: unparsable
	}{
		{"Mon, 02 Jan 2006 15:04:05 -0700", utc(2006, 1, 2, 22, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 +0000 (UTC)", utc(2006, 1, 2, 15, 4, 5)},
		{"2 Jan 2006 15:04:05 GMT", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 02 Jan 2006 15:04 +0100", utc(2006, 1, 2, 14, 4, 0)},
		{"Monday, 02-Jan-06 15:04:05 EST", utc(2006, 1, 2, 20, 4, 5)},
		{"Mon Jan  2 15:04:05 2006", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon Jan 2 15:04:05 PST 2006", utc(2006, 1, 2, 23, 4, 5)},
		{"2006-01-02T15:04:05Z", utc(2006, 1, 2, 15, 4, 5)},
		{"2006-01-02T15:04:05.123+02:00", utc(2006, 1, 2, 13, 4, 5)},
		{"2006-01-02 15:04:05 -0500", utc(2006, 1, 2, 20, 4, 5)},
		{"02.01.2006 15:04:05 +0100", utc(2006, 1, 2, 14, 4, 5)},
		{"Mon, 2 Jan 2006 15.04.05 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"01/02/2006 3:04 PM", utc(2006, 1, 2, 15, 4, 0)},
		{"Mon, 2 January 2006 12:00:00 AM +0000", utc(2006, 1, 2, 0, 0, 0)},
		{"Sat, 1 Sept 2001 10:00:00 CEST", utc(2001, 9, 1, 8, 0, 0)},
		{"Mon, 2 Jan 06 15:04:05 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 99 15:04:05 +0000", utc(1999, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 106 15:04:05 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 GMT+0200", utc(2006, 1, 2, 13, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 +01", utc(2006, 1, 2, 14, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 A", utc(2006, 1, 2, 15, 4, 5)}, // military: -0000
		{"Mon, 2 Jan 2006 15:04:05", utc(2006, 1, 2, 15, 4, 5)},   // no zone: UTC
		{"Mon, 2 Jan 2006", utc(2006, 1, 2, 0, 0, 0)},
		{"Wed, 31 Dec 2008 23:59:60 +0000", utc(2008, 12, 31, 23, 59, 59)}, // leap second
		{"Thu, 29 Feb 2024 10:00:00 +0000", utc(2024, 2, 29, 10, 0, 0)},
		{"Thu, 29 Feb 2023 10:00:00 +0000", time.Time{}},
		{"Mon, 32 Jan 2006 15:04:05 +0000", time.Time{}},
		{"Mon, 2 Foo 2006 15:04:05 +0000", time.Time{}},
		{"Mon, 2 Jan 2006 25:04:05 +0000", time.Time{}},
		{"", time.Time{}},
		{"yesterday", time.Time{}},
		{"(comment only)", time.Time{}},
	} {
		got, ok := parseDate([]byte(c.in))
		if ok != !c.want.IsZero() || !got.Equal(c.want) || ok && got.Location() != time.UTC {
			t.Errorf("parseDate(%q) = %v, %v; want %v", c.in, got, ok, c.want)
		}
	}
}

// TestParseDateAgreesWithNetMail: wherever net/mail parses a date, we
// find the same instant.
func TestParseDateAgreesWithNetMail(t *testing.T) {
	base := time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC)
	layouts := []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04 -0700", "Mon, 02 Jan 06 15:04:05 MST"}
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600)}
	for i := 0; i < 3000; i++ {
		tm := base.Add(time.Duration(i) * 7919 * time.Minute).In(zones[i%len(zones)])
		s := tm.Format(layouts[i%len(layouts)])
		want, err := mail.ParseDate(s)
		if err != nil {
			continue
		}
		got, ok := parseDate([]byte(s))
		if !ok || !got.Equal(want) {
			t.Fatalf("parseDate(%q) = %v, %v; net/mail says %v", s, got, ok, want)
		}
	}
}
