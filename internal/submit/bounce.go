package submit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// buildBounce returns a delivery status notification for the recipients
// of rec in state rcptFailed: RFC 3464 (message/delivery-status) inside an
// RFC 6522 multipart/report, with a human-readable part naming each
// recipient and the relay's reply, and the original header as
// text/rfc822-headers. Its size is bounded by the caps: at most
// MaxRecipients recipients with a reply of maxReply bytes, and a header of
// at most DefaultMaxHeaderSize bytes.
func (q *Queue) buildBounce(rec *record, now time.Time) ([]byte, error) {
	var failed []rcptInfo
	global := needsUTF8(rec.From)
	for _, r := range rec.Rcpts {
		if r.State == rcptFailed {
			failed = append(failed, r)
			global = global || needsUTF8(r.Addr)
		}
	}
	var rb [12]byte // 96 random bits: a boundary no message text contains by chance
	_, _ = rand.Read(rb[:])
	boundary := "=_davmail-dsn-" + hex.EncodeToString(rb[:])
	dom := domainOf(rec.From)
	relayHost, _, err := net.SplitHostPort(q.opts.Relay)
	if err != nil {
		relayHost = q.opts.Relay
	}
	date := now.Format(time.RFC1123Z)

	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", orInvalid(dom))
	w("To: <%s>", rec.From)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", date)
	w("Message-ID: %s", newMessageID(dom))
	if isMsgID(rec.MessageID) {
		w("In-Reply-To: %s", rec.MessageID)
		w("References: %s", rec.MessageID)
	}
	w("Auto-Submitted: auto-replied") // RFC 3834 §5: never answer this
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")

	// Part 1: for people.
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: quoted-printable")
	w("Content-Description: Notification")
	w("")
	var text strings.Builder
	fmt.Fprintf(&text, "This is the mail system at %s.\r\n\r\n", q.opts.HelloName)
	fmt.Fprintf(&text, "Your message could not be delivered to the following recipient(s). The reply of the mail relay (%s) is quoted after each address.\r\n\r\n", relayHost)
	for _, r := range failed {
		fmt.Fprintf(&text, "<%s>: %s\r\n\r\n", r.Addr, diagnostic(r))
	}
	if rec.MessageID != "" {
		fmt.Fprintf(&text, "Your message: %s, submitted %s.\r\n", rec.MessageID, rec.Created.Format(time.RFC1123Z))
	}
	qp := quotedprintable.NewWriter(&b)
	if _, err := io.WriteString(qp, text.String()); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	w("")

	// Part 2: for programs (RFC 3464 §2; RFC 6533 for UTF-8 addresses).
	w("--%s", boundary)
	addrType := "rfc822"
	if global {
		w("Content-Type: message/global-delivery-status")
		addrType = "utf-8"
	} else {
		w("Content-Type: message/delivery-status")
	}
	w("Content-Description: Delivery report")
	w("")
	w("Reporting-MTA: dns; %s", q.opts.HelloName)
	w("X-Davmail-Queue-ID: %s", rec.ID)
	w("Arrival-Date: %s", rec.Created.Format(time.RFC1123Z))
	for _, r := range failed {
		w("")
		w("Final-Recipient: %s; %s", addrType, r.Addr)
		w("Action: failed")
		w("Status: %s", statusOf(r))
		if r.Code != 0 {
			w("Remote-MTA: dns; %s", relayHost)
			w("Diagnostic-Code: smtp; %s", diagnostic(r))
		} else if r.Reply != "" {
			w("Diagnostic-Code: x-davmail; %s", r.Reply)
		}
		w("Last-Attempt-Date: %s", date)
	}
	w("")

	// Part 3: the original header (RFC 6522 §4: text/rfc822-headers).
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("Content-Description: Undelivered message headers")
	w("")
	if err := q.copyOriginalHeader(&b, rec.ID); err != nil {
		return nil, err
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes(), nil
}

// copyOriginalHeader appends the header of the queued message, with CRLF
// line endings, at most DefaultMaxHeaderSize bytes of it. A missing
// message file leaves the part empty.
func (q *Queue) copyOriginalHeader(b *bytes.Buffer, id string) error {
	f, err := os.Open(q.l.msgPath(id))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	// 4 KiB line buffer: longer lines are copied in pieces.
	br := bufio.NewReaderSize(io.LimitReader(f, DefaultMaxHeaderSize), 4<<10)
	partial := false // inside a line longer than the buffer
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: keep it, one buffer at a time.
			b.Write(line)
			partial = true
			continue
		}
		t := bytes.TrimRight(line, "\r\n")
		if len(t) == 0 && len(line) > 0 && !partial {
			return nil // the blank line that ends the header
		}
		partial = false
		if len(line) > 0 {
			b.Write(t)
			b.WriteString("\r\n")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// statusOf returns the RFC 3464 §2.3.4 Status of a failed recipient.
func statusOf(r rcptInfo) string {
	if isStatusCode(r.Enhanced) {
		return r.Enhanced
	}
	if r.Code >= 400 && r.Code < 600 {
		return strconv.Itoa(r.Code/100) + ".0.0"
	}
	return "5.0.0"
}

// diagnostic renders "550 5.1.1 reply" (or the local reason).
func diagnostic(r rcptInfo) string {
	var parts []string
	if r.Code != 0 {
		parts = append(parts, strconv.Itoa(r.Code))
	}
	if r.Enhanced != "" {
		parts = append(parts, r.Enhanced)
	}
	if r.Reply != "" {
		parts = append(parts, r.Reply)
	}
	return strings.Join(parts, " ")
}

// isStatusCode reports whether s is an RFC 3463 status code class.subject.detail
// with class 2, 4 or 5.
func isStatusCode(s string) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || (p[0] != "2" && p[0] != "4" && p[0] != "5") {
		return false
	}
	for _, x := range p[1:] {
		if n, err := strconv.Atoi(x); err != nil || n < 0 || n > 999 {
			return false
		}
	}
	return true
}

func isMsgID(s string) bool {
	return len(s) > 2 && s[0] == '<' && s[len(s)-1] == '>' && !strings.ContainsAny(s, "\r\n")
}

func orInvalid(domain string) string {
	if domain == "" || strings.ContainsAny(domain, "<>\" \t\r\n") {
		return "davmail.invalid"
	}
	return domain
}
