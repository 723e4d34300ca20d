package convert

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func mustScan(t *testing.T, raw string, opts ScanOptions) *Structure {
	t.Helper()
	st, err := Scan(strings.NewReader(raw), opts)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	checkStructure(t, []byte(raw), st, opts)
	return st
}

func paths(st *Structure) []string {
	var p []string
	for _, x := range st.Parts {
		p = append(p, x.Path+":"+x.ContentType)
	}
	return p
}

func hasProblem(st *Structure, p string) bool { return slices.Contains(st.Problems, p) }

// body returns the raw body of part i.
func body(raw string, st *Structure, i int) string {
	return raw[st.Parts[i].BodyStart:st.Parts[i].BodyEnd]
}

func TestPartNumbering(t *testing.T) {
	raw := "Content-Type: message/rfc822\n\n" +
		"Subject: inner\nContent-Type: multipart/mixed; boundary=x\n\n" +
		"--x\nContent-Type: text/plain\n\none\n" +
		"--x\nContent-Type: message/rfc822\n\nSubject: deeper\n\nthree\n" +
		"--x--\n"
	st := mustScan(t, raw, ScanOptions{})
	want := []string{":message/rfc822", "1:multipart/mixed", "1.1:text/plain", "1.2:message/rfc822", "1.2:text/plain"}
	if got := paths(st); !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
	if got := body(raw, st, 4); got != "three" { // the LF belongs to the delimiter
		t.Errorf("deepest body %q", got)
	}
	if st.Parts[1].HeaderStart != st.Parts[0].BodyStart || st.Parts[1].BodyEnd != st.Parts[0].BodyEnd {
		t.Errorf("the encapsulated message must span its message/rfc822 body: %+v %+v", st.Parts[0], st.Parts[1])
	}
	// A message/rfc822 body part is an attachment; the top-level one is
	// the message itself.
	if st.Parts[0].IsAttachment || !st.Parts[3].IsAttachment {
		t.Errorf("IsAttachment: top %v, part 1.2 %v", st.Parts[0].IsAttachment, st.Parts[3].IsAttachment)
	}
}

func TestBoundaries(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		bodies    []string // bodies of parts 1..n
		problems  []string
	}{
		{"prefix is no boundary", "Content-Type: multipart/mixed; boundary=a\n\n--a\n\n--ab\n--a-\n--a --\n--a\n\nx\n--a--\n",
			[]string{"--ab\n--a-\n--a --", "x"}, nil},
		{"transport padding", "Content-Type: multipart/mixed; boundary=a\n\n--a \t\n\nx\n--a-- \n",
			[]string{"x"}, nil},
		{"crlf", "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n\r\n--a--\r\n",
			[]string{"x\r\n"}, nil},
		{"empty part", "Content-Type: multipart/mixed; boundary=a\n\n--a\n--a\n\n\n--a--",
			[]string{"", ""}, nil},
		{"header ends at boundary", "Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: text/html\n--a--\n",
			[]string{""}, nil},
		{"last line without LF", "Content-Type: multipart/mixed; boundary=a\n\n--a\n\nx\n--a--",
			[]string{"x"}, nil},
		{"outer closes inner", "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\n\nin\n--o\n\nout\n--o--\n",
			[]string{"--i\n\nin", "in", "out"}, []string{ProblemFinalBoundary}},
		{"same boundary nested", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\ninner\n--b--\n--b\n\nouter\n--b--\n",
			[]string{"--b\n\ninner\n--b--", "inner", "outer"}, nil},
		{"epilogue ignored", "Content-Type: multipart/mixed; boundary=a\n\n--a\n\nx\n--a--\n--a\n\nnot a part\n",
			[]string{"x"}, nil},
		{"no boundary", "Content-Type: multipart/mixed\n\n--a\n\nx\n",
			nil, []string{ProblemBadContentType}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := mustScan(t, c.raw, ScanOptions{})
			var got []string
			for i := 1; i < len(st.Parts); i++ {
				got = append(got, body(c.raw, st, i))
			}
			if !slices.Equal(got, c.bodies) {
				t.Errorf("bodies %q, want %q", got, c.bodies)
			}
			if !slices.Equal(st.Problems, c.problems) {
				t.Errorf("problems %q, want %q", st.Problems, c.problems)
			}
		})
	}
}

func TestCaps(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: many\nContent-Type: multipart/mixed; boundary=m\n\n")
	for i := 0; i < 20; i++ {
		b.WriteString("--m\nContent-Type: text/plain\n\npart " + strconv.Itoa(i) + "\n")
	}
	b.WriteString("--m--\n")
	raw := b.String()
	st := mustScan(t, raw, ScanOptions{MaxParts: 5})
	if len(st.Parts) != 5 || !hasProblem(st, ProblemTooManyParts) {
		t.Errorf("MaxParts 5: %d parts, problems %v", len(st.Parts), st.Problems)
	}
	if st.Parts[0].BodyEnd != int64(len(raw)) || body(raw, st, 4) != "part 3" {
		t.Errorf("parts before the cap must stay exact: root ends %d of %d, part 4 %q", st.Parts[0].BodyEnd, len(raw), body(raw, st, 4))
	}

	deep := "Subject: deep\n" + strings.Repeat("Content-Type: multipart/mixed; boundary=d\n\n--d\n", 10) + "Content-Type: text/plain\n\nbottom\n"
	st = mustScan(t, deep, ScanOptions{MaxDepth: 3})
	maxDepth := 0
	for _, p := range st.Parts {
		maxDepth = max(maxDepth, p.Depth)
	}
	if maxDepth != 3 || !hasProblem(st, ProblemDepth) || st.Envelope.Subject != "deep" {
		t.Errorf("MaxDepth 3: deepest %d, problems %v, subject %q", maxDepth, st.Problems, st.Envelope.Subject)
	}

	hdr := "X-Filler: " + strings.Repeat("f", 500) + "\nSubject: late\nContent-Type: text/html\n\nbody\n"
	st = mustScan(t, "From: a@example.org\n"+hdr, ScanOptions{MaxHeaderBytes: 300})
	if !hasProblem(st, ProblemHeaderTooLarge) || st.Envelope.Subject != "" || st.Envelope.From != "a@example.org" || st.Parts[0].ContentType != "text/plain" {
		t.Errorf("MaxHeaderBytes: problems %v, envelope %+v, type %q", st.Problems, st.Envelope, st.Parts[0].ContentType)
	}
	if got := body("From: a@example.org\n"+hdr, st, 0); got != "body\n" {
		t.Errorf("the body after a too-large header: %q", got)
	}

	st = mustScan(t, "Subject: x\n\n"+strings.Repeat("y", 100)+"\n", ScanOptions{MaxLineLength: 50})
	if !hasProblem(st, ProblemLineTooLong) {
		t.Errorf("MaxLineLength: problems %v", st.Problems)
	}
}

// TestLongLines: lines much longer than the read buffer, in headers and
// bodies, with CRLF falling anywhere, keep offsets and decoding exact.
func TestLongLines(t *testing.T) {
	for _, n := range []int{readBufSize - 2, readBufSize - 1, readBufSize, readBufSize + 1, 3*readBufSize + 7} {
		subject := strings.Repeat("s", n)
		qp := strings.Repeat("=41", n/3) + strings.Repeat(" ", 5) + "\r\n" + strings.Repeat("b", n) + "=\r\n"
		raw := "Subject: " + subject + "\r\nContent-Type: multipart/mixed; boundary=L\r\n\r\n" +
			"--L\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp +
			"\r\n--L\r\nX-Long: " + strings.Repeat("h", n) + "\r\n\r\n" + strings.Repeat("c", n) + "\r\n--L--\r\n"
		st := mustScan(t, raw, ScanOptions{})
		if want := subject[:min(n, maxEnvelopeText)]; st.Envelope.Subject != want || len(st.Parts) != 3 || len(st.Problems) != 0 {
			t.Fatalf("n=%d: subject %d bytes, %d parts, problems %v", n, len(st.Envelope.Subject), len(st.Parts), st.Problems)
		}
		if want := int64(n/3 + 2 + n); st.Parts[1].DecodedSize != want {
			t.Errorf("n=%d: qp DecodedSize %d, want %d", n, st.Parts[1].DecodedSize, want)
		}
		if got := body(raw, st, 2); got != strings.Repeat("c", n) {
			t.Errorf("n=%d: long body of %d bytes, want %d", n, len(got), n)
		}
	}
}

func TestEmptyAndHeadersOnly(t *testing.T) {
	st := mustScan(t, "", ScanOptions{})
	if st.Size != 0 || len(st.Parts) != 1 || st.Envelope.ContentType != "text/plain" {
		t.Errorf("empty: %+v", st)
	}
	st = mustScan(t, "Subject: x\r\nContent-Type: image/png; name=a.png", ScanOptions{})
	p := st.Parts[0]
	if p.BodyStart != st.Size || p.ContentType != "image/png" || !p.IsAttachment || !st.Envelope.HasAttachments {
		t.Errorf("headers only: %+v", p)
	}
	st = mustScan(t, "\nbody only\n", ScanOptions{})
	if st.Parts[0].BodyStart != 1 || st.Envelope.Subject != "" {
		t.Errorf("empty header: %+v", st.Parts[0])
	}
}

func TestAttachmentRules(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=a\n\n" +
		"--a\nContent-Type: text/plain\n\nbody\n" + // 1 no
		"--a\nContent-Type: text/plain\nContent-Disposition: attachment\n\nnotes\n" + // 2 yes: disposition
		"--a\nContent-Type: application/octet-stream; name=x.bin\n\nx\n" + // 3 yes: file name
		"--a\nContent-Type: application/octet-stream\n\nno name\n" + // 4 no
		"--a\nContent-Type: text/plain; name=t.txt\n\ntext with a name\n" + // 5 no: text
		"--a\nContent-Type: image/gif\nContent-Disposition: inline; filename=i.gif\n\nx\n" + // 6 yes: file name
		"--a\nContent-Type: multipart/related; boundary=r\n\n" + // 7
		"--r\nContent-Type: text/html\n\n<img src=cid:c>\n" + // 7.1
		"--r\nContent-Type: image/png; name=c.png\nContent-ID: <c>\n\npng\n" + // 7.2 no: inline image
		"--r\nContent-Type: image/png; name=d.png\nContent-ID: <d>\nContent-Disposition: attachment\n\npng\n" + // 7.3 yes
		"--r--\n" +
		"--a\nContent-Type: message/rfc822\nContent-Disposition: inline\n\nSubject: inline fwd\n\nx\n" + // 8 no
		"--a\nContent-Type: foo/bar\nContent-Disposition: x-unknown-type\n\nx\n" + // 9 yes: RFC 2183 §2.8
		"--a--\n"
	st := mustScan(t, raw, ScanOptions{})
	type pa struct {
		Path string
		Att  bool
	}
	var got []pa
	for _, p := range st.Parts {
		got = append(got, pa{p.Path, p.IsAttachment})
	}
	want := []pa{{"", false}, {"1", false}, {"2", true}, {"3", true}, {"4", false}, {"5", false}, {"6", true},
		{"7", false}, {"7.1", false}, {"7.2", false}, {"7.3", true}, {"8", false}, {"8", false}, {"9", true}}
	if !slices.Equal(got, want) {
		t.Errorf("attachments:\n got %v\nwant %v", got, want)
	}
	if st.Parts[len(st.Parts)-1].Disposition != "attachment" {
		t.Errorf("unknown disposition type: %q", st.Parts[len(st.Parts)-1].Disposition)
	}
}

func TestEnvelope(t *testing.T) {
	for _, c := range []struct {
		name, header string
		check        func(*Structure) bool
	}{
		{"adjacent words", "Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?Q?_aus_K=C3=B6ln?=", func(s *Structure) bool { return s.Envelope.Subject == "Grüße aus Köln" }},
		{"folded words", "Subject: =?utf-8?q?Gr=C3=BC?=\n =?utf-8?q?=C3=9Fe?=", func(s *Structure) bool { return s.Envelope.Subject == "Grüße" }},
		{"char split over words", "Subject: =?utf-8?b?w6Q=?= =?utf-8?b?w7Y=?=x =?utf-8?q?=C3?= =?utf-8?q?=BC?=", func(s *Structure) bool { return s.Envelope.Subject == "äöx ü" }},
		{"text between words kept", "Subject: =?utf-8?q?a?= b =?utf-8?q?c?=", func(s *Structure) bool { return s.Envelope.Subject == "a b c" }},
		{"glued word", "Subject: Re:=?utf-8?q?_caf=C3=A9?=", func(s *Structure) bool { return s.Envelope.Subject == "Re: café" }},
		{"latin1 word", "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=", func(s *Structure) bool { return s.Envelope.Subject == "Grüße" }},
		{"windows-1252 word", "Subject: =?windows-1252?Q?=93quoted=94?=", func(s *Structure) bool { return s.Envelope.Subject == "“quoted”" }},
		{"language suffix", "Subject: =?utf-8*de?q?Gr=C3=BC=C3=9Fe?=", func(s *Structure) bool { return s.Envelope.Subject == "Grüße" }},
		{"unknown charset", "Subject: =?x-foo?q?a?= ok", func(s *Structure) bool {
			return s.Envelope.Subject == "=?x-foo?q?a?= ok" && hasProblem(s, ProblemUnknownCharset)
		}},
		{"bad base64 word", "Subject: =?utf-8?b?!!?=", func(s *Structure) bool { return s.Envelope.Subject == "=?utf-8?b?!!?=" }},
		{"unpadded base64 word", "Subject: =?utf-8?b?w6Q?=", func(s *Structure) bool { return s.Envelope.Subject == "ä" }},
		{"raw utf-8", "Subject: Grüße", func(s *Structure) bool { return s.Envelope.Subject == "Grüße" && !hasProblem(s, Problem8BitHeader) }},
		{"raw latin1", "Subject: Gr\xfc\xdfe", func(s *Structure) bool { return s.Envelope.Subject == "Grüße" && hasProblem(s, Problem8BitHeader) }},
		{"raw windows-1252", "Subject: \x93quoted\x94 \x80", func(s *Structure) bool { return s.Envelope.Subject == "“quoted” €" }},
		{"unicode line breaks", "Subject: a\u2028b\u0085c", func(s *Structure) bool { return s.Envelope.Subject == "a b c" }},
		{"nul and controls", "Subject: a\x00b\x01c=?utf-8?q?=0D=0Ad?=", func(s *Structure) bool { return s.Envelope.Subject == "ab c  d" }},
		{"invalid utf-8 in word", "Subject: =?utf-8?q?a=FFb?=", func(s *Structure) bool { return s.Envelope.Subject == "a\uFFFDb" }},
		{"first subject wins", "Subject: one\nSubject: two", func(s *Structure) bool { return s.Envelope.Subject == "one" }},
		{"case-insensitive names", "SUBJECT: up\nmessage-id: <m@x>", func(s *Structure) bool { return s.Envelope.Subject == "up" && s.Envelope.MessageID == "<m@x>" }},
		{"folded message-id", "Message-ID:\n <folded@x>", func(s *Structure) bool { return s.Envelope.MessageID == "<folded@x>" }},
		{"long subject capped", "Subject: " + strings.Repeat("ü", maxEnvelopeText), func(s *Structure) bool {
			return len(s.Envelope.Subject) == maxEnvelopeText && strings.Count(s.Envelope.Subject, "ü") == maxEnvelopeText/2
		}},
		{"from and cc", "From: =?utf-8?q?J=C3=BCrgen?= <j@x>\nTo: a@x,\n b@x\nCc: \"Doe, J\" <d@x>", func(s *Structure) bool {
			return s.Envelope.From == "Jürgen <j@x>" && s.Envelope.To == "a@x, b@x" && s.Envelope.Cc == `"Doe, J" <d@x>`
		}},
		{"date", "Date: Tue, 14 Nov 2023 22:13:20 +0100", func(s *Structure) bool {
			return s.Envelope.Date.Equal(time.Date(2023, 11, 14, 21, 13, 20, 0, time.UTC)) && s.Envelope.Date.Location() == time.UTC
		}},
		{"bad date", "Date: yesterday", func(s *Structure) bool { return s.Envelope.Date.IsZero() }},
		{"mbox From line", "From a@b Mon Jan  2 15:04:05 2006\nSubject: s", func(s *Structure) bool {
			return s.Envelope.Subject == "s" && hasProblem(s, ProblemBadHeaderLine)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := c.header + "\n\nbody\n"
			st := mustScan(t, raw, ScanOptions{})
			if !c.check(st) {
				t.Errorf("envelope %+v, problems %v", st.Envelope, st.Problems)
			}
		})
	}
}

// TestReadErrors: a failing reader is the only way to get an error.
func TestReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("Subject: x\n\nbody"), iotest.ErrReader(boom))
	if _, err := Scan(r, ScanOptions{}); !errors.Is(err, boom) {
		t.Errorf("Scan of a failing reader: %v, want boom", err)
	}
	if _, err := ScanEnvelope(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("ScanEnvelope of a failing reader: %v", err)
	}
	if _, err := Scan(zeroReader{}, ScanOptions{}); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Scan of a reader without progress: %v", err)
	}
	// Odd but legal readers.
	raw := "Subject: x\nContent-Type: multipart/mixed; boundary=a\n\n--a\n\nbody\n--a--\n"
	for _, rd := range []io.Reader{iotest.OneByteReader(strings.NewReader(raw)), iotest.DataErrReader(strings.NewReader(raw)), iotest.HalfReader(strings.NewReader(raw))} {
		st, err := Scan(rd, ScanOptions{})
		if err != nil || st.Size != int64(len(raw)) || len(st.Parts) != 2 || body(raw, st, 1) != "body" {
			t.Errorf("Scan via %T: %v %+v", rd, err, st)
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// TestMemoryIndependentOfSize: scanning 16 MiB allocates no more than
// scanning 1 MiB (the brief: no allocation proportional to the message).
func TestMemoryIndependentOfSize(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation figures are not meaningful under the race detector")
	}
	alloc := func(raw []byte) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < 3; i++ {
			if _, err := Scan(bytes.NewReader(raw), ScanOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 3
	}
	// The least of three trials of each size: whether a scan finds its
	// scratch arena in the sync.Pool depends on when the GC last ran,
	// which moves a trial by a few KiB either way.
	least := func(raw []byte) uint64 {
		return min(alloc(raw), alloc(raw), alloc(raw))
	}
	small, big := least(largeMessage(1<<20)), least(largeMessage(16<<20))
	t.Logf("bytes allocated per scan: 1 MiB message %d, 16 MiB message %d", small, big)
	// 16 KiB of slack: 15 MiB more message growing a buffer even 4 KiB at
	// a time would allocate megabytes.
	if big > small+16<<10 || big > 64<<10 {
		t.Errorf("allocation grows with the message: %d bytes for 1 MiB, %d for 16 MiB", small, big)
	}
}

// TestNoQuadraticHeader: hostile header values that defeat naive
// encoded-word and parameter parsing still scan in linear time.
func TestNoQuadraticHeader(t *testing.T) {
	big := DefaultMaxHeaderBytes - 1024
	for name, v := range map[string]string{
		"unterminated words": strings.Repeat("=?a?q?", big/6),
		"many params":        "text/plain" + strings.Repeat("; a=b", big/5),
		"many comments":      "text/plain" + strings.Repeat(" (c)", big/4),
		"many sections":      "text/plain" + strings.Repeat("; name*1*=%41", big/13),
	} {
		raw := "Subject: " + v + "\nContent-Type: " + v + "\nContent-Disposition: attachment; filename=\"" + v + "\"\n\nbody\n"
		start := time.Now()
		st, err := Scan(strings.NewReader(raw), ScanOptions{MaxHeaderBytes: 4 * DefaultMaxHeaderBytes})
		if err != nil {
			t.Fatal(err)
		}
		// Linear work on ~1 MiB takes milliseconds; quadratic, minutes.
		t.Logf("%s: %v", name, time.Since(start))
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: %v for a %d-byte header", name, d, len(raw))
		}
		if body(raw, st, 0) != "body\n" {
			t.Errorf("%s: body %q", name, body(raw, st, 0))
		}
	}
}
