package exsql

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// The parsers here run per row when a text value meets a number, boolean
// or date literal, so they must not allocate, not even on failure (the
// strconv and time errors do).

// parseBool reads the boolean forms Exchange clients use: 1/0 (DavMail,
// §0.3 #5) and true/false in any case (Evolution, §5.1).
func parseBool(s string) (bool, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "1" || strings.EqualFold(s, "true"):
		return true, true
	case s == "0" || strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// parseInt reads an optionally signed decimal integer.
func parseInt(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// parseFloat reads a decimal number (with optional fraction and exponent);
// the syntax is checked first so strconv only sees valid input.
func parseFloat(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			i, exp = i+1, exp+1
		}
		if exp == 0 || exp > 4 { // |exponent| ≤ 9999: larger overflows anyway
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseTime reads the date forms of the dialect, all in UTC unless an
// offset is given:
//
//	yyyy/MM/dd HH:mm:ss         DavMail's formatSearchDate (§5.1), GMT
//	yyyy-MM-ddTHH:mm:ssZ        ISO 8601 (Evolution's e2k_make_timestamp)
//	yyyy-MM-ddTHH:mm:ss.SSSZ    with 1–9 fraction digits (§0.3 #4)
//
// The date separator may be / or -, the date-time separator T or a
// space, seconds and the zone (Z, ±HH:MM or ±HHMM) are optional, and a
// date alone means midnight.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for k := i; k < i+n; k++ {
			if !isDigit(s[k]) {
				return 0, false
			}
			v = v*10 + int(s[k]-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	if !ok1 || len(s) < 10 || (s[4] != '/' && s[4] != '-') || s[7] != s[4] {
		return time.Time{}, false
	}
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	if !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) {
		return time.Time{}, false
	}
	var h, mi, sec, nsec, off int
	i := 10
	if i < len(s) && (s[i] == 'T' || s[i] == 't' || s[i] == ' ') {
		var ok bool
		if h, ok = num(i+1, 2); !ok || h > 23 || i+3 >= len(s) || s[i+3] != ':' {
			return time.Time{}, false
		}
		if mi, ok = num(i+4, 2); !ok || mi > 59 {
			return time.Time{}, false
		}
		i += 6
		if i < len(s) && s[i] == ':' {
			if sec, ok = num(i+1, 2); !ok || sec > 59 {
				return time.Time{}, false
			}
			i += 3
			if i < len(s) && s[i] == '.' {
				i++
				digits := 0
				for i < len(s) && isDigit(s[i]) {
					if digits == 9 {
						return time.Time{}, false
					}
					nsec = nsec*10 + int(s[i]-'0')
					i++
					digits++
				}
				if digits == 0 {
					return time.Time{}, false
				}
				for ; digits < 9; digits++ {
					nsec *= 10
				}
			}
		}
		switch {
		case i == len(s):
		case (s[i] == 'Z' || s[i] == 'z') && i+1 == len(s):
			i++
		case s[i] == '+' || s[i] == '-':
			oh, ok := num(i+1, 2)
			j := i + 3
			if j < len(s) && s[j] == ':' {
				j++
			}
			om, ok2 := num(j, 2)
			if !ok || !ok2 || oh > 23 || om > 59 || j+2 != len(s) {
				return time.Time{}, false
			}
			off = oh*3600 + om*60
			if s[i] == '-' {
				off = -off
			}
			i = len(s)
		}
	}
	if i != len(s) {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC).Add(-time.Duration(off) * time.Second)
	if y := t.Year(); y < 0 || y > 9999 {
		// An offset moved it out of four-digit years, which String could
		// not print back in a form this parser reads.
		return time.Time{}, false
	}
	return t, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
