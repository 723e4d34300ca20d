package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// A minimal IMAP4rev1 client (RFC 3501): just enough to log in, select a
// mailbox and time a FETCH of every message. Responses are read as
// "logical lines": a line plus any literals ({n}CRLF + n octets, RFC 3501
// §4.3) it announces, so that ENVELOPE subjects sent as literals do not
// break line counting.

// Caps on what the server may send, so a misbehaving peer cannot make the
// harness allocate without bound.
const (
	maxIMAPLine    = 1 << 20  // 1 MiB: Dovecot's ENVELOPE lines are < 10 KiB
	maxIMAPLiteral = 64 << 20 // 64 MiB: far above any header literal
)

var errIMAPTooLong = errors.New("imap: line or literal over the cap")

type imapConn struct {
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dialIMAP(ctx context.Context, addr string) (*imapConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	ic := &imapConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	line, err := ic.readLogical(nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("imap greeting: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("* OK")) {
		c.Close()
		return nil, fmt.Errorf("imap greeting: %q", trunc(line))
	}
	return ic, nil
}

func (ic *imapConn) Close() error { return ic.c.Close() }

// command sends a command and reads responses up to its tagged completion.
// each, if not nil, sees every untagged logical line. The tagged status must
// be OK.
func (ic *imapConn) command(cmd string, each func(line []byte)) error {
	ic.tag++
	tag := "b" + strconv.Itoa(ic.tag)
	if _, err := io.WriteString(ic.c, tag+" "+cmd+"\r\n"); err != nil {
		return err
	}
	prefix := []byte(tag + " ")
	var buf []byte
	for {
		line, err := ic.readLogical(buf[:0])
		if err != nil {
			return fmt.Errorf("imap %s: %w", strings.Fields(cmd)[0], err)
		}
		buf = line
		if bytes.HasPrefix(line, prefix) {
			st := line[len(prefix):]
			if !bytes.HasPrefix(st, []byte("OK")) {
				return fmt.Errorf("imap %s: %q", strings.Fields(cmd)[0], trunc(line))
			}
			return nil
		}
		if each != nil {
			each(line)
		}
	}
}

// readLogical reads one response line and the literals it announces,
// appending to dst (without the CRLFs that end lines). Bounded by
// maxIMAPLine per line and maxIMAPLiteral per literal.
func (ic *imapConn) readLogical(dst []byte) ([]byte, error) {
	return readLogical(ic.r, dst)
}

func readLogical(r *bufio.Reader, dst []byte) ([]byte, error) {
	for parts := 0; ; parts++ {
		if parts > 100000 { // literals per line: an ENVELOPE has < 20
			return dst, errIMAPTooLong
		}
		line, err := readLine(r)
		if err != nil {
			return dst, err
		}
		dst = append(dst, line...)
		n, ok := literalLen(line)
		if !ok {
			return dst, nil
		}
		if n > maxIMAPLiteral {
			return dst, errIMAPTooLong
		}
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		if _, err := io.ReadFull(r, dst[start:]); err != nil {
			return dst, err
		}
	}
}

// readLine reads up to CRLF (or LF) and returns the line without it.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxIMAPLine {
			return nil, errIMAPTooLong
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// literalLen reports whether line ends with a literal announcement
// "{n}" or "{n+}" (RFC 7888) and returns n.
func literalLen(line []byte) (int, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	if len(digits) == 0 || len(digits) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// isFetch reports whether an untagged logical line is "* n FETCH (".
func isFetch(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("* "))
	if !ok {
		return false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	return i > 0 && bytes.HasPrefix(rest[i:], []byte(" FETCH ("))
}

// imapQuote quotes s as an IMAP quoted string (RFC 3501 §4.3).
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func trunc(b []byte) string {
	const max = 200 // enough of a line to see what went wrong
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// imapFetchResult is one timed listing.
type imapFetchResult struct {
	elapsed time.Duration
	fetched int
}

// imapListing connects, logs in, selects mailbox and fetches FLAGS,
// RFC822.SIZE and ENVELOPE of every message — what an IMAP client does to
// show a folder — timing from connect to the FETCH's tagged OK.
func imapListing(ctx context.Context, addr, user, pass, mailbox string) (imapFetchResult, error) {
	start := time.Now()
	ic, err := dialIMAP(ctx, addr)
	if err != nil {
		return imapFetchResult{}, err
	}
	defer ic.Close()
	if err := ic.command("LOGIN "+imapQuote(user)+" "+imapQuote(pass), nil); err != nil {
		return imapFetchResult{}, err
	}
	if err := ic.command("SELECT "+imapQuote(mailbox), nil); err != nil {
		return imapFetchResult{}, err
	}
	n := 0
	err = ic.command("UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)", func(line []byte) {
		if isFetch(line) {
			n++
		}
	})
	elapsed := time.Since(start)
	if err != nil {
		return imapFetchResult{}, err
	}
	_ = ic.command("LOGOUT", nil) // not timed; the server may just close
	return imapFetchResult{elapsed: elapsed, fetched: n}, nil
}
