package mailbox

// Structure is the MIME structure of a message as the index keeps it:
// learnt once, when the message is indexed (convert.Scan), so that
// serving a part or listing attachments never parses the message again.
// A Structure returned by a store is shared: callers must not modify it.
type Structure struct {
	// Parts is the MIME tree flattened in document order. Parts[0] is the
	// message itself; it is always there, even for an empty file.
	Parts []Part
	// Problems lists markers of what was wrong with the message or beyond
	// the scanner's caps (convert.Problem… constants), each at most once.
	Problems []string
}

// Part is one entity (RFC 2045 §2.4) of a message: the message itself,
// a body part of a multipart, or a message encapsulated in a
// message/rfc822 part.
//
// Path numbers parts as IMAP does (RFC 3501 §6.4.5, RFC 9051 §6.4.5,
// the BODY[section] part specifier):
//   - Parts[0], the message, has Path "" (sections HEADER, TEXT; if it is
//     not multipart its body is also section "1");
//   - the children of a multipart with Path P are P.1, P.2, … ("1", "2",
//     … under the message);
//   - the message encapsulated in a message/rfc822 part numbered N has
//     Path N too (IMAP addresses it as N: N.HEADER, N.TEXT, and its
//     children as N.1, N.2, …). Such a Path is shared by two Parts, the
//     message/rfc822 part and, right after it, its child. If the
//     message/rfc822 entity is itself a message (Parts[0] or an
//     encapsulated message), its body is section Path.1, which is the Path
//     of its child ("1" for a top-level message/rfc822);
//   - as for Parts[0], the body of a non-multipart encapsulated message
//     N is section N.1, which has no Part of its own.
//
// A message/rfc822 part is expanded (its message becomes its child) only
// with an identity transfer encoding; one sent as base64 or
// quoted-printable, which RFC 2046 §5.2.1 forbids but mailers write, is a
// leaf: decode it with convert.NewDecoder and scan the result if needed.
//
// Offsets are in the raw message. The header is [HeaderStart,
// BodyStart), including the empty line that ends it; the body is
// [BodyStart, BodyEnd) exactly, without the CRLF or LF that belongs to
// the next boundary delimiter line (RFC 2046 §5.1.1). A header that runs
// into a delimiter or the end of the message gives an empty body where it
// ends. A container's body always covers its children's.
type Part struct {
	Path   string
	Parent int // index in Parts of the enclosing entity; -1 for Parts[0]
	Depth  int // 0 for Parts[0], parent's Depth + 1 otherwise

	// ContentType is the lower-case media type, "text/plain" when the
	// field is missing or invalid (RFC 2045 §5.2), "message/rfc822" when
	// missing in a multipart/digest (RFC 2046 §5.1.5). A multipart without
	// a usable boundary is "text/plain" too.
	ContentType string
	// Params holds the Content-Type parameters by lower-case name, RFC
	// 2231 and RFC 2047 decoded (boundary and charset as written), at
	// most maxParams (64) of them, values at most 1 KiB; nil when there
	// are none.
	Params map[string]string
	// Charset is the lower-case charset parameter, "" when none is given
	// (RFC 2046 §4.1.2 then means us-ascii; readers may sniff).
	Charset string
	// Encoding is the lower-case Content-Transfer-Encoding, "7bit" when
	// missing. For a multipart, whose encoding RFC 2045 §6.4 restricts
	// to identities, a declared base64 or quoted-printable is ignored and
	// Encoding is "7bit". Pass it to convert.NewDecoder.
	Encoding string
	// Disposition is "attachment", "inline" or "" (no field). Unknown
	// disposition types are "attachment" (RFC 2183 §2.8).
	Disposition string
	// FileName is the decoded file name: Content-Disposition filename
	// (RFC 2183 §2.3, RFC 2231, RFC 2047 in quotes), else the
	// Content-Type name parameter. It is valid UTF-8 without control
	// characters but may hold "/" or "\": sanitize before use as a path.
	FileName string
	// ContentID is the Content-ID as written (RFC 2045 §7), with brackets.
	ContentID string

	HeaderStart, BodyStart, BodyEnd int64
	// EncodedSize is BodyEnd-BodyStart.
	EncodedSize int64
	// DecodedSize is the exact length of convert.NewDecoder(Encoding,
	// body): see convert/decode.go for the rules. It equals EncodedSize for identity
	// encodings and for multiparts and expanded message/rfc822 parts.
	DecodedSize int64
	// IsAttachment: Content-Disposition attachment; or a file name on a
	// part that is neither text/* nor multipart/*; or a message/rfc822
	// (message/global) body part not marked inline. A part with a
	// Content-ID inside multipart/related (an inline image) is not an
	// attachment unless its disposition says so.
	IsAttachment bool
	// LineChars and LineEnd describe a base64 body written in lines of
	// equal length: every line but the last holds exactly LineChars
	// alphabet characters followed by a line ending of LineEnd bytes
	// (1 LF, 2 CRLF; 0 for a body of one line), the last line no more.
	// A reader can then seek to a decoded offset by arithmetic. Both are
	// 0 for other bodies and other encodings.
	LineChars, LineEnd int
}
