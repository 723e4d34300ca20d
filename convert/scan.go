package convert

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/davmail/davmail/mailbox"
)

// Default caps of ScanOptions.
const (
	// DefaultMaxDepth caps entity nesting. Real mail nests a few levels
	// (a forward of a forward of a signed message is about 6); 30 leaves
	// room for long forward chains and stops nesting bombs.
	DefaultMaxDepth = 30
	// DefaultMaxParts caps the entities recorded per message. Real mail
	// has a handful, mailing-list digests a few hundred.
	DefaultMaxParts = 1000
	// DefaultMaxHeaderBytes caps one entity's header. Postfix refuses
	// headers over 100 KiB (header_size_limit); 256 KiB leaves room for
	// long DKIM/ARC/Received chains of legacy mail already stored.
	DefaultMaxHeaderBytes = 256 << 10
	// DefaultMaxLineLength marks longer lines as a problem. RFC 5322
	// §2.1.1 allows 998 octets; legacy and binary mail exceeds that, but
	// not by 64 times unless something is wrong. Longer lines are still
	// read (in pieces: memory does not depend on it).
	DefaultMaxLineLength = 64 << 10
)

// maxEnvelopeText caps each decoded envelope string (Subject, From, To,
// Cc, MessageID). The index keeps an envelope for every message; 16 KiB
// holds a To: of some 300 addresses and bounds what one hostile header
// costs the index.
const maxEnvelopeText = 16 << 10

// ScanOptions caps the work of Scan. Zero or negative fields select the
// default; there is no "unlimited" setting, by design: the caps are what
// keeps the memory of a scan bounded whatever the message.
type ScanOptions struct {
	MaxDepth       int // deepest entity nesting (Part.Depth); default DefaultMaxDepth
	MaxParts       int // most entities recorded; default DefaultMaxParts
	MaxHeaderBytes int // most bytes in one entity's header; default DefaultMaxHeaderBytes
	MaxLineLength  int // longer lines are marked "line-too-long"; default DefaultMaxLineLength
}

func (o ScanOptions) withDefaults() ScanOptions {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	return o
}

// Problem markers found in Structure.Problems, in this order.
const (
	ProblemDepth          = "nesting-depth-exceeded" // an entity at MaxDepth was not expanded
	ProblemFinalBoundary  = "missing-final-boundary" // a multipart ended without its close delimiter
	ProblemHeaderTooLarge = "header-too-large"       // fields past MaxHeaderBytes were ignored
	ProblemLineTooLong    = "line-too-long"          // a line exceeded MaxLineLength
	ProblemTooManyParts   = "too-many-parts"         // entities past MaxParts were not recorded
	ProblemBadContentType = "bad-content-type"       // unparsable Content-Type, or multipart without usable boundary
	Problem8BitHeader     = "8bit-header"            // raw 8-bit bytes that are not UTF-8 (RFC 6532) in a header, read as ISO 8859-1
	ProblemNUL            = "nul-bytes"              // NUL in a header or in a non-binary body (RFC 2045 §2.7)
	ProblemBadHeaderLine  = "bad-header-line"        // a header line that is no field and no continuation
	ProblemBadBase64      = "bad-base64"             // base64 body with garbage or truncated: decoding stopped early
	ProblemBadTransferEnc = "bad-transfer-encoding"  // a multipart declared base64 or quoted-printable (RFC 2045 §6.4); ignored
	ProblemUnknownCharset = "unknown-charset"        // an encoded word in an unknown charset, kept as written
)

var problemNames = [...]string{
	ProblemDepth, ProblemFinalBoundary, ProblemHeaderTooLarge, ProblemLineTooLong,
	ProblemTooManyParts, ProblemBadContentType, Problem8BitHeader, ProblemNUL,
	ProblemBadHeaderLine, ProblemBadBase64, ProblemBadTransferEnc, ProblemUnknownCharset,
}

type problem uint

const (
	pDepth problem = iota
	pFinalBoundary
	pHeaderTooLarge
	pLineTooLong
	pTooManyParts
	pBadContentType
	p8BitHeader
	pNUL
	pBadHeaderLine
	pBadBase64
	pBadTransferEnc
	pUnknownCharset
)

// Structure is what the index keeps of a message, learnt in one pass.
type Structure struct {
	Envelope mailbox.Envelope
	// Size is the number of bytes read from the message.
	Size int64
	// Parts is the MIME tree flattened in document order. Parts[0] is the
	// message itself; it is always there, even for an empty file.
	Parts []Part
	// Problems lists markers (the Problem… constants) of what was wrong
	// with the message or beyond the caps, each at most once.
	Problems []string
}

// Part is one entity of a message; the type lives in package mailbox so
// that stores can keep it in their index (see mailbox.Part for the
// numbering and offset rules).
type Part = mailbox.Part

// entity modes of the scanner.
const (
	modeHeader    = iota // reading the header of cur
	modeBody             // reading the body of leaf cur
	modeContainer        // in the preamble or epilogue of the innermost frame
	modeSkip             // in an entity past MaxParts: ignored
)

// frame is an open container: a multipart or an expanded message/rfc822.
type frame struct {
	part         int // index in Parts
	multipart    bool
	epilogue     bool // close delimiter seen
	nchild       int
	bStart, bEnd int   // boundary in scanner.bounds
	childEnd     int64 // largest BodyEnd of the children so far
}

// header fields the scanner keeps.
const (
	fContentType = iota
	fCTE
	fDisposition
	fContentID
	fSubject // envelope fields: only for Parts[0]
	fFrom
	fTo
	fCc
	fDate
	fMessageID
	nFields
)

type span struct {
	start, end int
	set        bool
}

type scanner struct {
	opt      ScanOptions
	st       *Structure
	problems uint32
	// envOnly: only the envelope is wanted (ScanEnvelope): parts get no
	// Path, Params, FileName or ContentID strings.
	envOnly bool

	cur    int // entity in modeHeader or modeBody, else -1
	mode   int
	frames []frame
	bounds []byte // boundaries of the frames, concatenated
	nbound int    // multipart frames open

	lineLen  int   // length of the current line so far
	prevTerm int64 // offset of the line terminator of the last complete line

	// header of cur
	hdrBytes int
	hdrFull  bool
	field    int // field being collected, -1 none
	hdr      []byte
	fields   [nFields]span

	// body of cur
	binary   bool // Content-Transfer-Encoding binary: NUL allowed
	decoding bool
	pendTerm int8 // terminator of the last body line not yet fed: 0, 1 LF, 2 CRLF
	decoded  int64
	dec      *xferDecoder
	decBuf   []byte
	lines    b64Lines // layout of a base64 body, for seeking (seek.go)

	tb     textBuf
	pp     paramParser
	envBuf []byte
	strBuf []byte

	framesArr [4]frame // room for typical nesting (mixed > alternative > related) without allocating
	lr        lineReader
}

// Sizes of the scratch buffers carved out of one allocation per scan.
// They cover typical messages; a buffer that needs more grows on its own
// (bounded by the caps), without disturbing its neighbours.
const (
	hdrScratch   = 1024 // stored header fields of one entity
	textScratch  = 512  // each header text decoding buffer
	boundScratch = 256  // boundaries of open multiparts
	arenaSize    = readBufSize + hdrScratch + 6*textScratch + boundScratch
)

// structAlloc lets Scan allocate a Structure and its first parts at once.
type structAlloc struct {
	st    Structure
	parts [4]Part // most messages have at most 4 entities
}

// Scan reads a message from r and returns its structure. It reads r to
// the end exactly once, with fixed buffers: memory does not depend on the
// message size, only on the caps of opts. It never fails on malformed
// input: what cannot be parsed is reported in Structure.Problems, and
// whatever is beyond a cap is still read (for Size and offsets). The
// error is only for a failure of r; the Structure is then nil.
func Scan(r io.Reader, opts ScanOptions) (*Structure, error) {
	s := &scanner{opt: opts.withDefaults()}
	return s.run(r)
}

// arenas recycles the scratch memory of scans: the indexer scans one
// message after another, and a fresh 12.5 KiB per message was the
// largest share of its allocations. Nothing a scan returns points into
// its arena (every string is copied out), so it is returned at the end.
var arenas = sync.Pool{New: func() any { return new([arenaSize]byte) }}

func (s *scanner) run(r io.Reader) (*Structure, error) {
	ap := arenas.Get().(*[arenaSize]byte)
	defer arenas.Put(ap)
	arena := ap[:]
	carve := func(n int) []byte {
		b := arena[:0:n]
		arena = arena[n:]
		return b
	}
	s.lr.reset(r, carve(readBufSize)[:readBufSize])
	s.hdr = carve(hdrScratch)
	s.bounds = carve(boundScratch)
	s.envBuf = carve(textScratch)
	s.strBuf = carve(textScratch)
	s.tb.raw = carve(textScratch)
	s.tb.word = carve(textScratch)
	s.tb.conv = carve(textScratch)
	s.pp.scratch = carve(textScratch)
	a := &structAlloc{}
	s.st = &a.st
	s.st.Parts = a.parts[:0]
	s.frames = s.framesArr[:0]
	s.startEntity(-1, "", 0, 0)
	for {
		frag, off, first, more, err := s.lr.next()
		if frag == nil {
			if err != io.EOF {
				return nil, err
			}
			break
		}
		s.line(frag, off, first, more)
	}
	size := s.lr.off
	s.finishAll(size)
	st := s.st
	st.Size = size
	st.Envelope.ContentType = st.Parts[0].ContentType
	for i := range st.Parts {
		if st.Parts[i].IsAttachment {
			st.Envelope.HasAttachments = true
			break
		}
	}
	if s.tb.unknownCharset {
		s.problem(pUnknownCharset)
	}
	if s.problems != 0 {
		for i, name := range problemNames {
			if s.problems&(1<<i) != 0 {
				st.Problems = append(st.Problems, name)
			}
		}
	}
	return st, nil
}

func (s *scanner) problem(p problem) { s.problems |= 1 << p }

func (s *scanner) line(frag []byte, off int64, first, more bool) {
	if first {
		s.lineLen = 0
	}
	s.lineLen += len(frag)
	if s.lineLen > s.opt.MaxLineLength {
		s.problem(pLineTooLong)
	}
	end := off + int64(len(frag))
	if first && !more && s.nbound > 0 && len(frag) >= 3 && frag[0] == '-' && frag[1] == '-' {
		if k, closing := s.matchBoundary(frag); k >= 0 {
			s.delimiter(k, closing, off, end)
			s.noteLineEnd(frag, end)
			return
		}
	}
	switch s.mode {
	case modeHeader:
		s.headerLine(frag, off, first, more)
	case modeBody:
		s.bodyLine(frag, first, more)
	}
	s.noteLineEnd(frag, end)
}

// noteLineEnd records where the terminator of a complete line starts: it
// belongs to a boundary delimiter if the next line is one.
func (s *scanner) noteLineEnd(frag []byte, end int64) {
	n := len(frag)
	if n == 0 || frag[n-1] != '\n' {
		return
	}
	if n >= 2 && frag[n-2] == '\r' {
		s.prevTerm = end - 2
	} else {
		s.prevTerm = end - 1
	}
}

// matchBoundary returns the innermost open multipart frame whose boundary
// delimiter line frag is, or -1. A multipart in its epilogue no longer
// matches its own boundary (its epilogue is ignored, RFC 2046 §5.1.1),
// only the boundaries of the multiparts around it.
func (s *scanner) matchBoundary(frag []byte) (k int, closing bool) {
	for k = len(s.frames) - 1; k >= 0; k-- {
		f := &s.frames[k]
		if !f.multipart || f.epilogue {
			continue
		}
		if ok, c := isDelimiter(frag, s.bounds[f.bStart:f.bEnd]); ok {
			return k, c
		}
	}
	return -1, false
}

// isDelimiter reports whether line is a delimiter line of boundary b
// (RFC 2046 §5.1.1: "--" boundary ["--"] transport-padding CRLF); an LF
// alone or the end of the stream may stand for the CRLF.
func isDelimiter(line, b []byte) (ok, closing bool) {
	if len(line) < 2+len(b) || !bytes.Equal(line[2:2+len(b)], b) {
		return false, false
	}
	rest := line[2+len(b):]
	if len(rest) >= 2 && rest[0] == '-' && rest[1] == '-' {
		closing = true
		rest = rest[2:]
	}
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	switch string(rest) {
	case "", "\n", "\r\n", "\r":
		return true, closing
	}
	return false, false
}

// delimiter handles a boundary delimiter line of frame k at [off, end).
func (s *scanner) delimiter(k int, closing bool, off, end int64) {
	endOff := s.prevTerm // the CRLF before the delimiter is part of it
	if s.mode == modeHeader || s.mode == modeBody {
		s.finishEntity(endOff, off, false)
	}
	for len(s.frames)-1 > k {
		s.popFrame(endOff)
	}
	f := &s.frames[k]
	if closing {
		f.epilogue = true
		s.mode, s.cur = modeContainer, -1
		return
	}
	f.nchild++
	if len(s.st.Parts) >= s.opt.MaxParts {
		s.problem(pTooManyParts)
		s.mode, s.cur = modeSkip, -1
		return
	}
	parent := &s.st.Parts[f.part]
	path := ""
	if !s.envOnly {
		path = childPath(parent.Path, f.nchild)
	}
	s.startEntity(f.part, path, parent.Depth+1, end)
}

func childPath(parent string, n int) string {
	if parent == "" {
		return strconv.Itoa(n)
	}
	return parent + "." + strconv.Itoa(n)
}

func (s *scanner) startEntity(parent int, path string, depth int, hdrStart int64) {
	s.st.Parts = append(s.st.Parts, Part{
		Path: path, Parent: parent, Depth: depth,
		HeaderStart: hdrStart, BodyStart: hdrStart, BodyEnd: hdrStart,
	})
	s.cur = len(s.st.Parts) - 1
	s.mode = modeHeader
	s.hdrBytes, s.hdrFull, s.field = 0, false, -1
	s.hdr = s.hdr[:0]
	s.fields = [nFields]span{}
}

func (s *scanner) pushFrame(part int, multipart bool, boundary []byte) {
	f := frame{part: part, multipart: multipart, bStart: len(s.bounds)}
	s.bounds = append(s.bounds, boundary...)
	f.bEnd = len(s.bounds)
	s.frames = append(s.frames, f)
	if multipart {
		s.nbound++
	}
}

func (s *scanner) popFrame(endOff int64) {
	f := s.frames[len(s.frames)-1]
	if f.multipart {
		if !f.epilogue {
			s.problem(pFinalBoundary)
		}
		s.nbound--
	}
	p := &s.st.Parts[f.part]
	// A child never ends after its container; it may end after endOff
	// when the line break that ends its header also starts the
	// delimiter: its empty body is then where its header ends.
	p.BodyEnd = max(p.BodyStart, endOff, f.childEnd)
	p.EncodedSize = p.BodyEnd - p.BodyStart
	p.DecodedSize = p.EncodedSize
	s.bounds = s.bounds[:f.bStart]
	s.frames = s.frames[:len(s.frames)-1]
	s.childEnded(p.BodyEnd)
}

// childEnded records the end of a child of the innermost frame.
func (s *scanner) childEnded(end int64) {
	if n := len(s.frames); n > 0 && end > s.frames[n-1].childEnd {
		s.frames[n-1].childEnd = end
	}
}

// finishEntity ends cur (in modeHeader or modeBody) with its body ending
// at endOff; lineOff is where the line that ends it starts (the end of
// the header when the header never ended).
func (s *scanner) finishEntity(endOff, lineOff int64, atEOF bool) {
	p := &s.st.Parts[s.cur]
	if s.mode == modeHeader {
		p.BodyStart = lineOff
		s.applyHeader(false)
		p = &s.st.Parts[s.cur]
	}
	p.BodyEnd = max(p.BodyStart, endOff)
	p.EncodedSize = p.BodyEnd - p.BodyStart
	p.DecodedSize = p.EncodedSize
	s.childEnded(p.BodyEnd)
	if s.mode == modeBody && s.decoding {
		if atEOF {
			s.feedTerm()
		}
		s.pendTerm = 0
		s.decBuf = s.dec.finish(s.decBuf[:0])
		s.decoded += int64(len(s.decBuf))
		p.DecodedSize = s.decoded
		if s.dec.kind == xferBase64 && s.dec.bad {
			s.problem(pBadBase64)
		}
		if s.lines.track {
			p.LineChars, p.LineEnd = s.lines.result(s.dec.bad)
		}
		s.decoding = false
	}
	s.mode, s.cur = modeContainer, -1
}

func (s *scanner) finishAll(size int64) {
	if s.mode == modeHeader || s.mode == modeBody {
		s.finishEntity(size, size, true)
	}
	for len(s.frames) > 0 {
		s.popFrame(size)
	}
}

func (s *scanner) headerLine(frag []byte, off int64, first, more bool) {
	s.hdrBytes += len(frag)
	if s.hdrBytes > s.opt.MaxHeaderBytes && !s.hdrFull {
		s.hdrFull = true
		s.field = -1
		s.problem(pHeaderTooLarge)
	}
	content := frag
	eol := false
	if n := len(content); !more && n > 0 && content[n-1] == '\n' {
		eol = true
		content = content[:n-1]
		if n >= 2 && content[n-2] == '\r' {
			content = content[:n-2]
		}
	}
	if hasHigh(content) && !utf8.Valid(content) {
		s.problem(p8BitHeader)
	}
	if bytes.IndexByte(content, 0) >= 0 {
		s.problem(pNUL)
	}
	if !first {
		if s.field >= 0 {
			s.appendField(content)
		}
		return
	}
	if eol && isBlankLine(content) {
		s.endHeader(off + int64(len(frag)))
		return
	}
	if content[0] == ' ' || content[0] == '\t' {
		// RFC 5322 §2.2.3: unfolding removes the line break only.
		if s.field >= 0 {
			s.appendField(content)
		}
		return
	}
	s.field = -1
	colon := bytes.IndexByte(content, ':')
	if colon < 0 {
		s.problem(pBadHeaderLine)
		return
	}
	name := content[:colon]
	for len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
		name = name[:len(name)-1] // RFC 5322 §4.5.3 obs: WSP before ":"
	}
	if !validFieldName(name) {
		s.problem(pBadHeaderLine)
		return
	}
	if s.hdrFull {
		return
	}
	id := lookupField(name, s.cur == 0)
	if id < 0 || s.fields[id].set {
		return // not needed, or a repeated field: the first one wins
	}
	s.fields[id] = span{start: len(s.hdr), end: len(s.hdr), set: true}
	s.field = id
	s.appendField(content[colon+1:])
}

func (s *scanner) appendField(b []byte) {
	if s.hdrFull {
		return
	}
	s.hdr = append(s.hdr, b...)
	s.fields[s.field].end = len(s.hdr)
}

func (s *scanner) fieldValue(id int) ([]byte, bool) {
	f := s.fields[id]
	if !f.set {
		return nil, false
	}
	return s.hdr[f.start:f.end], true
}

// isBlankLine: the empty line that ends a header. Lines of CRs only are
// taken as empty too: files converted twice end lines with CR CR LF.
func isBlankLine(content []byte) bool {
	for _, c := range content {
		if c != '\r' {
			return false
		}
	}
	return true
}

// validFieldName: RFC 5322 §3.6.8 ftext, printable US-ASCII except ":".
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func lookupField(name []byte, top bool) int {
	eq := func(s string) bool { return len(name) == len(s) && asciiEqualFold(name, s) }
	switch len(name) {
	case 2:
		if top && eq("to") {
			return fTo
		}
		if top && eq("cc") {
			return fCc
		}
	case 4:
		if top && eq("from") {
			return fFrom
		}
		if top && eq("date") {
			return fDate
		}
	case 7:
		if top && eq("subject") {
			return fSubject
		}
	case 10:
		if eq("content-id") {
			return fContentID
		}
		if top && eq("message-id") {
			return fMessageID
		}
	case 12:
		if eq("content-type") {
			return fContentType
		}
	case 19:
		if eq("content-disposition") {
			return fDisposition
		}
	case 25:
		if eq("content-transfer-encoding") {
			return fCTE
		}
	}
	return -1
}

// asciiEqualFold compares b with lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// endHeader handles the empty line that ends cur's header; the body
// starts at bodyStart.
func (s *scanner) endHeader(bodyStart int64) {
	e := s.cur
	s.st.Parts[e].BodyStart = bodyStart
	kind, boundary := s.applyHeader(true)
	switch kind {
	case containerMultipart:
		s.pushFrame(e, true, boundary)
		s.mode, s.cur = modeContainer, -1
	case containerMessage:
		// The encapsulated message is a message entity: see Part.Path.
		p := &s.st.Parts[e]
		path := p.Path
		if !s.envOnly && (e == 0 || !s.frames[len(s.frames)-1].multipart) {
			path = childPath(path, 1)
		}
		depth := p.Depth + 1
		s.pushFrame(e, false, nil)
		s.startEntity(e, path, depth, bodyStart)
	default:
		s.mode = modeBody
		s.pendTerm = 0
		s.decoded = 0
		k := xferKindOf(s.st.Parts[e].Encoding)
		s.decoding = k != xferIdentity
		if s.decoding {
			if s.dec == nil {
				s.dec = new(xferDecoder)
				s.decBuf = make([]byte, 0, readBufSize+qpMaxWhitespace+8)
			}
			s.dec.reset(k)
			s.lines = b64Lines{track: k == xferBase64}
		}
	}
}

func (s *scanner) bodyLine(frag []byte, first, more bool) {
	if !s.binary && bytes.IndexByte(frag, 0) >= 0 {
		s.problem(pNUL)
	}
	if !s.decoding {
		return
	}
	if first {
		s.feedTerm()
	}
	content := frag
	if n := len(frag); !more && n > 0 && frag[n-1] == '\n' {
		if n >= 2 && frag[n-2] == '\r' {
			s.pendTerm, content = 2, frag[:n-2]
		} else {
			s.pendTerm, content = 1, frag[:n-1]
		}
	}
	s.feed(content)
	if s.lines.track {
		s.lines.add(content, first, more, int(s.pendTerm))
	}
}

func (s *scanner) feedTerm() {
	switch s.pendTerm {
	case 1:
		s.feed([]byte{'\n'})
	case 2:
		s.feed([]byte{'\r', '\n'})
	}
	s.pendTerm = 0
}

func (s *scanner) feed(b []byte) {
	if len(b) == 0 {
		return
	}
	s.decBuf = s.dec.decode(s.decBuf[:0], b)
	s.decoded += int64(len(s.decBuf))
}
