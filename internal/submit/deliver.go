package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// outcome is what one attempt did for one recipient.
type outcome struct {
	state    string // rcptDone, rcptFailed or rcptPending (deferred)
	code     int    // the relay's reply code; 0 for a local or network failure
	enhanced string // RFC 3463 enhanced status code, "" when none
	reply    string
	// domainHint is set when the relay deferred this recipient itself
	// (4xx to RCPT), which says something about its domain.
	domainHint bool
	// tooMany is set when the relay refused this recipient because the
	// transaction had too many (RFC 5321 §4.5.3.1.10: 452, or RFC 3463
	// 4.5.3): it goes in the next transaction, at once.
	tooMany bool
}

// attempt is the result of one SMTP transaction.
type attempt struct {
	out []outcome // one per recipient attempted
	// dataOK is set once the relay answered 250 to the end of DATA.
	dataOK bool
	// relayErr is set when the attempt failed before any recipient could
	// be tried (connection, TLS, greeting, AUTH, MAIL): the relay as a
	// whole is unavailable, not any recipient.
	relayErr error
	// aborted is set when ctx was cancelled (shutdown) before dataOK.
	aborted bool
}

// deliver runs one SMTP transaction (RFC 5321 §3.3) with the relay for
// the recipients rec.Rcpts[idx...], streaming the message file with a
// fixed buffer.
func (q *Queue) deliver(ctx context.Context, rec *record, idx []int) attempt {
	a := attempt{out: make([]outcome, len(idx))}
	all := func(o outcome) {
		for i := range a.out {
			a.out[i] = o
		}
	}
	relayFail := func(err error) attempt {
		// Whatever the reply code: a relay that will not talk to us is a
		// configuration or availability problem, never the recipients'.
		a.relayErr = err
		a.aborted = ctx.Err() != nil
		o := fromError(err, false)
		o.state = rcptPending
		all(o)
		return a
	}

	f, err := os.Open(q.l.msgPath(rec.ID))
	if err != nil {
		// The record exists but the message does not: nothing to send.
		// Reported as a permanent local failure (RFC 3463 5.3.0, "other
		// mail system problem").
		all(outcome{state: rcptFailed, enhanced: "5.3.0", reply: "the queued message file is missing"})
		return a
	}
	defer f.Close()

	c, conn, release, err := q.dial(ctx)
	if err != nil {
		return relayFail(err)
	}
	defer release()

	utf8 := needsUTF8(rec.From)
	for _, i := range idx {
		utf8 = utf8 || needsUTF8(rec.Rcpts[i].Addr)
	}
	if utf8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			// RFC 6531 §3.2: without SMTPUTF8 the relay cannot take these
			// addresses; 5.6.7 is "non-ASCII addresses not permitted".
			all(outcome{state: rcptFailed, code: 553, enhanced: "5.6.7", reply: "the relay does not support SMTPUTF8, needed for a non-ASCII address"})
			_ = c.Quit()
			return a
		}
	}
	if err := c.Mail(rec.From, &smtp.MailOptions{Size: rec.Size, UTF8: utf8}); err != nil {
		var se *smtp.SMTPError
		// 530: authentication required (RFC 4954 §6), a configuration
		// problem; any other 5xx refuses the sender itself, permanently
		// for every recipient.
		if errors.As(err, &se) && se.Code >= 500 && se.Code != 530 {
			all(fromError(err, false))
			_ = c.Quit()
			return a
		}
		return relayFail(err)
	}

	var accepted []int // positions in idx
	for k, i := range idx {
		err := c.Rcpt(rec.Rcpts[i].Addr, nil)
		if err == nil {
			accepted = append(accepted, k)
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			// The connection broke: everything not done stays pending.
			a.aborted = ctx.Err() != nil
			all(fromError(err, false))
			return a
		}
		a.out[k] = fromError(err, true)
	}
	if len(accepted) == 0 {
		_ = c.Quit()
		return a
	}
	setAccepted := func(o outcome) {
		for _, k := range accepted {
			a.out[k] = o
		}
	}

	w, err := c.Data()
	if err != nil {
		a.aborted = ctx.Err() != nil
		setAccepted(fromError(err, false))
		return a
	}
	buf := make([]byte, 32<<10) // the one fixed copy buffer of a delivery
	// go-smtp sets no deadline while the message is written: a relay
	// that stops reading would hold the worker forever. RFC 5321
	// §4.5.3.2.5 gives each data block 3 minutes.
	dw := &deadlineWriter{w: w, conn: conn, d: dataBlockTimeout}
	if _, err := io.CopyBuffer(dw, onlyReader{f}, buf); err != nil {
		a.aborted = ctx.Err() != nil
		setAccepted(fromError(err, false))
		return a
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		a.aborted = ctx.Err() != nil
		setAccepted(fromError(err, false))
		return a
	}
	// The relay has taken the message: from here on nothing may turn
	// these recipients back into pending.
	a.dataOK = true
	setAccepted(outcome{state: rcptDone, code: 250, reply: clean(resp.StatusText)})
	_ = c.Quit()
	return a
}

// dataBlockTimeout is RFC 5321 §4.5.3.2.5's timeout for sending one
// data block.
const dataBlockTimeout = 3 * time.Minute

// deadlineWriter pushes conn's write deadline forward before each write.
type deadlineWriter struct {
	w    io.Writer
	conn net.Conn
	d    time.Duration
}

func (dw *deadlineWriter) Write(p []byte) (int, error) {
	if err := dw.conn.SetWriteDeadline(time.Now().Add(dw.d)); err != nil {
		return 0, err
	}
	return dw.w.Write(p)
}

// onlyReader hides *os.File's WriteTo so that io.CopyBuffer uses the
// given buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// fromError turns an SMTP or network error into an outcome: 5xx is a
// permanent failure, 4xx and anything else a deferral (RFC 5321 §4.2.1).
func fromError(err error, fromRcpt bool) outcome {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		o := outcome{code: se.Code, reply: clean(se.Message)}
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			o.enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		switch {
		case se.Code >= 500 && se.Code < 600:
			o.state = rcptFailed
		case fromRcpt && (se.Code == 452 || o.enhanced == "4.5.3"):
			o.state = rcptPending
			o.tooMany = true
		default:
			o.state = rcptPending
			o.domainHint = fromRcpt
		}
		return o
	}
	return outcome{state: rcptPending, reply: clean(err.Error())}
}

// dial connects to the relay, negotiates TLS as configured, says EHLO and
// authenticates. conn is the TCP connection under the client (for
// deadlines). The connection is closed when ctx is cancelled; release
// closes it and must be called once the client is no longer used.
func (q *Queue) dial(ctx context.Context) (c *smtp.Client, conn net.Conn, release func(), err error) {
	o := &q.opts
	d := net.Dialer{Timeout: o.DialTimeout}
	conn, err = d.DialContext(ctx, "tcp", o.Relay)
	if err != nil {
		return nil, nil, nil, err
	}
	// Shutdown (Close past its deadline) interrupts a delivery by closing
	// its connection; every blocked read or write then fails.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	release = func() {
		stop()
		conn.Close()
	}
	fail := func(err error) (*smtp.Client, net.Conn, func(), error) {
		release()
		return nil, nil, nil, err
	}
	host, _, _ := net.SplitHostPort(o.Relay)
	tlsConf := &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: o.InsecureSkipVerify, // tests only; see Options
		MinVersion:         tls.VersionTLS12,     // RFC 8996: no TLS 1.0/1.1
	}
	switch o.TLS {
	case TLSImplicit: // RFC 8314 §3: TLS from the first byte
		tc := tls.Client(conn, tlsConf)
		hctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fail(err)
		}
		c = smtp.NewClient(tc)
	case TLSStartTLS: // RFC 3207
		// go-smtp says EHLO as "localhost" before STARTTLS; the configured
		// name is used after it, where it counts.
		c, err = smtp.NewClientStartTLS(conn, tlsConf)
		if err != nil {
			return fail(err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = o.CommandTimeout
	c.SubmissionTimeout = o.DataTimeout
	if err := c.Hello(o.HelloName); err != nil {
		return fail(err)
	}
	if o.Username != "" {
		if !c.SupportsAuth(sasl.Plain) {
			return fail(errors.New("the relay does not offer AUTH PLAIN"))
		}
		// RFC 4616 PLAIN; the password is never logged (go-smtp's
		// DebugWriter is left nil).
		if err := c.Auth(sasl.NewPlainClient("", o.Username, o.Password)); err != nil {
			return fail(fmt.Errorf("AUTH PLAIN as %q: %w", o.Username, err))
		}
	}
	return c, conn, release, nil
}

// needsUTF8 reports whether an address needs SMTPUTF8 (RFC 6531).
func needsUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// clean makes a relay reply safe to store and to quote in a bounce:
// printable ASCII and spaces only, at most maxReply bytes.
func clean(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s) && sb.Len() < maxReply; i++ {
		c := s[i]
		switch {
		case c == '\r' || c == '\n' || c == '\t':
			sb.WriteByte(' ')
		case c < 0x20 || c >= 0x7f:
			sb.WriteByte('?')
		default:
			sb.WriteByte(c)
		}
	}
	return strings.TrimSpace(sb.String())
}
