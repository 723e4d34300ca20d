package convert

import (
	"time"
)

// Lenient Date: parsing. RFC 5322 §3.3 date-time, its obsolete forms
// (§4.3: two- and three-digit years, named and military zones, comments)
// and the broken forms found in old mailboxes: missing weekday, comma or
// seconds; full month names; "Jan 2 15:04:05 2006" (asctime); RFC 850
// "02-Jan-06"; ISO 8601 "2006-01-02T15:04:05Z"; dotted "02.01.2006" and
// "15.04.05"; US "01/02/2006"; "GMT+0200"; AM/PM; no zone (taken as UTC).
// Unknown words are ignored. The result is in UTC.

// maxDateTokens caps the tokens looked at; a real date has at most 7.
const maxDateTokens = 16

type dateParts struct {
	year, month, day       int
	hour, min, sec         int
	haveTime               bool
	offset                 int // minutes east of UTC
	haveOffset, haveZoneNm bool
	pm, am                 bool
}

var monthNames = [12]string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}

// zoneNames holds RFC 5322 §4.3 obsolete zones and common abbreviations
// that old mailers write, in minutes east of UTC.
var zoneNames = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0, "zulu": 0,
	"est": -5 * 60, "edt": -4 * 60, "cst": -6 * 60, "cdt": -5 * 60,
	"mst": -7 * 60, "mdt": -6 * 60, "pst": -8 * 60, "pdt": -7 * 60,
	"akst": -9 * 60, "akdt": -8 * 60, "hst": -10 * 60,
	"cet": 60, "cest": 120, "met": 60, "mest": 120, "mez": 60, "mesz": 120,
	"west": 60, "bst": 60, "eet": 120, "eest": 180, "msk": 180,
	"jst": 9 * 60, "kst": 9 * 60, "hkt": 8 * 60, "sgt": 8 * 60,
	"aest": 10 * 60, "aedt": 11 * 60, "nzst": 12 * 60, "nzdt": 13 * 60,
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// num parses the leading digits of b (at most 9).
func num(b []byte) (n, used int) {
	for used < len(b) && used < 9 && isDigit(b[used]) {
		n = n*10 + int(b[used]-'0')
		used++
	}
	return n, used
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// lowerWord lowers the letters of b into buf; words longer than buf
// give nil (they are no month, zone or AM/PM).
func lowerWord(b []byte, buf *[12]byte) []byte {
	if len(b) > len(buf) {
		return nil
	}
	for i, c := range b {
		buf[i] = c | 0x20
	}
	return buf[:len(b)]
}

func monthOf(w []byte) int {
	var buf [12]byte
	s := lowerWord(w, &buf)
	if len(s) < 3 {
		return 0
	}
	for i, m := range monthNames {
		if string(s) == m || string(s) == m[:3] || (i == 8 && string(s) == "sept") {
			return i + 1
		}
	}
	return 0
}

// parseDate parses a Date: header value; ok is false when no date can be
// made of it.
func parseDate(b []byte) (t time.Time, ok bool) {
	var d dateParts
	ntok := 0
	i := 0
	for i < len(b) && ntok < maxDateTokens {
		c := b[i]
		switch {
		case c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n':
			i++
			continue
		case c == '(':
			i = skipCFWS(b, i)
			continue
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' && b[j] != ',' && b[j] != '(' && b[j] != '\r' && b[j] != '\n' {
			j++
		}
		d.token(b[i:j])
		ntok++
		i = j
	}
	return d.time()
}

func (d *dateParts) token(tok []byte) {
	// Trailing dots: "Jan." "Mon."
	for len(tok) > 1 && tok[len(tok)-1] == '.' {
		tok = tok[:len(tok)-1]
	}
	if len(tok) == 0 {
		return
	}
	c := tok[0]
	switch {
	case (c == '+' || c == '-') && len(tok) > 1 && isDigit(tok[1]):
		d.zoneOffset(tok)
	case allDigits(tok):
		n, _ := num(tok)
		switch {
		case d.day == 0 && len(tok) <= 2 && n >= 1 && n <= 31:
			d.day = n
		case d.year == 0:
			d.year = yearOf(n, len(tok))
		case d.day == 0 && n >= 1 && n <= 31:
			d.day = n
		}
	case isDigit(c):
		d.numeric(tok)
	case isAlpha(c):
		d.word(tok)
	}
}

// yearOf applies RFC 5322 §4.3: two-digit years 00-49 are 2000-2049,
// 50-99 are 1950-1999; three-digit years are added to 1900.
func yearOf(n, digits int) int {
	switch {
	case digits <= 2 && n < 50:
		return 2000 + n
	case digits <= 2:
		return 1900 + n
	case digits == 3:
		return 1900 + n
	}
	return n
}

// numeric handles a token that starts with a digit and is not all digits:
// a time, an ISO or RFC 850 or dotted or slashed date.
func (d *dateParts) numeric(tok []byte) {
	// ISO 8601 date and time in one token.
	if len(tok) > 10 && (tok[10] == 'T' || tok[10] == 't') && tok[4] == '-' {
		d.numeric(tok[:10])
		d.numeric(tok[11:])
		return
	}
	n1, u1 := num(tok)
	if u1 == len(tok) || u1 == 0 {
		return
	}
	sep := tok[u1]
	switch sep {
	case ':':
		if !d.haveTime {
			d.clock(tok)
		}
		return
	case '-', '/', '.':
	default:
		return
	}
	rest := tok[u1+1:]
	// Second part: number or month name.
	var n2, u2, mon int
	if len(rest) > 0 && isAlpha(rest[0]) {
		k := 0
		for k < len(rest) && isAlpha(rest[k]) {
			k++
		}
		mon = monthOf(rest[:k])
		u2 = k
	} else {
		n2, u2 = num(rest)
	}
	if u2 == 0 {
		return
	}
	if u2 == len(rest) {
		// Only two parts, such as "15.04": a time without seconds.
		if sep == '.' && !d.haveTime && mon == 0 {
			d.setClock(n1, n2, 0)
		}
		return
	}
	if rest[u2] != sep {
		return
	}
	rest = rest[u2+1:]
	n3, u3 := num(rest)
	if u3 == 0 {
		return
	}
	tail := rest[u3:]
	switch {
	case mon != 0: // 02-Jan-2006
		d.setDate(yearOf(n3, u3), mon, n1)
	case u1 == 4: // 2006-01-02
		d.setDate(n1, n2, n3)
	case sep == '.' && u3 <= 2 && d.year != 0 && !d.haveTime:
		// "15.04.05" after the date: a dotted time.
		d.setClock(n1, n2, n3)
		return
	case sep == '/': // US: 01/02/2006
		d.setDate(yearOf(n3, u3), n1, n2)
	default: // 02.01.2006, 02-01-2006
		d.setDate(yearOf(n3, u3), n2, n1)
	}
	if len(tail) > 0 && (tail[0] == 'T' || tail[0] == 't') {
		d.numeric(tail[1:])
	}
}

func (d *dateParts) setDate(y, m, day int) {
	if d.year == 0 && d.month == 0 && d.day == 0 {
		d.year, d.month, d.day = y, m, day
	}
}

func (d *dateParts) setClock(h, m, s int) {
	d.hour, d.min, d.sec, d.haveTime = h, m, s, true
}

// clock parses hh:mm[:ss][.frac][zone], zone being Z or ±hh[:]mm.
func (d *dateParts) clock(tok []byte) {
	h, u := num(tok)
	if u == 0 || u > 2 || u >= len(tok) || tok[u] != ':' {
		return
	}
	tok = tok[u+1:]
	m, u := num(tok)
	if u != 2 {
		return
	}
	tok = tok[u:]
	s := 0
	if len(tok) > 0 && tok[0] == ':' {
		var us int
		s, us = num(tok[1:])
		if us != 2 {
			return
		}
		tok = tok[1+us:]
	}
	if len(tok) > 0 && (tok[0] == '.' || tok[0] == ',') {
		_, uf := num(tok[1:])
		tok = tok[1+uf:]
	}
	d.setClock(h, m, s)
	switch {
	case len(tok) == 0:
	case tok[0] == 'Z' || tok[0] == 'z':
		if !d.haveOffset {
			d.offset, d.haveOffset = 0, true
		}
	case tok[0] == '+' || tok[0] == '-':
		d.zoneOffset(tok)
	default:
		d.word(tok)
	}
}

// zoneOffset parses ±hhmm, ±hh:mm or ±hh.
func (d *dateParts) zoneOffset(tok []byte) {
	if d.haveOffset {
		return
	}
	sign := 1
	if tok[0] == '-' {
		sign = -1
	}
	tok = tok[1:]
	h, u := num(tok)
	var m int
	switch {
	case u == 4:
		h, m = h/100, h%100
	case u == 3:
		h, m = h/100, h%100
	case u <= 2 && u < len(tok) && tok[u] == ':':
		var um int
		m, um = num(tok[u+1:])
		if um != 2 {
			return
		}
	case u <= 2:
	default:
		return
	}
	if h > 99 || m > 59 {
		return
	}
	d.offset, d.haveOffset = sign*(h*60+m), true
}

func (d *dateParts) word(tok []byte) {
	k := 0
	for k < len(tok) && isAlpha(tok[k]) {
		k++
	}
	w := tok[:k]
	if m := monthOf(w); m != 0 {
		if d.month == 0 {
			d.month = m
		}
		return
	}
	var buf [12]byte
	s := lowerWord(w, &buf)
	switch string(s) {
	case "am":
		d.am = true
		return
	case "pm":
		d.pm = true
		return
	}
	if off, ok := zoneNames[string(s)]; ok {
		if k < len(tok) && (tok[k] == '+' || tok[k] == '-') {
			d.zoneOffset(tok[k:]) // GMT+0200, UTC-5
		}
		if !d.haveOffset && !d.haveZoneNm {
			d.offset, d.haveZoneNm = off, true
		}
		return
	}
	if len(s) == 1 && d.haveTime && !d.haveOffset && !d.haveZoneNm {
		// RFC 5322 §4.3: military zones are to be taken as -0000.
		d.haveZoneNm = true
	}
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

func (d *dateParts) time() (time.Time, bool) {
	if d.year < 1000 || d.year > 9999 || d.month < 1 || d.month > 12 || d.day < 1 || d.day > daysIn(d.month, d.year) {
		return time.Time{}, false
	}
	h := d.hour
	switch {
	case d.pm && h >= 1 && h < 12:
		h += 12
	case d.am && h == 12:
		h = 0
	}
	if h > 23 || d.min > 59 || d.sec > 60 {
		return time.Time{}, false
	}
	sec := d.sec
	if sec == 60 {
		sec = 59 // leap second: Go's time has none
	}
	t := time.Date(d.year, time.Month(d.month), d.day, h, d.min, sec, 0, time.UTC)
	return t.Add(-time.Duration(d.offset) * time.Minute), true
}
