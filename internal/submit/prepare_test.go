package submit

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/limits"
)

var fixedNow = func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }

func prep822(t *testing.T, raw string) (Envelope, string, error) {
	t.Helper()
	var out bytes.Buffer
	env, err := Preparer{Now: fixedNow}.RFC822(strings.NewReader(raw), alice, &out)
	if err == nil && env.Size != int64(out.Len()) {
		t.Errorf("Size %d, spool has %d bytes", env.Size, out.Len())
	}
	return env, out.String(), err
}

func TestPrepareRFC822(t *testing.T) {
	env, out, err := prep822(t, simpleMsg)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "alice@example.com" || env.User != "alice" {
		t.Errorf("envelope %+v", env)
	}
	want := "From: Alice <alice@example.com>\r\n" +
		"To: Bob <bob@example.net>, \"Carol, C.\" <carol@example.net>\r\n" +
		"Cc: dave@example.org\r\n" +
		"Subject: hello\r\n" +
		"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n" +
		"Message-ID: " + env.MessageID + "\r\n" +
		"\r\n" +
		"Body line 1\r\n" +
		"Bcc: this line is body text and stays\r\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if !strings.HasSuffix(env.MessageID, "@example.com>") {
		t.Errorf("Message-ID %q not in the sender's domain", env.MessageID)
	}
}

func TestPrepareRecipients(t *testing.T) {
	for _, tc := range []struct {
		name, hdr string
		want      []string
	}{
		{"group", "To: friends: a@x.test, \"B\" <b@x.test>;, c@y.test\n", []string{"a@x.test", "b@x.test", "c@y.test"}},
		{"empty group", "To: undisclosed-recipients:;\nBcc: hidden@x.test\n", []string{"hidden@x.test"}},
		{"encoded name", "To: =?UTF-8?B?SsO8cmdlbg==?= <j@x.test>, =?x-unknown?q?Zz?= <z@x.test>\n", []string{"j@x.test", "z@x.test"}},
		{"folded", "To: a@x.test,\n b@x.test\nCc:\n\tc@x.test\n", []string{"a@x.test", "b@x.test", "c@x.test"}},
		{"duplicates", "To: A@X.test, a@x.test\nCc: a@X.TEST\nBcc: a@x.test\n", []string{"A@X.test"}},
		{"several To fields", "To: a@x.test\nTo: b@x.test\n", []string{"a@x.test", "b@x.test"}},
		{"quoted local part", "To: \"john doe\"@x.test\n", []string{"\"john doe\"@x.test"}},
		{"utf-8 address", "To: jürgen@bücher.test\n", []string{"jürgen@bücher.test"}},
		{"empty To", "To:\nCc: c@x.test\n", []string{"c@x.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, out, err := prep822(t, "From: alice@example.com\n"+tc.hdr+"Subject: x\n\nbody\n")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(env.Recipients, "|") != strings.Join(tc.want, "|") {
				t.Errorf("recipients %q, want %q", env.Recipients, tc.want)
			}
			if strings.Contains(strings.ToLower(out), "\nbcc") || strings.Contains(out, "hidden@") {
				t.Errorf("Bcc left in output:\n%s", out)
			}
			if !strings.HasSuffix(out, "\n\nbody\n") || strings.Contains(out, "\r") {
				t.Errorf("LF line endings not kept:\n%q", out)
			}
		})
	}
}

func TestPrepareSender(t *testing.T) {
	for _, tc := range []struct {
		name, hdr string
		from      string // expected reverse-path; "" means an error
		status    int
	}{
		{"no From: added", "To: b@x.test\n", "alice@example.com", 0},
		{"empty From: replaced", "From:\nTo: b@x.test\n", "alice@example.com", 0},
		{"secondary address", "From: A <A.Smith@Example.org>\nTo: b@x.test\n", "a.smith@example.org", 0},
		{"other address", "From: mallory@evil.test\nTo: b@x.test\n", "", http.StatusForbidden},
		{"one of two From not ours", "From: alice@example.com, mallory@evil.test\nSender: alice@example.com\nTo: b@x.test\n", "", http.StatusForbidden},
		{"Sender decides", "From: alice@example.com\nSender: a.smith@example.org\nTo: b@x.test\n", "a.smith@example.org", 0},
		{"Sender not ours", "From: alice@example.com\nSender: mallory@evil.test\nTo: b@x.test\n", "", http.StatusForbidden},
		{"From unparseable", "From: <<<\nTo: b@x.test\n", "", http.StatusBadRequest},
		{"no recipients", "From: alice@example.com\n", "", http.StatusBadRequest},
		{"To unparseable", "To: a@@b\n", "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, out, err := prep822(t, tc.hdr+"Subject: s\n\nb\n")
			if tc.from == "" {
				var e *Error
				if !errors.As(err, &e) || e.HTTPStatus() != tc.status {
					t.Fatalf("err %v, want an *Error with status %d", err, tc.status)
				}
				if tc.status == http.StatusForbidden && !errors.Is(err, ErrSenderNotAllowed) {
					t.Errorf("err %v is not ErrSenderNotAllowed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.From != tc.from {
				t.Errorf("reverse-path %q, want %q", env.From, tc.from)
			}
			if strings.Count(strings.ToLower(out), "\nfrom:")+strings.Count(strings.ToLower(out[:5]), "from:") != 1 {
				t.Errorf("want exactly one From field:\n%s", out)
			}
		})
	}
	// An account without addresses cannot send.
	_, err := PrepareRFC822(strings.NewReader("To: b@x.test\n\nb"), Account{User: "x"}, &bytes.Buffer{})
	if !errors.Is(err, ErrSenderNotAllowed) {
		t.Errorf("no addresses: %v", err)
	}
}

func TestPrepareKeepsHeaders(t *testing.T) {
	raw := "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m1@x.test>\r\nTo: b@x.test\r\nX-Long: " +
		strings.Repeat("y", 40000) + "\r\n\r\n"
	env, out, err := prep822(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if env.MessageID != "<m1@x.test>" {
		t.Errorf("MessageID %q", env.MessageID)
	}
	if strings.Count(out, "Date:") != 1 || strings.Count(out, "Message-ID:") != 1 {
		t.Errorf("Date or Message-ID added although present")
	}
	if !strings.Contains(out, strings.Repeat("y", 40000)+"\r\n") || !strings.HasSuffix(out, "\r\n\r\n") {
		t.Errorf("long field or empty body not kept")
	}

	// Headers only, no blank line, no final newline.
	env, out, err = prep822(t, "To: b@x.test\nSubject: s")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "To: b@x.test\nSubject: s\nFrom: alice@example.com\nDate: ") || !strings.HasSuffix(out, env.MessageID+"\n") {
		t.Errorf("headers-only output:\n%q", out)
	}
}

func TestPrepareMalformed(t *testing.T) {
	for _, raw := range []string{
		" continuation first: x\n\nb",
		"From alice@example.com Mon Jan  1 00:00:00 2024\nTo: b@x.test\n\nb",
		"no colon here\n\nb",
		": empty name\n\nb",
	} {
		_, _, err := prep822(t, raw)
		if !errors.Is(err, ErrBadMessage) {
			t.Errorf("%q: err %v, want ErrBadMessage", raw, err)
		}
	}
}

func TestPrepareCaps(t *testing.T) {
	// Header cap.
	big := "To: b@x.test\nX-Big: " + strings.Repeat("a", 300<<10) + "\n\nb"
	_, _, err := prep822(t, big)
	var le *limits.Error
	if !errors.As(err, &le) || !errors.Is(err, limits.ErrTooLarge) || le.Limit != "max-header-size" || le.Value != DefaultMaxHeaderSize {
		t.Errorf("big header: %v", err)
	}
	// Message size cap.
	p := Preparer{MaxMessageSize: 1000}
	_, err = p.RFC822(strings.NewReader("To: b@x.test\n\n"+strings.Repeat("x", 2000)), alice, &bytes.Buffer{})
	if !errors.As(err, &le) || le.Limit != "max-message-size" || le.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("big message: %v", err)
	}
	// Exactly at the cap is fine.
	msg := "To: b@x.test\nFrom: alice@example.com\nDate: x\nMessage-ID: <a@b>\n\n"
	msg += strings.Repeat("x", 1000-len(msg))
	if _, err := p.RFC822(strings.NewReader(msg), alice, &bytes.Buffer{}); err != nil {
		t.Errorf("message of exactly the cap: %v", err)
	}
	// Recipient cap, over several fields.
	var sb strings.Builder
	sb.WriteString("To: ")
	for i := range 600 {
		fmt.Fprintf(&sb, "u%d@x.test, ", i)
	}
	sb.WriteString("last@x.test\nCc: ")
	for i := range 600 {
		fmt.Fprintf(&sb, "c%d@x.test, ", i)
	}
	sb.WriteString("end@x.test\n\nb")
	_, _, err = prep822(t, sb.String())
	if !errors.As(err, &le) || !errors.Is(err, limits.ErrTooComplex) || le.Limit != "max-recipients" || le.Value != 1000 {
		t.Errorf("1,202 recipients: %v", err)
	}
}

func TestPrepareRFC821(t *testing.T) {
	raw := "mail from:<A.Smith@example.org> SIZE=100\n" +
		"RCPT TO:<x@y.test>\r\n" +
		"Rcpt To: <\"q u\"@y.test> NOTIFY=NEVER\n" +
		"RCPT TO:<@relay.test:z@y.test>\n" +
		"RCPT TO:<X@Y.test>\n" +
		"\n" +
		"To: someone-else@h.test\nBcc: hidden@h.test\nSubject: s\n\nbody\n"
	var out bytes.Buffer
	env, err := PrepareRFC821(strings.NewReader(raw), alice, &out)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "a.smith@example.org" {
		t.Errorf("reverse-path %q", env.From)
	}
	if got := strings.Join(env.Recipients, "|"); got != `x@y.test|"q u"@y.test|z@y.test` {
		t.Errorf("recipients %s", got)
	}
	o := out.String()
	if strings.Contains(o, "hidden") || strings.Contains(o, "RCPT") || !strings.HasPrefix(o, "To: someone-else@h.test\nSubject: s\nFrom: alice@example.com\n") {
		t.Errorf("output:\n%s", o)
	}

	// Without RCPT TO the header recipients count; a null MAIL FROM stays.
	env, err = PrepareRFC821(strings.NewReader("MAIL FROM:<>\n\nTo: t@h.test\nBcc: b@h.test\n\nx"), alice, &bytes.Buffer{})
	if err != nil || env.From != "" || strings.Join(env.Recipients, "|") != "t@h.test|b@h.test" {
		t.Errorf("null sender, header recipients: %+v %v", env, err)
	}

	for _, tc := range []struct {
		raw  string
		kind error
	}{
		{"MAIL FROM:<mallory@evil.test>\nRCPT TO:<x@y.test>\n\nb", ErrSenderNotAllowed},
		{"RCPT TO:<x@y.test>\n\nFrom: mallory@evil.test\n\nb", ErrSenderNotAllowed},
		{"RCPT TO:<x@y.test>\nTo: b\n", ErrBadMessage},
		{"RCPT TO:<x@y.test>", ErrBadMessage},
		{"HELO x\n\nb", ErrBadMessage},
		{"MAIL FROM:<alice@example.com>\nMAIL FROM:<alice@example.com>\n\nb", ErrBadMessage},
		{"RCPT TO:<>\n\nb", ErrBadMessage},
		{"RCPT TO:<x@y.test\n\nb", ErrBadMessage},
		{"RCPT TO:<" + strings.Repeat("a", 3000) + "@y.test>\n\nb", ErrBadMessage},
		{"\nSubject: none\n\nb", ErrNoRecipients},
		{"RCPT TO:<" + strings.Repeat("a", 300) + "@y.test>\n\nb", ErrBadMessage},
	} {
		_, err := PrepareRFC821(strings.NewReader(tc.raw), alice, &bytes.Buffer{})
		if !errors.Is(err, tc.kind) {
			t.Errorf("%.40q: err %v, want %v", tc.raw, err, tc.kind)
		}
	}

	var sb strings.Builder
	for i := range 1001 {
		fmt.Fprintf(&sb, "RCPT TO:<u%d@x.test>\n", i)
	}
	sb.WriteString("\nb")
	_, err = PrepareRFC821(strings.NewReader(sb.String()), alice, &bytes.Buffer{})
	if !errors.Is(err, limits.ErrTooComplex) {
		t.Errorf("1,001 RCPT TO: %v", err)
	}
}

func TestEnvelopeAddRecipients(t *testing.T) {
	env := Envelope{Recipients: []string{"a@x.test"}}
	if err := env.AddRecipients("A@x.test, \"B\" <b@x.test>", 0); err != nil {
		t.Fatal(err)
	}
	if strings.Join(env.Recipients, "|") != "a@x.test|b@x.test" {
		t.Errorf("recipients %v", env.Recipients)
	}
	if err := env.AddRecipients("c@x.test", 2); !errors.Is(err, limits.ErrTooComplex) {
		t.Errorf("over the cap: %v", err)
	}
	if err := env.AddRecipients("<<", 0); !errors.Is(err, ErrBadMessage) {
		t.Errorf("garbage: %v", err)
	}
}

func TestSMTPPath(t *testing.T) {
	for in, want := range map[string]string{
		"a@b":           "a@b",
		"a.b+c@d":       "a.b+c@d",
		"john doe@x":    `"john doe"@x`,
		`a"b@x`:         `"a\"b"@x`,
		".a@x":          `".a"@x`,
		"a..b@x":        `"a..b"@x`,
		"ü@x":           "ü@x",
		"a@b@c":         `"a@b"@c`,
		"x@[127.0.0.1]": "x@[127.0.0.1]",
	} {
		if got, err := smtpPath(in); err != nil || got != want {
			t.Errorf("smtpPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "@b", "a@", "a\r\n@b", strings.Repeat("a", 260) + "@b"} {
		if _, err := smtpPath(bad); err == nil {
			t.Errorf("smtpPath(%q) accepted", bad)
		}
	}
}
