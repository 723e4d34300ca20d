package submit

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/davmail/davmail/limits"
)

// fuzzAccount is the submitting account of the fuzz targets.
var fuzzAccount = Account{User: "u", Addresses: []string{"alice@example.com", "b@x.test"}}

// fuzzPreparer has small caps so the fuzzer reaches them.
var fuzzPreparer = Preparer{MaxHeaderSize: 4096, MaxRecipients: 50, MaxMessageSize: 64 << 10, Now: fixedNow}

var fuzzSeeds = []string{
	simpleMsg,
	"To: friends: a@x.test, \"B\" <b@x.test>;, c@y.test\nBcc:\n  hidden@z.test\n\nbody\n",
	"From: =?UTF-8?B?QWxpY2U=?= <alice@example.com>\r\nTo: =?x-unknown?q?Zz?= <z@x.test>\r\n\r\n",
	"To: \"john \\\"doe\\\"\"@x.test, jürgen@bücher.test\nSubject: s",
	"Bcc: a@b.test\n",
	"",
	"\r\n\r\n",
	"To: a@b.test\nX: y\n\n\nBcc: body@b.test\n",
	"BCC : x@y.test\nto: z@w.test\n\nb",
	"To: a@b.test\nFrom: mallory@evil.test\n\nb",
	"To: a@b.test\nSender: b@x.test\nFrom: alice@example.com\n\nb",
	"To: <@route.test:a@b.test>\n\nb",
	"To: a@[127.0.0.1]\n\nb",
}

func FuzzPrepareRFC822(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		env, err := fuzzPreparer.RFC822(bytes.NewReader(data), fuzzAccount, &out)
		checkPrepared(t, fuzzAccount, fuzzPreparer.MaxRecipients, data, data, env, out.Bytes(), err)
	})
}

func FuzzPrepareRFC821(f *testing.F) {
	f.Add([]byte("MAIL FROM:<b@x.test>\nRCPT TO:<q@r.test>\n\n" + simpleMsg))
	f.Add([]byte("mail from:<>\r\nrcpt to:<\"a b\"@c.test> NOTIFY=NEVER\r\nRCPT TO:<@x.test:d@e.test>\r\n\r\nSubject: x\r\n\r\nb"))
	f.Add([]byte("\nTo: a@b.test\nBcc: c@d.test\n\nb"))
	f.Add([]byte("RCPT TO:<x@y.test>"))
	f.Add([]byte("RCPT TO: x@y.test SIZE=1\n\n"))
	for _, s := range fuzzSeeds {
		f.Add([]byte("RCPT TO:<x@y.test>\n\n" + s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		env, err := fuzzPreparer.RFC821(bytes.NewReader(data), fuzzAccount, &out)
		msg := data
		if err == nil {
			// The message starts after the first blank line.
			if i := blankLineEnd(data); i >= 0 {
				msg = data[i:]
			}
		}
		checkPrepared(t, fuzzAccount, fuzzPreparer.MaxRecipients, data, msg, env, out.Bytes(), err)
	})
}

// checkPrepared checks the properties every preparation must have:
// errors are typed client errors; recipients come from the input; the
// header sent has no Bcc field; the body is unchanged; Size is exact.
func checkPrepared(t *testing.T, acct Account, maxRcpt int, input, msg []byte, env Envelope, out []byte, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		var le *limits.Error
		if !errors.As(err, &e) && !errors.As(err, &le) {
			t.Fatalf("error of an unexpected type %T: %v", err, err)
		}
		return
	}
	if env.Size != int64(len(out)) {
		t.Fatalf("Size %d, wrote %d", env.Size, len(out))
	}
	if n := len(env.Recipients); n == 0 || n > maxRcpt {
		t.Fatalf("%d recipients", n)
	}
	norm := normalize(string(input))
	seen := map[string]bool{}
	for _, r := range env.Recipients {
		if err := checkPath(r); err != nil {
			t.Fatalf("recipient %q: %v", r, err)
		}
		if seen[strings.ToLower(r)] {
			t.Fatalf("duplicate recipient %q", r)
		}
		seen[strings.ToLower(r)] = true
		at := strings.LastIndexByte(r, '@')
		local, domain := normalize(r[:at]), normalize(r[at+1:])
		if !strings.Contains(norm, domain) || !strings.Contains(norm, local) {
			t.Fatalf("recipient %q is not in the input", r)
		}
	}
	if env.From != "" && acct.allowed(env.From) == "" {
		t.Fatalf("reverse-path %q is not the account's", env.From)
	}
	hdrEnd := blankLineEnd(out)
	header := out
	if hdrEnd >= 0 {
		header = out[:hdrEnd]
	}
	for _, line := range strings.SplitAfter(string(header), "\n") {
		name, _, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimRight(name, " \t"), "bcc") {
			t.Fatalf("Bcc field in the output header: %q", line)
		}
	}
	if i := blankLineEnd(msg); i >= 0 {
		if hdrEnd < 0 || !bytes.Equal(out[hdrEnd:], msg[i:]) {
			t.Fatalf("body changed")
		}
	}
}

// blankLineEnd returns the offset just after the first empty line of b
// ("\n" or "\r\n" at the start of a line), or -1.
func blankLineEnd(b []byte) int {
	for start := 0; start < len(b); {
		end := bytes.IndexByte(b[start:], '\n')
		if end < 0 {
			return -1
		}
		line := b[start : start+end+1]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return start + end + 1
		}
		start += end + 1
	}
	return -1
}

// normalize drops what quoting and folding add, and case, so that an
// address taken from the input is found in it.
func normalize(s string) string {
	return strings.ToLower(strings.NewReplacer("\"", "", "\\", "", "\r", "", "\n", "").Replace(s))
}
