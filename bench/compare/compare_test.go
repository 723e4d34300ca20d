package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// countClosingRef is a brute-force reference for responseCounter: at each
// "</", accept an optional prefix of 1..maxPrefix name bytes and ":",
// then "response>".
func countClosingRef(b []byte) int {
	n := 0
	for i := 0; i+2 <= len(b); i++ {
		if b[i] != '<' || b[i+1] != '/' {
			continue
		}
		rest := b[i+2:]
		if bytes.HasPrefix(rest, responseTag) {
			n++
			continue
		}
		j := 0
		for j < len(rest) && j < maxPrefix && isNameByte(rest[j]) {
			j++
		}
		if j > 0 && j < len(rest) && rest[j] == ':' && bytes.HasPrefix(rest[j+1:], responseTag) {
			n++
		}
	}
	return n
}

// writeChunks feeds b to a responseCounter in chunks of the given sizes
// (cycled), as an HTTP body arrives.
func writeChunks(b []byte, sizes []int) int {
	var rc responseCounter
	for i, k := 0, 0; i < len(b); k++ {
		n := sizes[k%len(sizes)]
		if n < 1 {
			n = 1
		}
		if i+n > len(b) {
			n = len(b) - i
		}
		rc.Write(b[i : i+n])
		i += n
	}
	return rc.count
}

func TestResponseCounter(t *testing.T) {
	apache := `<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:">
<D:response xmlns:lp1="DAV:" xmlns:lp2="http://apache.org/dav/props/">
<D:href>/bulk/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response><D:href>/bulk/a%3a2,S</D:href><D:responsedescription>x</D:responsedescription></D:response>
<response xmlns="DAV:"><href>/x</href></response>
<ns0:response><ns0:href>/y</ns0:href></ns0:response>
<X:noresponse></X:noresponse><a:b:response></a:b:response>
</D:multistatus>`
	const want = 4
	if got := countClosingRef([]byte(apache)); got != want {
		t.Fatalf("reference counts %d, want %d", got, want)
	}
	for _, sizes := range [][]int{{len(apache)}, {1}, {2}, {3}, {7}, {13, 1, 40}, {43}, {44}, {45}} {
		if got := writeChunks([]byte(apache), sizes); got != want {
			t.Errorf("chunks %v: counted %d, want %d", sizes, got, want)
		}
	}
	long := "</" + strings.Repeat("p", maxPrefix+1) + ":response>"
	if got := writeChunks([]byte(long), []int{5}); got != 0 {
		t.Errorf("prefix over maxPrefix counted %d", got)
	}
	ok := "</" + strings.Repeat("p", maxPrefix) + ":response>"
	for _, n := range []int{1, 5, 43, 44, 100} {
		if got := writeChunks([]byte("xx"+ok+ok), []int{n}); got != 2 {
			t.Errorf("prefix of maxPrefix, chunks %d: counted %d, want 2", n, got)
		}
	}
}

func FuzzResponseCounter(f *testing.F) {
	f.Add([]byte("<D:multistatus><D:response></D:response></D:multistatus>"), uint8(3), uint8(1))
	f.Add([]byte("</response></response></lp1:response>"), uint8(1), uint8(2))
	f.Add([]byte("<</D:response>/response>::</:response>"), uint8(7), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, c1, c2 uint8) {
		want := countClosingRef(b)
		got := writeChunks(b, []int{int(c1), int(c2)})
		if got != want {
			t.Fatalf("streamed count %d, reference %d (chunks %d,%d) for %q", got, want, c1, c2, b)
		}
	})
}

func TestCheckListing(t *testing.T) {
	if err := checkListing(propfindResult{responses: 101}, 100); err != nil {
		t.Errorf("complete listing refused: %v", err)
	}
	if err := checkListing(propfindResult{responses: 99}, 100); err == nil {
		t.Error("short listing accepted")
	}
}

func TestLiteralLen(t *testing.T) {
	for _, tc := range []struct {
		line string
		n    int
		ok   bool
	}{
		{`* 1 FETCH (ENVELOPE ("d" {12}`, 12, true},
		{`* 1 FETCH (X {0}`, 0, true},
		{`a {5+}`, 5, true},
		{`* OK {x}`, 0, false},
		{`* OK {}`, 0, false},
		{`* OK }`, 0, false},
		{`* OK {12345678901}`, 0, false},
		{`* OK {12} trailing`, 0, false},
	} {
		n, ok := literalLen([]byte(tc.line))
		if n != tc.n || ok != tc.ok {
			t.Errorf("literalLen(%q) = %d, %v; want %d, %v", tc.line, n, ok, tc.n, tc.ok)
		}
	}
}

func TestReadLogical(t *testing.T) {
	in := "* 1 FETCH (ENVELOPE (\"d\" {5}\r\nab\r\nc \"x\" {3}\r\n{9}))\r\n* 2 FETCH (FLAGS ())\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	l1, err := readLogical(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "* 1 FETCH (ENVELOPE (\"d\" {5}ab\r\nc \"x\" {3}{9}))"; string(l1) != want {
		t.Errorf("line 1 = %q, want %q", l1, want)
	}
	l2, err := readLogical(r, nil)
	if err != nil || string(l2) != "* 2 FETCH (FLAGS ())" {
		t.Errorf("line 2 = %q, %v", l2, err)
	}
	if !isFetch(l1) || !isFetch(l2) {
		t.Error("FETCH lines not recognised")
	}
	if _, err := readLogical(r, nil); err != io.EOF {
		t.Errorf("at end: %v, want EOF", err)
	}
	if _, err := readLogical(bufio.NewReader(strings.NewReader("* 1 {99}\r\nshort")), nil); err == nil {
		t.Error("truncated literal accepted")
	}
	huge := fmt.Sprintf("* 1 {%d}\r\n", maxIMAPLiteral+1)
	if _, err := readLogical(bufio.NewReader(strings.NewReader(huge)), nil); err != errIMAPTooLong {
		t.Errorf("literal over the cap: %v", err)
	}
	long := strings.Repeat("x", maxIMAPLine+1) + "\r\n"
	if _, err := readLogical(bufio.NewReader(strings.NewReader(long)), nil); err != errIMAPTooLong {
		t.Errorf("line over the cap: %v", err)
	}
}

func TestIsFetch(t *testing.T) {
	for line, want := range map[string]bool{
		"* 12 FETCH (UID 3)": true,
		"* 12 EXISTS":        false,
		"* FETCH (":          false,
		"b3 OK done":         false,
		"*  1 FETCH (":       false,
	} {
		if got := isFetch([]byte(line)); got != want {
			t.Errorf("isFetch(%q) = %v", line, got)
		}
	}
}

func FuzzReadLogical(f *testing.F) {
	f.Add([]byte("* 1 FETCH (ENVELOPE (\"d\" {5}\r\nab\r\nc))\r\n"))
	f.Add([]byte("* OK {3+}\r\nabc\r\nb1 OK\r\n"))
	f.Add([]byte("{0}\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		total := 0
		for i := 0; i < len(b)+1; i++ {
			line, err := readLogical(r, nil)
			if err != nil {
				return
			}
			total += len(line)
			if total > len(b) {
				t.Fatalf("read %d bytes of logical lines from %d bytes of input", total, len(b))
			}
		}
		t.Fatal("more logical lines than input bytes")
	})
}

// fakeIMAP serves one scripted IMAP session on loopback: n messages, the
// subject of each sent as a literal, to exercise the client end to end.
func fakeIMAP(t *testing.T, n int, pass string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		fmt.Fprint(c, "* OK fake ready\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch {
			case strings.HasPrefix(cmd, "LOGIN "):
				if cmd != `LOGIN "alice" "`+pass+`"` {
					fmt.Fprintf(c, "%s NO bad login\r\n", tag)
					continue
				}
				fmt.Fprintf(c, "%s OK logged in\r\n", tag)
			case cmd == `SELECT "Bulk"`:
				fmt.Fprintf(c, "* %d EXISTS\r\n%s OK [READ-WRITE] done\r\n", n, tag)
			case strings.HasPrefix(cmd, "UID FETCH 1:* "):
				for i := 1; i <= n; i++ {
					subj := fmt.Sprintf("subject %d\r\n* %d FETCH (fake)", i, i+1000)
					fmt.Fprintf(c, "* %d FETCH (UID %d ENVELOPE (\"date\" {%d}\r\n%s NIL))\r\n", i, i, len(subj), subj)
				}
				fmt.Fprintf(c, "%s OK fetched\r\n", tag)
			case cmd == "LOGOUT":
				fmt.Fprintf(c, "* BYE\r\n%s OK bye\r\n", tag)
				return
			default:
				fmt.Fprintf(c, "%s BAD what\r\n", tag)
			}
		}
	}()
	return ln.Addr().String()
}

func TestIMAPListing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := fakeIMAP(t, 25, "s3cret")
	r, err := imapListing(ctx, addr, "alice", "s3cret", "Bulk")
	if err != nil {
		t.Fatal(err)
	}
	if r.fetched != 25 {
		t.Errorf("fetched %d, want 25 (literals containing FETCH lines must not count)", r.fetched)
	}
	addr = fakeIMAP(t, 1, "other")
	if _, err := imapListing(ctx, addr, "alice", "s3cret", "Bulk"); err == nil {
		t.Error("failed LOGIN not reported")
	}
}

func TestAddrFromLog(t *testing.T) {
	for line, want := range map[string]string{
		`{"level":"info","addr":"127.0.0.1:4321","message":"listening"}`: "127.0.0.1:4321",
		`{"level":"info","addr":"127.0.0.1:0"}`:                          "",
		`{"level":"info","addr":"0.0.0.0:80"}`:                           "",
		`{"level":"info","message":"starting"}`:                          "",
		`not json addr=127.0.0.1:1`:                                      "",
	} {
		got, ok := addrFromLog([]byte(line))
		if got != want || ok != (want != "") {
			t.Errorf("addrFromLog(%s) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func FuzzAddrFromLog(f *testing.F) {
	f.Add([]byte(`{"addr":"127.0.0.1:8080"}`))
	f.Add([]byte(`{"addr":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, ok := addrFromLog(b); ok && !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("non-loopback address %q accepted", a)
		}
	})
}

func TestScanAddr(t *testing.T) {
	in := "{\"message\":\"starting\"}\n{\"addr\":\"127.0.0.1:99\"}\n{\"addr\":\"127.0.0.1:100\"}\nrest\n"
	var out bytes.Buffer
	c := make(chan string, 1)
	scanAddr(strings.NewReader(in), &out, c)
	if got := <-c; got != "127.0.0.1:99" {
		t.Errorf("addr %q, want the first", got)
	}
	if out.String() != in {
		t.Errorf("log copy %q, want %q", out.String(), in)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 {
		t.Error("median sorted its input in place")
	}
}

func TestJudge(t *testing.T) {
	mk := func(goal Goal, target float64, dm, peer []float64) *Case {
		c := &Case{Goal: goal, Target: target, Unit: "s",
			Davmail: newSeries("davmail", dm), Peer: newSeries("peer", peer)}
		c.judge()
		return c
	}
	for _, tc := range []struct {
		c    *Case
		want string
	}{
		{mk(RatioAtMost, 1, []float64{1, 2, 3}, []float64{2, 2, 2}), "PASS"},
		{mk(RatioAtMost, 1, []float64{3, 3, 1}, []float64{2, 2, 2}), "FAIL"},
		{mk(RatioAtLeast, 0.8, []float64{80}, []float64{100}), "PASS"},
		{mk(RatioAtLeast, 0.8, []float64{79}, []float64{100}), "FAIL"},
		{mk(ValueBelow, 100, []float64{50, 99}, nil), "PASS"},
		{mk(ValueBelow, 100, []float64{50, 100}, nil), "FAIL"},
		{mk(RatioAtMost, 1, nil, []float64{1}), "ERROR"},
		{mk(Info, 0, []float64{1}, []float64{1}), "INFO"},
	} {
		if tc.c.Verdict != tc.want {
			t.Errorf("case %+v: verdict %s, want %s", tc.c, tc.c.Verdict, tc.want)
		}
	}
	c := &Case{Goal: RatioAtMost, Target: 1, Davmail: newSeries("d", []float64{1}), Peer: newSeries("p", []float64{2})}
	noteErr(c, "davmail", fmt.Errorf("boom\nsecond line"))
	c.judge()
	if c.Verdict != "ERROR" || c.Note != "davmail: boom." {
		t.Errorf("after an error: verdict %s note %q", c.Verdict, c.Note)
	}
}

func TestWriteBigMessage(t *testing.T) {
	const size = 100000
	var files [2][]byte
	for i := range files {
		md := t.TempDir()
		for _, d := range []string{"cur", "new", "tmp"} {
			os.Mkdir(filepath.Join(md, d), 0o755)
		}
		p, n, err := writeBigMessage(md, size)
		if err != nil {
			t.Fatal(err)
		}
		if n > size || n < size-200 {
			t.Errorf("size %d, want about %d", n, size)
		}
		if !strings.Contains(filepath.Base(p), fmt.Sprintf(",S=%d:2,", n)) {
			t.Errorf("name %q lacks S=%d", p, n)
		}
		if ents, _ := os.ReadDir(filepath.Join(md, "tmp")); len(ents) != 0 {
			t.Errorf("tmp/ not empty: %v", ents)
		}
		files[i], err = os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(files[i])) != n {
			t.Errorf("file has %d bytes, reported %d", len(files[i]), n)
		}
		// Reuse: a second call finds the same file.
		if p2, n2, err := writeBigMessage(md, size); err != nil || p2 != p || n2 != n {
			t.Errorf("second call: %q %d %v", p2, n2, err)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("two writes differ: the message is not deterministic")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(files[0]))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		parts++
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			raw, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
			if err != nil {
				t.Fatalf("attachment: %v", err)
			}
			if len(raw) < size/2 {
				t.Errorf("attachment decodes to %d bytes", len(raw))
			}
		}
	}
	if parts != 2 {
		t.Errorf("%d parts, want 2", parts)
	}
}

func TestSettleNew(t *testing.T) {
	md := t.TempDir()
	for _, d := range []string{"cur", "new", "tmp"} {
		os.Mkdir(filepath.Join(md, d), 0o755)
	}
	os.WriteFile(filepath.Join(md, "new", "1.M1P1.h"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(md, "new", "2.M2P1.h:2,S"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(md, "cur", "3.M3P1.h:2,"), []byte("x"), 0o644)
	n, err := settleNew(md)
	if err != nil || n != 2 {
		t.Fatalf("settled %d, %v", n, err)
	}
	for _, name := range []string{"1.M1P1.h:2,", "2.M2P1.h:2,S", "3.M3P1.h:2,"} {
		if _, err := os.Stat(filepath.Join(md, "cur", name)); err != nil {
			t.Error(err)
		}
	}
	if c, _ := countFiles(filepath.Join(md, "new")); c != 0 {
		t.Errorf("%d files left in new/", c)
	}
}

func TestFmtBytesDecimal(t *testing.T) {
	for n, want := range map[int64]string{199999927: "200MB", 19999927: "20MB", 2e9: "2GB", 5000: "5kB"} {
		if got := fmtBytesDecimal(n); got != want {
			t.Errorf("fmtBytesDecimal(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestGetRepeat(t *testing.T) {
	for size, want := range map[int64]int{200e6: 5, 199999980: 6, 20e6: 50, 1e3: 50, 2e9: 1} {
		if got := getRepeat(size); got != want {
			t.Errorf("getRepeat(%d) = %d, want %d", size, got, want)
		}
	}
}

// TestInterleavedGets: the two servers' downloads alternate one by one,
// neither side always first; each side's rate covers only its own
// downloads; a side that fails stops being asked and reports its error
// while the other goes on.
func TestInterleavedGets(t *testing.T) {
	var order []string
	getter := func(name string, bytes int64, d time.Duration, failAt int) func() (getResult, error) {
		calls := 0
		return func() (getResult, error) {
			calls++
			order = append(order, name)
			if calls == failAt {
				return getResult{}, errors.New(name + " broke")
			}
			return getResult{elapsed: d, bytes: bytes}, nil
		}
	}
	a := getter("a", 2e6, 10*time.Millisecond, 0) // 200 MB/s
	b := getter("b", 1e6, 20*time.Millisecond, 0) // 50 MB/s
	ra, rb, ea, eb := interleavedGets(context.Background(), 4, a, b)
	if ea != nil || eb != nil || ra != 200 || rb != 50 {
		t.Errorf("rates %v, %v (errors %v, %v), want 200 and 50", ra, rb, ea, eb)
	}
	if got := strings.Join(order, ""); got != "abbaabba" {
		t.Errorf("order %q, want abbaabba", got)
	}
	order = nil
	a = getter("a", 2e6, 10*time.Millisecond, 2)
	b = getter("b", 1e6, 20*time.Millisecond, 0)
	_, rb, ea, eb = interleavedGets(context.Background(), 3, a, b)
	if ea == nil || eb != nil || rb != 50 {
		t.Errorf("a failing: errors %v, %v; b's rate %v", ea, eb, rb)
	}
	if got := strings.Join(order, ""); got != "abbab" {
		t.Errorf("order with a failing at its 2nd download %q, want abbab", got)
	}
	if _, rb, _, eb := interleavedGets(context.Background(), 2, nil, b); eb != nil || rb != 50 {
		t.Errorf("b alone: %v, %v", rb, eb)
	}
}
