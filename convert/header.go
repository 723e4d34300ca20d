package convert

import (
	"strings"
)

// Interpretation of an entity's header once it is read.

// container kinds returned by applyHeader.
const (
	leaf = iota
	containerMultipart
	containerMessage
)

// maxTokenField caps Content-Transfer-Encoding and charset tokens; real
// ones are at most 20 characters.
const maxTokenField = 64

// applyHeader fills cur's fields from its header and, for Parts[0], the
// envelope. With hasBody (the header ended with an empty line) it tells
// whether cur is to be expanded as a container, and the boundary of a
// multipart (valid until the next header is read).
func (s *scanner) applyHeader(hasBody bool) (kind int, boundary []byte) {
	e := s.cur
	st := s.st
	p := &st.Parts[e]
	parentType := ""
	if p.Parent >= 0 {
		parentType = st.Parts[p.Parent].ContentType
	}

	// Content-Type (RFC 2045 §5).
	s.strBuf = s.strBuf[:0]
	pp := &s.pp
	ct, haveCT := s.fieldValue(fContentType)
	mediaOK := false
	if haveCT {
		pp.parse(ct, true)
		mediaOK = pp.typeOK
		if !mediaOK {
			s.problem(pBadContentType)
		}
	}
	var name []byte // Content-Type name parameter, decoded
	if mediaOK {
		p.ContentType = internType(pp.typ)
		if strings.HasPrefix(p.ContentType, "multipart/") {
			b, ok := pp.raw("boundary")
			if !ok || len(b) == 0 || len(b) > maxBoundary {
				s.problem(pBadContentType)
				mediaOK = false
			} else {
				boundary = b
			}
		}
	}
	if mediaOK {
		if cs, ok := pp.raw("charset"); ok {
			// A charset name is a token (RFC 2045 §5.1, RFC 2978 §2.3).
			cs = trimSpace(cs)
			p.Charset = internCharset(asciiLower(clip(cs[:token(cs, 0)], maxTokenField)))
		}
		if !s.envOnly {
			s.fillParams(p)
		}
		if pp.has("name") {
			s.strBuf, _ = pp.value(&s.tb, s.strBuf[:0], "name")
			name = s.strBuf
		}
	} else {
		boundary = nil
		if !haveCT && parentType == "multipart/digest" {
			p.ContentType = "message/rfc822"
		} else {
			p.ContentType = "text/plain"
		}
	}

	// Content-Transfer-Encoding (RFC 2045 §6.1).
	p.Encoding = "7bit"
	if v, ok := s.fieldValue(fCTE); ok {
		v = trimSpace(v)
		v = v[:token(v, 0)]
		if len(v) > 0 {
			p.Encoding = internEncoding(asciiLower(clip(v, maxTokenField)))
		}
	}
	s.binary = p.Encoding == "binary"

	// Content-Disposition (RFC 2183). The file name and Content-ID
	// strings are made only for Scan; ScanEnvelope needs to know whether
	// they exist.
	var file []byte
	if v, ok := s.fieldValue(fDisposition); ok {
		pp.parse(v, false)
		switch string(pp.typ) {
		case "inline":
			p.Disposition = "inline"
		case "":
			p.Disposition = ""
		default:
			p.Disposition = "attachment" // RFC 2183 §2.8
		}
		if pp.has("filename") {
			mark := len(s.strBuf)
			s.strBuf, _ = pp.value(&s.tb, s.strBuf, "filename")
			file = s.strBuf[mark:]
		}
	}
	if len(file) == 0 {
		file = name
	}
	hasFile := len(file) > 0
	if hasFile && !s.envOnly {
		p.FileName = string(file)
	}

	// Content-ID (RFC 2045 §7).
	hasCID := false
	if v, ok := s.fieldValue(fContentID); ok {
		s.tb.conv = appendRaw8(s.tb.conv[:0], trimSpace(v))
		s.strBuf = appendSingleLine(s.strBuf[:0], s.tb.conv, maxParamValue)
		hasCID = len(s.strBuf) > 0
		if !s.envOnly {
			p.ContentID = string(s.strBuf)
		}
	}

	if e == 0 {
		s.fillEnvelope()
	}

	// Container or leaf.
	isMultipart := boundary != nil
	isMessage := p.ContentType == "message/rfc822" || p.ContentType == "message/global"
	if hasBody {
		switch {
		case isMultipart && p.Depth >= s.opt.MaxDepth, isMessage && p.Depth >= s.opt.MaxDepth:
			s.problem(pDepth)
		case isMultipart:
			kind = containerMultipart
			if xferKindOf(p.Encoding) != xferIdentity {
				s.problem(pBadTransferEnc)
				p.Encoding = "7bit"
			}
		case isMessage && xferKindOf(p.Encoding) != xferIdentity:
			// An encoded message is served as it is, not expanded.
		case isMessage && len(st.Parts) >= s.opt.MaxParts:
			s.problem(pTooManyParts)
		case isMessage:
			kind = containerMessage
		}
	}

	// Attachment or not.
	switch {
	case strings.HasPrefix(p.ContentType, "multipart/"):
	case p.Disposition == "attachment":
		p.IsAttachment = true
	case parentType == "multipart/related" && hasCID:
		// An inline image of an HTML body (RFC 2387).
	case isMessage && strings.HasPrefix(parentType, "multipart/") && p.Disposition != "inline":
		p.IsAttachment = true
	case hasFile && !strings.HasPrefix(p.ContentType, "text/"):
		p.IsAttachment = true
	}
	return kind, boundary
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// fillParams sets p.Params from the parsed Content-Type, with one string
// allocation for all values.
func (s *scanner) fillParams(p *Part) {
	pp := &s.pp
	if len(pp.params) == 0 {
		return
	}
	type kv struct {
		name       string
		start, end int
	}
	var kvs [maxParams]kv
	nkv := 0
	buf := s.envBuf[:0] // envBuf is free here: the envelope is filled later
	for i := range pp.params {
		name := pp.params[i].name
		dup := false
		for j := 0; j < i; j++ {
			if string(pp.params[j].name) == string(name) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		start := len(buf)
		key := internParam(name)
		switch key {
		case "boundary", "charset":
			v, _ := pp.raw(key)
			buf = appendSingleLine(buf, v, maxParamValue)
		default:
			buf, _ = pp.value(&s.tb, buf, key)
		}
		kvs[nkv] = kv{key, start, len(buf)}
		nkv++
	}
	s.envBuf = buf
	all := string(buf)
	p.Params = make(map[string]string, nkv)
	for _, x := range kvs[:nkv] {
		p.Params[x.name] = all[x.start:x.end]
	}
}

// fillEnvelope decodes the envelope fields of Parts[0], with one string
// allocation for all of them.
func (s *scanner) fillEnvelope() {
	env := &s.st.Envelope
	buf := s.envBuf[:0]
	var offs [6]int
	for i, f := range [...]int{fSubject, fFrom, fTo, fCc} {
		if v, ok := s.fieldValue(f); ok {
			buf = s.tb.decodeText(buf, v, maxEnvelopeText)
		}
		offs[i+1] = len(buf)
	}
	if v, ok := s.fieldValue(fMessageID); ok {
		s.tb.conv = appendRaw8(s.tb.conv[:0], trimSpace(v))
		buf = appendSingleLine(buf, s.tb.conv, maxEnvelopeText)
	}
	offs[5] = len(buf)
	s.envBuf = buf
	if len(buf) > 0 {
		all := string(buf)
		env.Subject = all[offs[0]:offs[1]]
		env.From = all[offs[1]:offs[2]]
		env.To = all[offs[2]:offs[3]]
		env.Cc = all[offs[3]:offs[4]]
		env.MessageID = all[offs[4]:offs[5]]
	}
	if v, ok := s.fieldValue(fDate); ok {
		if t, ok := parseDate(v); ok {
			env.Date = t
		}
	}
}

// The intern functions return constants for common values, so that
// typical parts allocate no strings for them.

func internType(b []byte) string {
	switch string(b) {
	case "text/plain":
		return "text/plain"
	case "text/html":
		return "text/html"
	case "multipart/mixed":
		return "multipart/mixed"
	case "multipart/alternative":
		return "multipart/alternative"
	case "multipart/related":
		return "multipart/related"
	case "multipart/signed":
		return "multipart/signed"
	case "multipart/report":
		return "multipart/report"
	case "multipart/digest":
		return "multipart/digest"
	case "message/rfc822":
		return "message/rfc822"
	case "message/delivery-status":
		return "message/delivery-status"
	case "application/octet-stream":
		return "application/octet-stream"
	case "application/pdf":
		return "application/pdf"
	case "application/zip":
		return "application/zip"
	case "application/pkcs7-signature":
		return "application/pkcs7-signature"
	case "image/png":
		return "image/png"
	case "image/jpeg":
		return "image/jpeg"
	case "image/gif":
		return "image/gif"
	case "text/calendar":
		return "text/calendar"
	}
	return string(b)
}

func internCharset(b []byte) string {
	switch string(b) {
	case "utf-8":
		return "utf-8"
	case "us-ascii":
		return "us-ascii"
	case "iso-8859-1":
		return "iso-8859-1"
	case "iso-8859-15":
		return "iso-8859-15"
	case "windows-1252":
		return "windows-1252"
	case "koi8-r":
		return "koi8-r"
	case "iso-2022-jp":
		return "iso-2022-jp"
	case "":
		return ""
	}
	return string(b)
}

func internEncoding(b []byte) string {
	switch string(b) {
	case "7bit":
		return "7bit"
	case "8bit":
		return "8bit"
	case "binary":
		return "binary"
	case "base64":
		return "base64"
	case "quoted-printable":
		return "quoted-printable"
	}
	return string(b)
}

func internParam(b []byte) string {
	switch string(b) {
	case "charset":
		return "charset"
	case "name":
		return "name"
	case "boundary":
		return "boundary"
	case "format":
		return "format"
	case "delsp":
		return "delsp"
	case "type":
		return "type"
	case "start":
		return "start"
	case "method":
		return "method"
	case "reply-type":
		return "reply-type"
	case "report-type":
		return "report-type"
	case "protocol":
		return "protocol"
	case "micalg":
		return "micalg"
	}
	return string(b)
}
