package dav

import (
	"bufio"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/davmail/davmail/dav/exsql"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// Property URIs the SEARCH rows answer from the index (exchange-webdav.md
// §4.2, §4.3, §11.1). The split into namespace and local name follows §3.1:
// everything up to the last "/" or ":" is the namespace.
const (
	propDeleted       = "http://schemas.microsoft.com/mapi/id/{00062008-0000-0000-c000-000000000046}/0x8570"
	propHeaderPrefix  = "http://schemas.microsoft.com/mapi/string/{00020386-0000-0000-c000-000000000046}/"
	propPermanentURL  = nsExchange + "permanenturl"
	flatURLSpace      = "-FlatUrlSpace-"
	searchContentType = "text/xml" // exactly: DavMail reads the body only then (§0.3 #1)
)

// searchRow is one candidate of a SEARCH: a folder or a message.
type searchRow struct {
	folder *mailbox.Folder
	msg    *mailbox.Message
}

// Value implements exsql.Row from the index only.
func (s searchRow) Value(prop string) (exsql.Value, bool) {
	m, f := s.msg, s.folder
	switch prop {
	case "DAV:isfolder", "DAV:iscollection":
		return exsql.BoolValue(f != nil), true
	case "DAV:ishidden":
		return exsql.BoolValue(false), true
	case "DAV:displayname":
		if m != nil {
			return exsql.StringValue(m.Name), true
		}
		return exsql.StringValue(displayName(f)), true
	case "DAV:contentclass":
		if m != nil {
			return exsql.StringValue("urn:content-classes:message"), true
		}
		return exsql.StringValue("urn:content-classes:mailfolder"), true
	case nsExchange + "outlookfolderclass":
		if f != nil {
			return exsql.StringValue("IPF.Note"), true
		}
	case "DAV:getlastmodified":
		if m != nil {
			return exsql.TimeValue(m.Modified), true
		}
		return exsql.TimeValue(f.Modified), true
	case "DAV:hassubs", "DAV:nosubs":
		// Answered in the response; not searchable cheaply here.
	case "DAV:objectcount":
		if f != nil {
			return exsql.IntValue(int64(f.Messages)), true
		}
	case nsHTTPMail + "unreadcount":
		if f != nil {
			return exsql.IntValue(int64(f.Unseen)), true
		}
	}
	if m == nil {
		return exsql.Value{}, false
	}
	switch prop {
	case nsHTTPMail + "read":
		return exsql.BoolValue(m.Flags&mailbox.FlagSeen != 0), true
	case nsHTTPMail + "subject":
		return exsql.StringValue(m.Envelope.Subject), true
	case nsHTTPMail + "from":
		return exsql.StringValue(m.Envelope.From), true
	case nsHeader + "to":
		return exsql.StringValue(m.Envelope.To), true
	case nsHeader + "cc":
		return exsql.StringValue(m.Envelope.Cc), true
	case nsHeader + "message-id", propHeaderPrefix + "message-id":
		return exsql.StringValue(m.Envelope.MessageID), true
	case nsHTTPMail + "hasattachment":
		return exsql.BoolValue(m.Envelope.HasAttachments), true
	case nsHTTPMail + "date":
		if !m.Envelope.Date.IsZero() {
			return exsql.TimeValue(m.Envelope.Date), true
		}
		return exsql.TimeValue(m.InternalDate), true
	case nsMAPI + "x0e060040", nsHTTPMail + "datereceived", "DAV:creationdate":
		return exsql.TimeValue(m.InternalDate), true
	case nsMAPI + "x0e080003", "DAV:getcontentlength":
		return exsql.IntValue(m.Size), true
	case nsMAPI + "x0e230003":
		return exsql.IntValue(int64(m.UID)), true
	case nsMAPI + "x10f3001f":
		return exsql.StringValue(m.Name), true
	case nsMAPI + "x10900003":
		if m.Flags&mailbox.FlagFlagged != 0 {
			return exsql.IntValue(2), true
		}
		return exsql.Value{}, false
	case nsMAPI + "x0e070003":
		return exsql.IntValue(messageFlags(m.Flags)), true
	case nsMAPI + "x10810003":
		switch {
		case m.Flags&mailbox.FlagAnswered != 0:
			return exsql.IntValue(102), true
		case m.Flags&mailbox.FlagPassed != 0:
			return exsql.IntValue(104), true
		}
		return exsql.Value{}, false
	case propDeleted:
		if m.Flags&mailbox.FlagDeleted != 0 {
			return exsql.StringValue("1"), true
		}
		return exsql.Value{}, false
	case nsExchange + "keywords-utf8":
		if len(m.Keywords) > 0 {
			return exsql.StringsValue(m.Keywords), true
		}
		return exsql.Value{}, false
	case "DAV:uid":
		return exsql.StringValue(strconv.FormatUint(m.ID, 36)), true
	}
	return exsql.Value{}, false
}

func displayName(f *mailbox.Folder) string {
	if f.Path == mailbox.Inbox {
		return inboxSegment
	}
	return f.Name()
}

// messageFlags is PR_MESSAGE_FLAGS: MSGFLAG_READ 0x1, MSGFLAG_UNSENT 0x8.
func messageFlags(f mailbox.Flags) int64 {
	n := int64(0)
	if f&mailbox.FlagSeen != 0 {
		n |= 1
	}
	if f&mailbox.FlagDraft != 0 {
		n |= 8
	}
	return n
}

// parseSearchRequest reads <searchrequest><sql>…</sql></searchrequest>.
func (h *Handler) parseSearchRequest(body io.Reader) (string, error) {
	x := h.newXMLReader(body)
	root, err := x.root()
	if err == io.EOF {
		return "", errorf(http.StatusBadRequest, "SEARCH needs a DAV:searchrequest body")
	}
	if err != nil {
		return "", err
	}
	if root.Name != (xml.Name{Space: nsDAV, Local: "searchrequest"}) {
		return "", errorf(http.StatusBadRequest, "SEARCH body must be a DAV:searchrequest element")
	}
	var sql strings.Builder
	found := false
	depth := 0
	inSQL := false
	for {
		t, err := x.Token()
		if err != nil {
			return "", eofIsBad(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name == (xml.Name{Space: nsDAV, Local: "sql"}) {
				inSQL, found = true, true
			}
		case xml.EndElement:
			if depth == 0 {
				if !found {
					return "", errorf(http.StatusBadRequest, "DAV:searchrequest holds no DAV:sql")
				}
				return sql.String(), x.drain()
			}
			if depth == 1 {
				inSQL = false
			}
			depth--
		case xml.CharData:
			if inSQL {
				sql.Write(t)
			}
		}
	}
}

// search answers SEARCH with Exchange's SQL (exchange-webdav.md §5),
// evaluated against the index: no message file is opened.
func (h *Handler) search(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if !t.exists || !t.isFolder {
		return errorf(http.StatusNotFound, "SEARCH needs a folder")
	}
	sql, err := h.parseSearchRequest(r.Body)
	if err != nil {
		return err
	}
	q, err := exsql.Parse(sql, exsql.Options{})
	if err != nil {
		return err
	}
	var ranges []exsql.RowRange
	if v := r.Header.Get("Range"); v != "" {
		ranges, err = exsql.ParseRange(v)
		if err != nil {
			if errors.Is(err, exsql.ErrRangeUnit) {
				ranges = nil // RFC 9110 §14.2: ignore a range unit we do not know
			} else {
				return err
			}
		}
	}
	ctx := r.Context()
	all, err := rq.mb.Folders(ctx)
	if err != nil {
		return err
	}
	var rows []searchRow
	for _, sc := range q.Scopes {
		base, err := h.scopeFolder(r, rq, sc.URL)
		if err != nil {
			return err
		}
		for i := range all {
			f := &all[i]
			in := mailbox.IsDescendant(f.Path, base)
			if !sc.Deep && mailbox.Parent(f.Path) != base {
				in = false
			}
			if in {
				if row := (searchRow{folder: f}); q.Match(row) {
					rows = append(rows, row)
				}
			}
		}
		if sc.Hierarchical {
			continue
		}
		var folders []string
		if base != "" {
			folders = append(folders, base)
		}
		if sc.Deep {
			for _, f := range all {
				if mailbox.IsDescendant(f.Path, base) {
					folders = append(folders, f.Path)
				}
			}
		}
		for _, fp := range folders {
			msgs, err := rq.mb.List(ctx, fp)
			if err != nil {
				return err
			}
			for j := range msgs {
				if j&4095 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				if row := (searchRow{msg: &msgs[j]}); q.Match(row) {
					rows = append(rows, row)
				}
			}
		}
	}
	exsql.Sort(q, rows)
	sel := exsql.Selection{Spans: []exsql.Span{{First: 0, Last: len(rows) - 1}}, Total: len(rows)}
	if len(rows) == 0 {
		sel.Spans = nil
	}
	if ranges != nil {
		if sel, err = exsql.SelectRows(ranges, len(rows)); err != nil {
			var rn *exsql.RangeNotSatisfiableError
			if errors.As(err, &rn) {
				w.Header().Set("Content-Range", rn.ContentRange())
			}
			return err
		}
		w.Header().Set("Content-Range", sel.ContentRange())
	}
	sr := &searchRenderer{h: h, rq: rq, q: q, base: baseURL(r) + h.cfg.Prefix, rc: &renderCtx{h: h, ctx: ctx, mb: rq.mb, now: time.Now()}}
	sr.rc.root = appendEscaped([]byte(sr.base), rq.user)
	var count countWriter
	if err := sr.render(&count, rows, sel); err != nil {
		return err
	}
	if count.n > h.cfg.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, count.n)
	}
	w.Header().Set("Content-Type", searchContentType)
	w.Header().Set("Accept-Ranges", "rows")
	w.Header().Set("Content-Length", strconv.FormatInt(count.n, 10))
	w.WriteHeader(http.StatusMultiStatus)
	// The length is known: a small answer gets a small buffer, a big one
	// the fixed 64 KiB that bounds memory whatever the entry count.
	bw := bufio.NewWriterSize(w, int(min(count.n, 64<<10)))
	if err := sr.render(bw, rows, sel); err != nil {
		reqlog.From(ctx).Err = err
		return nil
	}
	reqlog.From(ctx).Items = int64(sel.Len())
	bw.Flush()
	return nil
}

// scopeFolder maps a SCOPE URL (a full URL or a path, usually not
// percent-encoded: DavMail writes "/exchange/alice/Sent Items", §11) to a
// folder path of the user's mailbox; "" is the request URI.
func (h *Handler) scopeFolder(r *http.Request, rq *request, raw string) (string, error) {
	if raw == "" {
		return rq.target.folder.Path, nil
	}
	p := raw
	if i := strings.Index(p, "://"); i >= 0 {
		if j := strings.IndexByte(p[i+3:], '/'); j >= 0 {
			p = p[i+3+j:]
		} else {
			p = "/"
		}
	}
	try := func(segs []string) (string, bool) {
		if len(segs) == 0 || segs[0] != rq.user {
			return "", false
		}
		path := urlToFolder(segs[1:])
		if _, err := rq.mb.Folder(r.Context(), path); err != nil {
			return "", false
		}
		return path, true
	}
	rest, ok := strings.CutPrefix(p, h.cfg.Prefix)
	if !ok {
		return "", errorf(http.StatusBadRequest, "SEARCH scope %q is not in %s", raw, h.cfg.Prefix)
	}
	var segs []string
	for _, s := range strings.Split(strings.Trim(rest, "/"), "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	if path, ok := try(segs); ok {
		return path, nil
	}
	// Encoded after all (a client that percent-encodes its scope).
	dec := make([]string, len(segs))
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", errorf(http.StatusNotFound, "SEARCH scope %q names no folder", raw)
		}
		dec[i] = d
	}
	if path, ok := try(dec); ok {
		return path, nil
	}
	if len(segs) > 0 && segs[0] != rq.user {
		return "", errorf(http.StatusForbidden, "SEARCH scope %q is outside your mailbox", raw)
	}
	return "", errorf(http.StatusNotFound, "SEARCH scope %q names no folder", raw)
}

type searchRenderer struct {
	h    *Handler
	rq   *request
	q    *exsql.Query
	base string
	rc   *renderCtx
	buf  []byte
	res  resource
	ms   msRenderer // for hrefs
}

func (s *searchRenderer) render(out io.Writer, rows []searchRow, sel exsql.Selection) error {
	s.ms = msRenderer{h: s.h, rq: s.rq, base: s.base, rc: s.rc}
	s.buf = append(s.buf[:0], multistatusOpen...)
	for i := range sel.Indexes() {
		row := rows[i]
		var href []byte
		if row.msg != nil {
			href = s.ms.hrefMsg(row.msg)
			s.res = resource{msg: row.msg}
		} else {
			href = append(s.ms.hrefFolder(row.folder.Path), '/')
			s.res = resource{folder: row.folder}
		}
		b := s.buf
		b = append(b, "<a:response><a:href>"...)
		b = append(b, href...)
		b = append(b, "</a:href><a:propstat><a:status>HTTP/1.1 200 OK</a:status><a:prop>"...)
		cols := s.q.Columns
		if s.q.AllProps {
			cols = defaultSearchColumns
		}
		for _, c := range cols {
			b = s.appendColumn(b, c, row, href)
		}
		b = append(b, "</a:prop></a:propstat></a:response>\n"...)
		s.buf = b
		if len(b) >= flushAt {
			if _, err := out.Write(b); err != nil {
				return err
			}
			s.buf = b[:0]
		}
	}
	s.buf = append(s.buf, multistatusClose...)
	_, err := out.Write(s.buf)
	return err
}

var defaultSearchColumns = []exsql.Column{{Prop: "DAV:displayname"}, {Prop: "DAV:getlastmodified"}, {Prop: "DAV:getcontentlength"}, {Prop: nsHTTPMail + "subject"}}

// splitProp splits a property URI after its last "/" or ":" (§3.1).
func splitProp(p string) xml.Name {
	i := strings.LastIndexAny(p, "/:")
	return xml.Name{Space: p[:i+1], Local: p[i+1:]}
}

// appendColumn writes one selected column; a column without a value is
// left out (DavMail reads absence as "not set", §11).
func (s *searchRenderer) appendColumn(b []byte, c exsql.Column, row searchRow, href []byte) []byte {
	n := splitProp(c.Prop)
	var val []byte
	dt := ""
	switch {
	case c.Prop == propPermanentURL:
		if row.msg != nil {
			val = append(append(s.rc.root, "/"+flatURLSpace+"/"...), strconv.FormatUint(row.msg.ID, 36)...)
		} else {
			val = href
		}
	case c.Prop == "DAV:getlastmodified":
		// Exchange's form with milliseconds (§0.3 #4), whatever PROPFIND sends.
		v, _ := row.Value(c.Prop)
		val, dt = appendExchangeDate(nil, v.Time()), "dateTime.tz"
	default:
		if i, ok := livePropIndex[n]; ok {
			var good bool
			start := len(b)
			val, good = liveProps[i].appendValue(nil, s.rc, &s.res)
			if !good {
				return b[:start]
			}
			dt = liveProps[i].dt
			break
		}
		v, ok := row.Value(c.Prop)
		if !ok {
			return b
		}
		val, dt = appendSearchValue(nil, v)
	}
	if c.Alias != "" {
		b = append(b, '<')
		b = append(b, c.Alias...)
		b = append(b, ` xmlns=""`...)
		if dt != "" {
			b = append(b, ` b:dt="`...)
			b = append(b, dt...)
			b = append(b, '"')
		}
		b = append(b, '>')
		b = append(b, val...)
		b = append(b, "</"...)
		b = append(b, c.Alias...)
		return append(b, '>')
	}
	if n.Local == "" || (n.Local[0] >= '0' && n.Local[0] <= '9') {
		// An element name cannot start with a digit; XmlConvert-escape it
		// (§3.1: "_x0030_x8570" is "0x8570").
		n.Local = "_x003" + string(n.Local[0]) + "_" + n.Local[1:]
	}
	b = appendPropOpen(b, n, dt)
	b = append(b, val...)
	return appendPropClose(b, n)
}

// appendSearchValue writes a row value with its Exchange datatype.
func appendSearchValue(b []byte, v exsql.Value) ([]byte, string) {
	switch v.Kind() {
	case exsql.KindBool:
		return appendBool(b, v.Bool()), "boolean"
	case exsql.KindInt:
		return appendInt(b, v.Int()), "int"
	case exsql.KindTime:
		return appendExchangeDate(b, v.Time()), "dateTime.tz"
	case exsql.KindStrings:
		for _, s := range v.Strings() {
			b = append(b, "<c:v>"...)
			b = appendXMLText(b, s)
			b = append(b, "</c:v>"...)
		}
		return b, "mv.string"
	}
	return appendXMLText(b, v.Str()), ""
}
