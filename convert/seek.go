package convert

// Seeking into a base64 body without decoding what comes before it
// (issue 4: "a Range request for the last 1 MiB of a 150 MiB attachment
// answers in a few milliseconds").
//
// Almost every mailer writes base64 in lines of equal length (76
// characters, RFC 2045 §6.8) with the same line ending, the last line
// shorter. The scanner checks that layout while it computes the decoded
// size (b64Lines) and records it in Part.LineChars and Part.LineEnd.
// With it, decoded offset d lies in the quantum q = d/3, whose first
// character is the (4q)-th alphabet character of the body: on line
// 4q/LineChars, column 4q%LineChars. A body without that layout is
// decoded from its start (and skipped) instead: correct, only slower.

// b64Lines follows the line layout of a base64 body.
type b64Lines struct {
	track bool // a base64 body is being scanned
	bad   bool // not the regular layout
	chars int  // alphabet characters of the first complete line
	term  int  // line ending length of the first complete line
	full  int  // complete lines seen
	ended bool // a line shorter than the first, or with padding, was seen: it must be the last
	cur   int  // characters of the current line so far
	pad   bool // the current line holds padding
}

// add takes a fragment of a body line without its line ending (term
// bytes, when !more).
func (l *b64Lines) add(content []byte, first, more bool, term int) {
	if l.bad {
		return
	}
	if first {
		l.cur, l.pad = 0, false
	}
	for _, c := range content {
		switch v := b64Table[c]; {
		case v < 64 && !l.pad:
		case v == b64Pad:
			l.pad = true
		default:
			l.bad = true // whitespace or garbage inside a line, or data after padding
			return
		}
	}
	l.cur += len(content)
	if more || term == 0 {
		return // the line goes on, or it is the last one (no ending in the body)
	}
	l.endLine(term)
}

func (l *b64Lines) endLine(term int) {
	defer func() { l.cur = 0 }()
	switch {
	case l.ended && l.cur == 0:
		return // blank lines after the data: no characters to count
	case l.ended:
		l.bad = true // a line after the short one
	case l.full == 0:
		l.chars, l.term = l.cur, term
		if l.pad {
			l.ended = true
		}
		if l.cur == 0 {
			l.bad = true
		}
	case l.cur == l.chars && term == l.term && !l.pad:
	case l.cur <= l.chars && term == l.term:
		l.ended = true
	default:
		l.bad = true
	}
	l.full++
}

// result returns Part.LineChars and Part.LineEnd at the end of the
// body: (0, 0) when the layout is not regular.
func (l *b64Lines) result(badData bool) (chars, end int) {
	if l.bad || badData {
		return 0, 0
	}
	if l.cur > 0 || l.full == 0 { // the last line, without an ending in the body
		if l.full == 0 {
			if l.cur == 0 {
				return 0, 0
			}
			return l.cur, 0 // one line: every offset is on it
		}
		if l.ended || l.cur > l.chars {
			return 0, 0
		}
	}
	return l.chars, l.term
}

// base64Offset returns where to start decoding a base64 body laid out
// as p.LineChars/p.LineEnd say to reach decoded offset d: the offset in
// the body of a quantum's first character and how many decoded bytes
// of that quantum to skip. ok is false without a regular layout.
func base64Offset(p *Part, d int64) (enc, skip int64, ok bool) {
	if p.LineChars <= 0 || p.Encoding != "base64" {
		return 0, 0, false
	}
	q := d / 3
	a := 4 * q
	k := int64(p.LineChars)
	enc = a/k*(k+int64(p.LineEnd)) + a%k
	if enc > p.EncodedSize {
		return 0, 0, false
	}
	return enc, d - 3*q, true
}
