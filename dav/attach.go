package dav

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// Attachments as resources (issue 4; exchange-webdav.md §3.2 X-MS-ENUMATTS
// and "GET (attachment)"). An attachment lives at
// <message URL>/<attachment name>, the href X-MS-ENUMATTS returns; the
// message itself stays a plain file, so generic clients copy it byte for
// byte. With Config.AttachmentFolders, every message with attachments
// also shows a virtual collection <message name>.attachments/ beside it,
// for clients that can only browse.
//
// Everything is answered from the index (the message's structure); the
// bytes come from convert.PartReader, which decodes with fixed buffers and
// seeks for Range requests.

// attachmentsSuffix names the virtual collection of a message's attachments.
const attachmentsSuffix = ".attachments"

// attTarget is an attachment, or the attachment collection of a message,
// named by a URL.
type attTarget struct {
	msg  mailbox.Message
	st   *mailbox.Structure
	atts []convert.Attachment
	a    *convert.Attachment // nil for the collection
	// base is the escaped path of what the attachments hang off: the
	// message URL, or the virtual collection's.
	base string
}

func (t *attTarget) part() *mailbox.Part { return &t.st.Parts[t.a.Part] }

// resolveAttachment is resolve's last resort for a URL whose parent is no
// folder: <folder>/<message>/<name>, or with AttachmentFolders
// <folder>/<message>.attachments[/<name>]. It leaves the target
// non-existent when nothing matches.
func (h *Handler) resolveAttachment(ctx context.Context, rq *request, segs []string) error {
	n := len(segs)
	try := func(folderSegs []string, msgName, attName string, coll bool) (bool, error) {
		if len(folderSegs) == 0 {
			return false, nil
		}
		m, err := rq.mb.Stat(ctx, urlToFolder(folderSegs), msgName)
		if errors.Is(err, mailbox.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return true, h.setAttTarget(ctx, rq, m, attName, coll)
	}
	if h.cfg.AttachmentFolders {
		last := segs[n-1]
		if strings.HasSuffix(last, attachmentsSuffix) && n >= 2 {
			if ok, err := try(segs[:n-1], strings.TrimSuffix(last, attachmentsSuffix), "", true); ok || err != nil {
				return err
			}
		}
		if parent := segs[n-2]; n >= 3 && strings.HasSuffix(parent, attachmentsSuffix) {
			if ok, err := try(segs[:n-2], strings.TrimSuffix(parent, attachmentsSuffix), segs[n-1], true); ok || err != nil {
				return err
			}
		}
	}
	if n >= 3 {
		_, err := try(segs[:n-2], segs[n-2], segs[n-1], false)
		return err
	}
	return nil
}

// setAttTarget makes the target attachment attName of m ("" for the
// collection); an unknown name leaves the target non-existent.
func (h *Handler) setAttTarget(ctx context.Context, rq *request, m mailbox.Message, attName string, coll bool) error {
	st, err := rq.mb.Structure(ctx, m.Folder, m.Name)
	if err != nil {
		return err
	}
	at := &attTarget{msg: m, st: st, atts: convert.Attachments(st.Parts)}
	base := string(appendEscaped(nil, rq.user))
	for _, seg := range strings.Split(folderURLPath(m.Folder), "/") {
		base += "/" + string(appendEscaped(nil, seg))
	}
	name := m.Name
	if coll {
		name += attachmentsSuffix
	}
	at.base = h.cfg.Prefix + base + "/" + string(appendEscaped(nil, name))
	t := &rq.target
	t.parent, t.parentExists, t.name = m.Folder, true, name
	if attName == "" {
		t.att, t.exists = at, true
		return nil
	}
	a, ok := convert.Find(at.atts, attName) // the list just made: not Attachments again
	if !ok {
		// Nothing can be created below a message: writes here get 409.
		t.name, t.parentExists = attName, false
		return nil
	}
	at.a = &a
	t.att, t.exists = at, true
	return nil
}

// serveAttachment answers the methods that make sense on an attachment:
// it is a read-only view of a part of its message.
func (h *Handler) serveAttachment(w http.ResponseWriter, r *http.Request, rq *request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if rq.target.att.a == nil {
			// The collection: a short note, as for a folder.
			body := "This collection lists the attachments of " + rq.target.att.msg.Name + "; browse it with a WebDAV client.\n"
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			if r.Method != http.MethodHead {
				w.Write([]byte(body))
			}
			return nil
		}
		return h.getAttachment(w, r, rq)
	case "PROPFIND", "X-MS-ENUMATTS":
		return h.propfindAttachments(w, r, rq)
	}
	w.Header().Set("Allow", "OPTIONS, GET, HEAD, PROPFIND")
	return errorf(http.StatusMethodNotAllowed, "attachments are read-only views of their message; to change one, replace the message")
}

// attRefusal says why an attachment of decoded size n is not served, or
// returns nil. A legacy message over max-message-size keeps every part
// within the limits readable: only the part's own size counts.
func (h *Handler) attRefusal(r *http.Request, n int64) *limits.Error {
	if n > h.cfg.MaxMessageSize {
		return limits.ResponseTooLarge("max-message-size", h.cfg.MaxMessageSize, n)
	}
	if n > h.cfg.MaxResponseSize && !(h.cfg.RangeOverResponseCap && rangeWithin(r, n, h.cfg.MaxResponseSize)) {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, n)
	}
	return nil
}

// rangeWithin reports whether r asks for a single byte range (RFC 9110
// §14.2) of a body of size n no longer than limit.
func rangeWithin(r *http.Request, n, limit int64) bool {
	spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return false
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return false
	}
	var start, end int64
	switch {
	case first == "":
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k <= 0 {
			return false
		}
		start, end = max(n-k, 0), n-1
	default:
		s, err := strconv.ParseInt(first, 10, 64)
		if err != nil || s < 0 || s >= n {
			return false
		}
		start, end = s, n-1
		if last != "" {
			e, err := strconv.ParseInt(last, 10, 64)
			if err != nil || e < s {
				return false
			}
			end = min(e, n-1)
		}
	}
	return end-start+1 <= limit
}

func (h *Handler) getAttachment(w http.ResponseWriter, r *http.Request, rq *request) error {
	at := rq.target.att
	p := at.part()
	if err := h.attRefusal(r, p.DecodedSize); err != nil {
		return err
	}
	if strings.Count(r.Header.Get("Range"), ",") >= maxRanges {
		return errorf(http.StatusRequestedRangeNotSatisfiable, "at most %d ranges per request", maxRanges)
	}
	c, err := rq.mb.Open(r.Context(), at.msg.Folder, at.msg.Name)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.Size() != at.msg.Size {
		return errorf(http.StatusConflict, "the message changed while it was being read; try again")
	}
	hd := w.Header()
	hd.Set("Content-Type", attContentType(p))
	hd.Set("Content-Disposition", contentDisposition(at.a.Name, at.a.Inline))
	hd.Set("ETag", attETag(&at.msg, at.a.Part, p.DecodedSize))
	hd.Set("X-Content-Type-Options", "nosniff")
	// An attachment is the sender's content: never let a browser run it
	// in the gateway's origin.
	hd.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	reqlog.From(r.Context()).Items = 1
	// pipeWriter: decoding overlaps the socket writes.
	http.ServeContent(pipeWriter{w, h.bufs}, r, "", at.msg.Modified, convert.NewPartReader(c, p))
	return nil
}

// attContentType is the part's media type, with its charset for text.
func attContentType(p *mailbox.Part) string {
	ct := p.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if strings.HasPrefix(ct, "text/") && p.Charset != "" {
		ct += "; charset=" + p.Charset
	}
	return ct
}

// attETag is strong: the message's ID changes with its content, and the
// part index and size pin the part.
func attETag(m *mailbox.Message, part int, size int64) string {
	return `"` + strconv.FormatUint(m.ID, 36) + "." + strconv.Itoa(part) + "-" + strconv.FormatInt(size, 36) + `"`
}

// contentDisposition writes RFC 6266 §4.1: an ASCII fallback filename
// and the exact name as RFC 8187 filename*.
func contentDisposition(name string, inline bool) string {
	kind := "attachment"
	if inline {
		kind = "inline"
	}
	fallback := make([]byte, 0, len(name))
	ascii := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 0x80:
			ascii = false
			if i == 0 || name[i-1] < 0x80 {
				fallback = append(fallback, '_')
			}
			for i+1 < len(name) && name[i+1] >= 0x80 && name[i+1] < 0xC0 {
				i++ // continuation bytes of the same rune
			}
		case c == '"' || c == '\\' || c < 0x20 || c == 0x7f:
			fallback = append(fallback, '_')
		default:
			fallback = append(fallback, c)
		}
	}
	s := kind + `; filename="` + string(fallback) + `"`
	if !ascii || string(fallback) != name {
		s += "; filename*=UTF-8''" + rfc8187Escape(name)
	}
	return s
}

// rfc8187Escape percent-encodes all but attr-char (RFC 8187 §3.2.1).
func rfc8187Escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// propfindAttachments answers PROPFIND on an attachment or on the
// collection of a message's attachments, and X-MS-ENUMATTS on a message
// (one response per attachment, SDK "Enumerating Message Attachments").
func (h *Handler) propfindAttachments(w http.ResponseWriter, r *http.Request, rq *request) error {
	at := rq.target.att
	depth, noroot, err := parseDepth(r, 1)
	if err != nil {
		return err
	}
	if r.Method == "X-MS-ENUMATTS" {
		depth, noroot = 1, true
	}
	req, err := h.parsePropfind(r.Body)
	if err != nil {
		return err
	}
	base := baseURL(r)
	var b []byte
	b = append(b, multistatusOpen...)
	c := &renderCtx{h: h, exchange: exchangeDialect(r)}
	if at.a != nil {
		b = h.appendAttResponse(b, c, base+at.base+"/"+string(appendEscaped(nil, at.a.Name)), at, at.a, &req, isBrief(r))
	} else {
		if !noroot && r.Method != "X-MS-ENUMATTS" {
			b = h.appendAttCollResponse(b, c, base+at.base+"/", at, &req, isBrief(r))
		}
		if depth > 0 {
			for i := range at.atts {
				a := &at.atts[i]
				b = h.appendAttResponse(b, c, base+at.base+"/"+string(appendEscaped(nil, a.Name)), at, a, &req, isBrief(r))
			}
		}
	}
	b = append(b, multistatusClose...)
	if int64(len(b)) > h.cfg.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, int64(len(b)))
	}
	reqlog.From(r.Context()).Items = int64(len(at.atts))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusMultiStatus)
	if r.Method != http.MethodHead {
		bw := bufio.NewWriter(w)
		bw.Write(b)
		bw.Flush()
	}
	return nil
}

// attProp is a property of an attachment resource.
type attProp struct {
	name    xml.Name
	dt      string
	allprop bool
	value   func(b []byte, c *renderCtx, at *attTarget, a *convert.Attachment, p *mailbox.Part) ([]byte, bool)
}

func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[i:]
	}
	return ""
}

// attProps: DAV: basics, httpmail:attachmentfilename and the MAPI
// attachment proptags of the SDK's X-MS-ENUMATTS examples.
var attProps = []attProp{
	{name: xml.Name{Space: nsDAV, Local: "displayname"}, allprop: true, value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, a.Name), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "resourcetype"}, allprop: true, value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return b, true
	}},
	{name: xml.Name{Space: nsDAV, Local: "getcontentlength"}, allprop: true, value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		return appendInt(b, p.DecodedSize), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "getcontenttype"}, allprop: true, value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, attContentType(p)), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "getetag"}, allprop: true, value: func(b []byte, _ *renderCtx, at *attTarget, a *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, attETag(&at.msg, a.Part, p.DecodedSize)), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "getlastmodified"}, allprop: true, value: func(b []byte, c *renderCtx, at *attTarget, _ *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		if c.exchange {
			return appendExchangeDate(b, at.msg.Modified), true
		}
		return appendHTTPDate(b, at.msg.Modified), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "iscollection"}, dt: "boolean", value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return append(b, '0'), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "ishidden"}, dt: "boolean", value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return appendBool(b, a.Inline), true
	}},
	{name: xml.Name{Space: nsHTTPMail, Local: "attachmentfilename"}, allprop: true, value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, a.Name), true
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x3704001f"}, value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, a.Name), true // PR_ATTACH_FILENAME
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x3707001f"}, value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, a.Name), true // PR_ATTACH_LONG_FILENAME
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x3703001f"}, value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, extOf(a.Name)), true // PR_ATTACH_EXTENSION
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x37050003"}, dt: "int", value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		// PR_ATTACH_METHOD: 5 ATTACH_EMBEDDED_MSG, 1 ATTACH_BY_VALUE.
		if p.ContentType == "message/rfc822" || p.ContentType == "message/global" {
			return append(b, '5'), true
		}
		return append(b, '1'), true
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x370e001f"}, value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		return appendXMLText(b, p.ContentType), true // PR_ATTACH_MIME_TAG
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x3712001f"}, value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		if p.ContentID == "" {
			return b, false
		}
		return appendXMLText(b, strings.Trim(p.ContentID, "<>")), true // PR_ATTACH_CONTENT_ID
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x3716001f"}, value: func(b []byte, _ *renderCtx, _ *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		if a.Inline { // PR_ATTACH_CONTENT_DISPOSITION
			return append(b, "inline"...), true
		}
		return append(b, "attachment"...), true
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x0e200003"}, dt: "int", value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		return appendInt(b, p.DecodedSize), true // PR_ATTACH_SIZE
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x0e210003"}, dt: "int", value: func(b []byte, _ *renderCtx, at *attTarget, a *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		for i := range at.atts { // PR_ATTACH_NUM: position in the list
			if at.atts[i].Part == a.Part {
				return appendInt(b, int64(i)), true
			}
		}
		return b, false
	}},
	{name: xml.Name{Space: nsMAPI, Local: "x370b0003"}, dt: "int", value: func(b []byte, _ *renderCtx, _ *attTarget, _ *convert.Attachment, _ *mailbox.Part) ([]byte, bool) {
		return append(b, "-1"...), true // PR_RENDERING_POSITION: not rendered in the body text
	}},
	// refused says why a GET of the attachment would be refused: the
	// limit, its value and the size (issue 4: every refusal says why).
	{name: xml.Name{Space: nsDavmail, Local: "refused"}, allprop: true, value: func(b []byte, c *renderCtx, _ *attTarget, _ *convert.Attachment, p *mailbox.Part) ([]byte, bool) {
		e := c.h.attRefusal(&http.Request{Header: http.Header{}}, p.DecodedSize)
		if e == nil {
			return b, false
		}
		return appendXMLText(b, e.Error()), true
	}},
}

func (h *Handler) appendAttResponse(b []byte, c *renderCtx, href string, at *attTarget, a *convert.Attachment, req *propfindRequest, brief bool) []byte {
	p := &at.st.Parts[a.Part]
	b = append(b, "<a:response><a:href>"...)
	b = appendXMLText(b, href)
	b = append(b, "</a:href><a:propstat><a:prop>"...)
	var missing []byte
	appendOne := func(ap *attProp) bool {
		start := len(b)
		b = appendPropOpen(b, ap.name, ap.dt)
		var ok bool
		b, ok = ap.value(b, c, at, a, p)
		if !ok {
			b = b[:start]
			return false
		}
		b = appendPropClose(b, ap.name)
		return true
	}
	switch {
	case req.propname:
		for i := range attProps {
			if _, ok := attProps[i].value(nil, c, at, a, p); ok {
				b = appendEmptyProp(b, attProps[i].name)
			}
		}
	case req.allprop:
		for i := range attProps {
			if attProps[i].allprop {
				appendOne(&attProps[i])
			}
		}
	default:
	next:
		for _, n := range req.props {
			for i := range attProps {
				if attProps[i].name == n {
					if !appendOne(&attProps[i]) {
						missing = appendEmptyProp(missing, n)
					}
					continue next
				}
			}
			missing = appendEmptyProp(missing, n)
		}
	}
	b = append(b, "</a:prop><a:status>HTTP/1.1 200 OK</a:status></a:propstat>"...)
	if len(missing) > 0 && !brief {
		b = append(b, "<a:propstat><a:prop>"...)
		b = append(b, missing...)
		b = append(b, "</a:prop><a:status>HTTP/1.1 404 Resource Not Found</a:status></a:propstat>"...)
	}
	return append(b, "</a:response>\n"...)
}

// appendAttCollResponse describes the virtual attachments collection.
func (h *Handler) appendAttCollResponse(b []byte, c *renderCtx, href string, at *attTarget, req *propfindRequest, brief bool) []byte {
	b = append(b, "<a:response><a:href>"...)
	b = appendXMLText(b, href)
	b = append(b, "</a:href><a:propstat><a:prop>"...)
	var missing []byte
	for _, n := range attCollNames(req) {
		switch n {
		case xml.Name{Space: nsDAV, Local: "resourcetype"}:
			b = append(b, "<a:resourcetype><a:collection/></a:resourcetype>"...)
		case xml.Name{Space: nsDAV, Local: "displayname"}:
			b = append(b, "<a:displayname>"...)
			b = appendXMLText(b, at.msg.Name+attachmentsSuffix)
			b = append(b, "</a:displayname>"...)
		case xml.Name{Space: nsDAV, Local: "getlastmodified"}:
			b = append(b, "<a:getlastmodified>"...)
			if c.exchange {
				b = appendExchangeDate(b, at.msg.Modified)
			} else {
				b = appendHTTPDate(b, at.msg.Modified)
			}
			b = append(b, "</a:getlastmodified>"...)
		case xml.Name{Space: nsDAV, Local: "iscollection"}:
			b = append(b, `<a:iscollection b:dt="boolean">1</a:iscollection>`...)
		default:
			missing = appendEmptyProp(missing, n)
		}
	}
	b = append(b, "</a:prop><a:status>HTTP/1.1 200 OK</a:status></a:propstat>"...)
	if len(missing) > 0 && !brief && !req.propname {
		b = append(b, "<a:propstat><a:prop>"...)
		b = append(b, missing...)
		b = append(b, "</a:prop><a:status>HTTP/1.1 404 Resource Not Found</a:status></a:propstat>"...)
	}
	return append(b, "</a:response>\n"...)
}

func attCollNames(req *propfindRequest) []xml.Name {
	if req.allprop || req.propname {
		return []xml.Name{{Space: nsDAV, Local: "resourcetype"}, {Space: nsDAV, Local: "displayname"}, {Space: nsDAV, Local: "getlastmodified"}}
	}
	return req.props
}

// enumAtts answers X-MS-ENUMATTS on a message URL.
func (h *Handler) enumAtts(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if t.msg == nil {
		if t.isFolder {
			return errorf(http.StatusBadRequest, "X-MS-ENUMATTS lists the attachments of a message; this is a folder")
		}
		return errorf(http.StatusNotFound, "no message at this URL")
	}
	m := *t.msg
	if err := h.setAttTarget(r.Context(), rq, m, "", false); err != nil {
		return err
	}
	return h.propfindAttachments(w, r, rq)
}
