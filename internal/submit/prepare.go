package submit

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/davmail/davmail/limits"
)

// Default caps of a Preparer.
const (
	// DefaultMaxMessageSize matches dav.DefaultMaxMessageSize (25 MiB), the
	// largest message a client may store: what can be stored can be sent.
	DefaultMaxMessageSize = 25 << 20
	// DefaultMaxHeaderSize caps the top-level header. 256 KiB is far above
	// any real header (Postfix's header_size_limit is 100 KiB) and bounds
	// the memory one submission holds.
	DefaultMaxHeaderSize = 256 << 10
	// DefaultMaxRecipients caps the recipients of one message. 1,000 is
	// ten times RFC 5321 §4.5.3.1.8's minimum of 100 and what large
	// providers allow per message.
	DefaultMaxRecipients = 1000
)

// maxEnvelopeLine caps one MAIL FROM / RCPT TO line of a message/rfc821
// body: RFC 5321 §4.5.3.1.4 allows 512 octets for a command line, and
// extensions add parameters; 2 KiB is generous for both.
const maxEnvelopeLine = 2 << 10

// maxQuoted is how much of a bad value an error message quotes: enough to
// recognise it, not enough to echo a hostile input back whole.
const maxQuoted = 64

// maxPath caps one address: RFC 5321 §4.5.3.1.3, a path is at most 256
// octets including the angle brackets.
const maxPath = 256

// Kinds of *Error, for errors.Is.
var (
	// ErrSenderNotAllowed: the From, Sender or MAIL FROM address is not one
	// of the account's addresses (403, as Exchange answers, §6.5).
	ErrSenderNotAllowed = errors.New("sender address not allowed")
	// ErrBadMessage: the submission cannot be parsed (400).
	ErrBadMessage = errors.New("malformed submission")
	// ErrNoRecipients: the submission names no recipient (400).
	ErrNoRecipients = errors.New("no recipients")
)

// Error is a refusal of a submission for a client mistake. Status is the
// HTTP status to answer; Msg is safe to show the client.
type Error struct {
	Kind   error // ErrSenderNotAllowed, ErrBadMessage or ErrNoRecipients
	Status int
	Msg    string
}

func (e *Error) Error() string { return "submit: " + e.Msg }

// Is makes errors.Is(err, ErrSenderNotAllowed) and friends work.
func (e *Error) Is(target error) bool { return target == e.Kind }

// HTTPStatus returns the status to answer.
func (e *Error) HTTPStatus() int { return e.Status }

func badMessage(format string, args ...any) *Error {
	return &Error{Kind: ErrBadMessage, Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func senderNotAllowed(addr string) *Error {
	return &Error{Kind: ErrSenderNotAllowed, Status: http.StatusForbidden,
		Msg: fmt.Sprintf("this account may not send as %q", addr)}
}

// Account is the submitting user and the addresses they may send as.
type Account struct {
	User string
	// Addresses the user may put in From, Sender and MAIL FROM; the first
	// is the primary one, used when the message has no From. Compared
	// case-insensitively.
	Addresses []string
}

// allowed returns the account's own spelling of addr, or "" when addr is
// not one of its addresses.
func (a Account) allowed(addr string) string {
	for _, x := range a.Addresses {
		if strings.EqualFold(strings.TrimSpace(x), addr) {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

// Envelope is the SMTP envelope of a prepared message (RFC 5321 §2.3.1).
type Envelope struct {
	// User is the submitting account's user: bounces go to their Inbox.
	User string
	// From is the reverse-path without angle brackets; "" is the null
	// reverse-path, whose failures are never bounced.
	From string
	// Recipients are the forward-paths without angle brackets, in SMTP
	// syntax (local parts quoted where RFC 5321 §4.1.2 needs it), without
	// duplicates (compared case-insensitively), in input order.
	Recipients []string
	// MessageID is the Message-ID field of the prepared message, angle
	// brackets included, as found or as added.
	MessageID string
	// Size is the number of bytes written to the spool.
	Size int64
}

// AddRecipients adds the addresses of an RFC 5322 address list (for
// instance the urn:schemas:mailheader:bcc property DavMail sets on a draft
// before moving it to the submission URI, §6.5) to e.Recipients, skipping
// duplicates. max caps the total (0 means DefaultMaxRecipients).
func (e *Envelope) AddRecipients(list string, max int) error {
	if max <= 0 {
		max = DefaultMaxRecipients
	}
	rs := newRcptSet(max)
	for _, r := range e.Recipients {
		if err := rs.add(r); err != nil {
			return err
		}
	}
	if err := rs.addList("bcc property", list); err != nil {
		return err
	}
	e.Recipients = rs.list
	return nil
}

// Preparer prepares submissions with the given caps. The zero value uses
// the defaults.
type Preparer struct {
	// MaxMessageSize caps the submitted bytes (envelope lines included).
	// 0 means DefaultMaxMessageSize, -1 no limit.
	MaxMessageSize int64
	// MaxHeaderSize caps the top-level header. 0 means DefaultMaxHeaderSize.
	MaxHeaderSize int
	// MaxRecipients caps the recipients. 0 means DefaultMaxRecipients.
	MaxRecipients int
	// Now returns the time for an added Date field; nil means time.Now.
	Now func() time.Time
}

func (p Preparer) withDefaults() Preparer {
	if p.MaxMessageSize == 0 {
		p.MaxMessageSize = DefaultMaxMessageSize
	}
	if p.MaxHeaderSize <= 0 {
		p.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if p.MaxRecipients <= 0 {
		p.MaxRecipients = DefaultMaxRecipients
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// PrepareRFC822 prepares a message/rfc822 submission with the default caps.
// See Preparer.RFC822.
func PrepareRFC822(r io.Reader, account Account, spool io.Writer) (Envelope, error) {
	return Preparer{}.RFC822(r, account, spool)
}

// PrepareRFC821 prepares a message/rfc821 submission with the default caps.
// See Preparer.RFC821.
func PrepareRFC821(r io.Reader, account Account, spool io.Writer) (Envelope, error) {
	return Preparer{}.RFC821(r, account, spool)
}

// RFC822 reads an RFC 5322 message from r and writes the message to send
// to spool: the header without Bcc (and Resent-Bcc), with From (the
// account's primary address), Date and Message-ID appended when missing,
// then the body unchanged. The recipients are the addresses of every To,
// Cc and Bcc field, groups included (RFC 5322 §3.4).
//
// From and Sender must be addresses of the account: otherwise the error is
// an *Error of kind ErrSenderNotAllowed (403). The reverse-path is the
// Sender address if there is one, else the first From address.
//
// On error the spool holds garbage and must be discarded.
func (p Preparer) RFC822(r io.Reader, account Account, spool io.Writer) (Envelope, error) {
	p = p.withDefaults()
	return p.message(p.reader(r), account, spool, nil)
}

// RFC821 reads a message/rfc821 submission from r: SMTP envelope lines
// "MAIL FROM:<path>" (at most one) and "RCPT TO:<path>" (RFC 5321 §4.1.1.2,
// §4.1.1.3; case-insensitive, CRLF or LF, parameters after the path
// ignored) up to a blank line, then an RFC 5322 message, which is written
// to spool as RFC822 does (Bcc still removed). The recipients are the RCPT
// TO paths; when there are none, those of the To, Cc and Bcc fields. The
// reverse-path is the MAIL FROM path, which must be null or one of the
// account's addresses; without MAIL FROM it is chosen as RFC822 does.
func (p Preparer) RFC821(r io.Reader, account Account, spool io.Writer) (Envelope, error) {
	p = p.withDefaults()
	return p.rfc821(p.reader(r), account, spool)
}

// reader wraps r in the size cap and the one fixed read buffer.
func (p Preparer) reader(r io.Reader) *bufio.Reader {
	if p.MaxMessageSize > 0 {
		r = limits.NewReader(r, "max-message-size", p.MaxMessageSize)
	}
	// 32 KiB: large enough for any header line, small enough per request.
	return bufio.NewReaderSize(r, 32<<10)
}

type envelopeLines struct {
	haveFrom bool
	from     string
	rcpts    *rcptSet
}

func (p Preparer) rfc821(br *bufio.Reader, account Account, spool io.Writer) (Envelope, error) {
	el := envelopeLines{rcpts: newRcptSet(p.MaxRecipients)}
	for n := 1; ; n++ {
		line, err := readEnvelopeLine(br)
		if err != nil {
			if err == io.EOF {
				return Envelope{}, badMessage("message/rfc821: no blank line after the envelope")
			}
			return Envelope{}, err
		}
		if line == "" {
			break
		}
		verb, arg, ok := envelopeVerb(line)
		switch {
		case !ok:
			return Envelope{}, badMessage("message/rfc821: line %d is neither MAIL FROM nor RCPT TO", n)
		case verb == "MAIL":
			if el.haveFrom {
				return Envelope{}, badMessage("message/rfc821: more than one MAIL FROM")
			}
			path, err := parsePath(arg, true)
			if err != nil {
				return Envelope{}, badMessage("message/rfc821: MAIL FROM on line %d: %v", n, err)
			}
			if path != "" {
				own := account.allowed(path)
				if own == "" {
					return Envelope{}, senderNotAllowed(path)
				}
				path = own
			}
			el.haveFrom, el.from = true, path
		default: // RCPT
			path, err := parsePath(arg, false)
			if err != nil {
				return Envelope{}, badMessage("message/rfc821: RCPT TO on line %d: %v", n, err)
			}
			if err := el.rcpts.add(path); err != nil {
				return Envelope{}, err
			}
		}
	}
	return p.message(br, account, spool, &el)
}

// readEnvelopeLine reads one line of at most maxEnvelopeLine bytes and
// returns it without its line ending.
func readEnvelopeLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(b)+len(chunk) > maxEnvelopeLine {
			return "", badMessage("message/rfc821: envelope line longer than %d bytes", maxEnvelopeLine)
		}
		b = append(b, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && (err != io.EOF || len(b) == 0) {
			return "", err
		}
		break
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		// A last line without a line ending: the blank line is missing.
		return "", io.EOF
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// envelopeVerb recognises "MAIL FROM:" and "RCPT TO:" case-insensitively
// and returns the rest of the line.
func envelopeVerb(line string) (verb, arg string, ok bool) {
	for _, v := range [...]struct{ verb, prefix string }{{"MAIL", "MAIL FROM:"}, {"RCPT", "RCPT TO:"}} {
		if len(line) >= len(v.prefix) && strings.EqualFold(line[:len(v.prefix)], v.prefix) {
			return v.verb, line[len(v.prefix):], true
		}
	}
	return "", "", false
}

// parsePath reads "<path> params" or a bare path (some clients omit the
// brackets), drops an RFC 5321 §4.1.2 source route ("@a,@b:"), and
// returns the address in SMTP syntax; "" for the null path "<>" when
// nullOK.
func parsePath(arg string, nullOK bool) (string, error) {
	arg = strings.TrimLeft(arg, " \t")
	var path string
	if strings.HasPrefix(arg, "<") {
		end := closingBracket(arg)
		if end < 0 {
			return "", errors.New("no closing '>'")
		}
		path = arg[1:end]
	} else {
		path, _, _ = strings.Cut(arg, " ")
	}
	if strings.HasPrefix(path, "@") {
		_, after, found := strings.Cut(path, ":")
		if !found {
			return "", errors.New("malformed source route")
		}
		path = after
	}
	if path == "" {
		if nullOK {
			return "", nil
		}
		return "", errors.New("empty path")
	}
	a, err := mail.ParseAddress(path)
	if err != nil {
		return "", fmt.Errorf("invalid address %q", truncate(path, maxQuoted))
	}
	return smtpPath(a.Address)
}

// closingBracket returns the index of the '>' that ends the path starting
// at s[0] == '<', skipping quoted strings, or -1.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '>' && !quoted:
			return i
		}
	}
	return -1
}

// headerState is what message() learns from the header.
type headerState struct {
	account    Account
	eol        string // the line ending to use for added fields
	from       string // the account's spelling of the first From address
	sender     string // the account's spelling of the Sender address
	hasFrom    bool
	hasDate    bool
	messageID  string
	hasMsgID   bool
	rcpts      *rcptSet // nil when the recipients come from the envelope
	headerSize int
}

// message copies the RFC 5322 message from br to spool as described at
// RFC822. el holds the rfc821 envelope lines, or nil.
func (p Preparer) message(br *bufio.Reader, account Account, spool io.Writer, el *envelopeLines) (Envelope, error) {
	if len(account.Addresses) == 0 || strings.TrimSpace(account.Addresses[0]) == "" {
		return Envelope{}, &Error{Kind: ErrSenderNotAllowed, Status: http.StatusForbidden, Msg: "this account has no address to send as"}
	}
	primary := strings.TrimSpace(account.Addresses[0])

	cw := &countWriter{w: spool}
	// 32 KiB: one fixed write buffer per submission.
	bw := bufio.NewWriterSize(cw, 32<<10)
	hs := headerState{account: account}
	if el == nil || el.rcpts.len() == 0 {
		hs.rcpts = newRcptSet(p.MaxRecipients)
	}

	sep, err := p.copyHeader(br, bw, &hs)
	if err != nil {
		return Envelope{}, err
	}

	// From and Sender were checked against the account field by field
	// (flushField); the reverse-path is the Sender if any, else the first
	// From (RFC 5322 §3.6.2).
	headerFrom := hs.from
	if hs.sender != "" {
		headerFrom = hs.sender
	}
	if !hs.hasFrom {
		// The primary address is checked like any address that goes on the
		// wire: a configuration typo must not produce a broken header.
		fp, err := smtpPath(primary)
		if err != nil {
			return Envelope{}, &Error{Kind: ErrSenderNotAllowed, Status: http.StatusForbidden, Msg: "this account's address cannot be used as a sender"}
		}
		headerFrom = primary
		fmt.Fprintf(bw, "From: %s%s", fp, hs.eol)
	}
	if headerFrom == "" {
		// "From:" with an empty group: send as the primary address.
		headerFrom = primary
	}

	env := Envelope{User: account.User}
	if el != nil && el.haveFrom {
		env.From = el.from
	} else {
		env.From, err = smtpPath(headerFrom)
		if err != nil {
			return Envelope{}, senderNotAllowed(headerFrom)
		}
	}
	if !hs.hasDate {
		// RFC 5322 §3.3 date-time; RFC1123Z is exactly that layout.
		fmt.Fprintf(bw, "Date: %s%s", p.Now().Format(time.RFC1123Z), hs.eol)
	}
	env.MessageID = hs.messageID
	if !hs.hasMsgID || hs.messageID == "" {
		env.MessageID = newMessageID(domainOf(primary))
		fmt.Fprintf(bw, "Message-ID: %s%s", env.MessageID, hs.eol)
	}
	if _, err := bw.WriteString(sep); err != nil {
		return Envelope{}, err
	}
	// The body, unchanged, through the two fixed buffers.
	if _, err := br.WriteTo(bw); err != nil {
		return Envelope{}, err
	}
	if err := bw.Flush(); err != nil {
		return Envelope{}, err
	}

	if hs.rcpts != nil {
		env.Recipients = hs.rcpts.list
	} else {
		env.Recipients = el.rcpts.list
	}
	if len(env.Recipients) == 0 {
		return Envelope{}, &Error{Kind: ErrNoRecipients, Status: http.StatusBadRequest, Msg: "the message names no recipient (To, Cc, Bcc or RCPT TO)"}
	}
	env.Size = cw.n
	return env, nil
}

// copyHeader reads the top-level header field by field, handles the
// fields that matter, writes every other field unchanged, and returns the
// separator that ended the header ("" when the input ended in the header).
func (p Preparer) copyHeader(br *bufio.Reader, bw *bufio.Writer, hs *headerState) (string, error) {
	var field []byte // the current field, raw, folded lines included
	first := true
	for {
		line, err := readHeaderLine(br, field, p.MaxHeaderSize-hs.headerSize)
		if err != nil {
			if le, ok := err.(*limits.Error); ok {
				le.Value = int64(p.MaxHeaderSize)
			}
			return "", err
		}
		chunk := line[len(field):]
		hs.headerSize += len(chunk)
		if first && len(chunk) > 0 {
			first = false
			hs.eol = "\n"
			if strings.HasSuffix(string(chunk), "\r\n") {
				hs.eol = "\r\n"
			}
		}
		if hs.eol == "" {
			hs.eol = "\r\n" // empty input: RFC 5322 line endings
		}
		switch {
		case len(chunk) == 0: // end of input inside the header
			if err := p.flushField(bw, field, hs); err != nil {
				return "", err
			}
			return "", nil
		case isBlankLine(chunk):
			if err := p.flushField(bw, field, hs); err != nil {
				return "", err
			}
			return string(chunk), nil
		case chunk[0] == ' ' || chunk[0] == '\t':
			if len(field) == 0 {
				return "", badMessage("the header starts with a continuation line")
			}
			field = line // folded continuation (RFC 5322 §2.2.3)
		default:
			if err := p.flushField(bw, field, hs); err != nil {
				return "", err
			}
			field = append(line[:0], chunk...)
		}
		if chunk[len(chunk)-1] != '\n' {
			// Input ended without a line ending, inside the header.
			if err := p.flushField(bw, field, hs); err != nil {
				return "", err
			}
			_, err := bw.WriteString(hs.eol)
			return "", err
		}
	}
}

// readHeaderLine appends the next line (line ending included) to buf,
// failing once more than max bytes would be read. It returns buf alone at
// the end of input.
func readHeaderLine(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	start := len(buf)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)-start+len(chunk) > max {
			return nil, limits.TooLarge("max-header-size", int64(DefaultMaxHeaderSize), -1)
		}
		buf = append(buf, chunk...)
		switch err {
		case nil, io.EOF:
			return buf, nil
		case bufio.ErrBufferFull:
			continue
		default:
			return nil, err
		}
	}
}

func isBlankLine(b []byte) bool {
	return len(b) == 1 && b[0] == '\n' || len(b) == 2 && b[0] == '\r' && b[1] == '\n'
}

// flushField handles one complete header field and writes it unless it is
// a Bcc field.
func (p Preparer) flushField(bw *bufio.Writer, field []byte, hs *headerState) error {
	if len(field) == 0 {
		return nil
	}
	colon := -1
	for i, c := range field {
		if c == ':' {
			colon = i
			break
		}
		// RFC 5322 §2.2 ftext, plus trailing WSP before the colon (§4.5
		// obs-optional).
		if (c < 33 || c > 126) && c != ' ' && c != '\t' {
			break
		}
	}
	name := ""
	if colon > 0 {
		name = strings.TrimRight(string(field[:colon]), " \t")
	}
	if name == "" || strings.ContainsAny(name, " \t") {
		return badMessage("malformed header field %q", truncate(string(field), maxQuoted))
	}
	value := func() string { return unfold(field[colon+1:]) }
	switch strings.ToLower(name) {
	case "bcc", "resent-bcc":
		// RFC 5322 §3.6.3: the Bcc recipients get the message, the field
		// is removed from what is sent. Resent-Bcc likewise.
		if hs.rcpts != nil && strings.EqualFold(name, "bcc") {
			return hs.rcpts.addList(name, value())
		}
		return nil
	case "to", "cc":
		if hs.rcpts != nil {
			if err := hs.rcpts.addList(name, value()); err != nil {
				return err
			}
		}
	case "from":
		v := value()
		if v == "" {
			// An empty From is dropped and replaced by the account's.
			return nil
		}
		hs.hasFrom = true
		list, err := addrParser().ParseList(v)
		if err != nil {
			return badMessage("the From field cannot be parsed: %v", err)
		}
		// Every author must be the account (Exchange answers 403 when the
		// From does not belong to the user, §6.5).
		for _, a := range list {
			own := hs.account.allowed(a.Address)
			if own == "" {
				return senderNotAllowed(a.Address)
			}
			if hs.from == "" {
				hs.from = own
			}
		}
	case "sender":
		if v := value(); v != "" {
			a, err := addrParser().Parse(v)
			if err != nil {
				return badMessage("the Sender field cannot be parsed: %v", err)
			}
			if hs.sender = hs.account.allowed(a.Address); hs.sender == "" {
				return senderNotAllowed(a.Address)
			}
		}
	case "date":
		hs.hasDate = true
	case "message-id":
		hs.hasMsgID = true
		hs.messageID = truncate(value(), 998) // RFC 5322 §2.1.1 line limit
	}
	_, err := bw.Write(field)
	return err
}

// unfold removes the CRLF (or LF) of folded lines (RFC 5322 §2.2.3) and
// trims the value.
func unfold(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c != '\r' && c != '\n' {
			sb.WriteByte(c)
		}
	}
	return strings.TrimSpace(sb.String())
}

// addrParser returns an RFC 5322 address parser. Display names are never
// used, so an encoded word in any charset is accepted undecoded (net/mail
// alone rejects a whole list for one word in an unknown charset).
func addrParser() *mail.AddressParser {
	return &mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	}}
}

// rcptSet collects recipients without duplicates, up to a cap.
type rcptSet struct {
	max  int
	seen map[string]struct{} // lower-cased; at most max entries
	list []string
}

func newRcptSet(max int) *rcptSet {
	return &rcptSet{max: max, seen: make(map[string]struct{})}
}

func (s *rcptSet) len() int { return len(s.list) }

// add adds one address, in SMTP syntax already.
func (s *rcptSet) add(addr string) error {
	k := strings.ToLower(addr)
	if _, ok := s.seen[k]; ok {
		return nil
	}
	if len(s.list) >= s.max {
		return limits.TooComplex("max-recipients", int64(s.max), int64(len(s.list)+1), "recipients")
	}
	s.seen[k] = struct{}{}
	s.list = append(s.list, addr)
	return nil
}

// addList parses an RFC 5322 address-list (§3.4, groups and encoded
// display names included) and adds its addresses.
func (s *rcptSet) addList(field, v string) error {
	if v == "" {
		return nil
	}
	list, err := addrParser().ParseList(v)
	if err != nil {
		return badMessage("the %s field cannot be parsed: %v", field, err)
	}
	for _, a := range list {
		p, err := smtpPath(a.Address)
		if err != nil {
			return badMessage("the %s field: %v", field, err)
		}
		if err := s.add(p); err != nil {
			return err
		}
	}
	return nil
}

// smtpPath returns addr (an addr-spec as net/mail returns it, local part
// unquoted) in RFC 5321 §4.1.2 Mailbox syntax: the local part stays a
// dot-string when it is one and becomes a quoted string otherwise.
func smtpPath(addr string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", fmt.Errorf("address %q has no local part or no domain", truncate(addr, maxQuoted))
	}
	local, domain := addr[:at], addr[at+1:]
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("address %q holds a control character", truncate(addr, maxQuoted))
		}
	}
	if !isDotString(local) {
		var sb strings.Builder
		sb.WriteByte('"')
		for i := 0; i < len(local); i++ {
			if c := local[i]; c == '"' || c == '\\' {
				sb.WriteByte('\\')
			}
			sb.WriteByte(local[i])
		}
		sb.WriteByte('"')
		local = sb.String()
	}
	out := local + "@" + domain
	if len(out)+2 > maxPath {
		return "", fmt.Errorf("address %q is longer than %d bytes", truncate(addr, maxQuoted), maxPath-2)
	}
	return out, nil
}

// isDotString reports whether s is an RFC 5321 Dot-string (atoms of atext
// joined by single dots; UTF-8 allowed as in RFC 6531).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80, c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// domainOf returns the lower-cased domain of an address ("" without one).
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}

// newMessageID returns a unique Message-ID (RFC 5322 §3.6.4) in the
// sender's domain.
func newMessageID(domain string) string {
	if domain == "" || strings.ContainsAny(domain, "<>\" \t\r\n") {
		domain = "davmail.invalid" // RFC 2606 reserved name: never a real host
	}
	var b [16]byte // 128 random bits: collisions are not a concern
	_, _ = rand.Read(b[:])
	return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
