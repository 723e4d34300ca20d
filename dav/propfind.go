package dav

import (
	"bufio"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// parseDepth reads the Depth header (RFC 4918 §10.2) with Exchange's
// ",noroot" suffix (exchange-webdav.md §3.2). def applies when absent.
func parseDepth(r *http.Request, def int) (depth int, noroot bool, err error) {
	if len(r.Header.Values("Depth")) > 1 {
		// A single-valued header (RFC 4918 §10.2): which one to believe
		// is the client's mistake to fix, not ours to guess.
		return 0, false, errorf(http.StatusBadRequest, "more than one Depth header")
	}
	v := strings.ToLower(strings.TrimSpace(r.Header.Get("Depth")))
	if v == "" {
		return def, false, nil
	}
	if s, ok := strings.CutSuffix(v, ",noroot"); ok {
		v, noroot = strings.TrimSpace(s), true
	}
	switch v {
	case "0":
		return 0, noroot, nil
	case "1":
		return 1, noroot, nil
	case "infinity":
		return infinity, noroot, nil
	}
	return 0, false, errorf(http.StatusBadRequest, "invalid Depth header %q: want 0, 1 or infinity", r.Header.Get("Depth"))
}

const infinity = -1

// listing is what a PROPFIND answers: resources in response order.
type listing struct {
	folders []mailbox.Folder
	msgs    [][]mailbox.Message // per folder in folders (nil when not listed)
	// single is set when the target is one message.
	single *mailbox.Message
	noroot bool
	// syncToken, when set, closes the multistatus with a DAV:sync-token
	// (RFC 6578 §6.4).
	syncToken string
}

func (h *Handler) propfind(w http.ResponseWriter, r *http.Request, rq *request) error {
	depth, noroot, err := parseDepth(r, infinity)
	if err != nil {
		return err
	}
	req, err := h.parsePropfind(r.Body)
	if err != nil {
		return err
	}
	t := rq.target
	if !t.exists {
		return errorf(http.StatusNotFound, "no folder or message at this URL")
	}
	ctx := r.Context()
	var l listing
	l.noroot = noroot
	if t.msg != nil {
		l.single = t.msg
	} else {
		if depth == infinity {
			if h.cfg.MaxDepthInfinity < 0 {
				return &httpError{Code: http.StatusForbidden, Cond: "propfind-finite-depth", Msg: "Depth: infinity is disabled on this server; use Depth: 1 on each folder"}
			}
		}
		if err := h.collect(ctx, rq.mb, t.folder, depth, &l); err != nil {
			return err
		}
	}
	return h.writeMultistatus(w, r, rq, &req, &l)
}

// collect gathers the folder and, per depth, its members, refusing
// Depth: infinity past MaxDepthInfinity responses before any work on the
// messages starts.
func (h *Handler) collect(ctx context.Context, mb mailbox.Mailbox, f mailbox.Folder, depth int, l *listing) error {
	l.folders = append(l.folders, f)
	l.msgs = append(l.msgs, nil)
	if depth == 0 {
		return nil
	}
	all, err := mb.Folders(ctx)
	if err != nil {
		return err
	}
	var sub []mailbox.Folder
	for _, c := range all {
		if depth == 1 && mailbox.Parent(c.Path) == f.Path || depth == infinity && mailbox.IsDescendant(c.Path, f.Path) {
			sub = append(sub, c)
		}
	}
	if depth == infinity {
		total := 1 + len(sub) + f.Messages
		for _, c := range sub {
			total += c.Messages
		}
		if total > h.cfg.MaxDepthInfinity {
			return &httpError{Code: http.StatusForbidden, Cond: "propfind-finite-depth",
				Msg: "Depth: infinity would list " + strconv.Itoa(total) + " resources, over max-depth-infinity of " + strconv.Itoa(h.cfg.MaxDepthInfinity) + "; use Depth: 1"}
		}
	}
	if f.Path != "" {
		msgs, err := mb.List(ctx, f.Path)
		if err != nil {
			return err
		}
		l.msgs[0] = msgs
	}
	for _, c := range sub {
		l.folders = append(l.folders, c)
		l.msgs = append(l.msgs, nil)
		if depth == infinity {
			msgs, err := mb.List(ctx, c.Path)
			if err != nil {
				return err
			}
			l.msgs[len(l.msgs)-1] = msgs
		}
	}
	return nil
}

// writeMultistatus renders the listing twice: once into a byte counter,
// to learn the exact Content-Length and check it against
// max-response-size before the first byte is sent (brief, failure 5),
// and once to the client through a fixed 64 KiB buffer. Rendering is
// append-based into one reused scratch slice, so memory stays constant
// whatever the number of entries.
func (h *Handler) writeMultistatus(w http.ResponseWriter, r *http.Request, rq *request, req *propfindRequest, l *listing) error {
	ctx := r.Context()
	ms := h.newPropfindRenderer(r, rq, req)
	ms.rc.single = l.single != nil
	var count countWriter
	if err := ms.render(ctx, &count, l); err != nil {
		return err
	}
	if count.n > h.cfg.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, count.n)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(count.n, 10))
	w.WriteHeader(http.StatusMultiStatus)
	if r.Method == http.MethodHead {
		return nil
	}
	// The length is known: a small answer gets a small buffer, a big one
	// the fixed 64 KiB that bounds memory whatever the entry count.
	bw := bufio.NewWriterSize(w, int(min(count.n, 64<<10)))
	ms.items = 0
	if err := ms.render(ctx, bw, l); err != nil {
		// Headers are out: nothing sensible can be sent any more. The
		// error is logged; the client sees a short body.
		reqlog.From(ctx).Err = err
		return nil
	}
	reqlog.From(ctx).Items = ms.items
	bw.Flush()
	return nil
}

// newPropfindRenderer prepares the renderer of a PROPFIND-style answer:
// the request's property list resolved once into a plan, the client's
// dialect and Brief choice.
func (h *Handler) newPropfindRenderer(r *http.Request, rq *request, req *propfindRequest) *msRenderer {
	rc := &renderCtx{h: h, now: time.Now(), ctx: r.Context(), mb: rq.mb, exchange: exchangeDialect(r)}
	ms := &msRenderer{h: h, rc: rc, req: req, rq: rq, base: baseURL(r) + h.cfg.Prefix, brief: isBrief(r)}
	rc.root = appendEscaped([]byte(ms.base), rq.user)
	for _, n := range req.props {
		i, ok := livePropIndex[n]
		if !ok {
			i = -1
		}
		ms.plan = append(ms.plan, planItem{live: i, name: n})
	}
	return ms
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type msRenderer struct {
	h     *Handler
	rc    *renderCtx
	req   *propfindRequest
	rq    *request
	base  string // scheme://host/exchange/
	buf   []byte
	items int64
	// scratch for the 404 propstat
	missing []byte
	// plan is the requested property list resolved once per request:
	// live property index or -1 for a dead/unknown one.
	plan []planItem
	href []byte
	res  resource
	// brief leaves out the 404 propstat (Brief: t).
	brief bool
}

type planItem struct {
	live int
	name xml.Name
}

// flushAt bounds the scratch buffer: one entry is a few hundred bytes.
const flushAt = 32 << 10

func (m *msRenderer) render(ctx context.Context, out io.Writer, l *listing) error {
	m.buf = append(m.buf[:0], multistatusOpen...)
	if l.single != nil {
		if err := m.entry(out, &resource{msg: l.single, lockPath: m.rq.lockPathMsg(l.single.Folder, l.single.Name)}, m.hrefMsg(l.single)); err != nil {
			return err
		}
	}
	for i := range l.folders {
		f := &l.folders[i]
		if !(i == 0 && l.noroot) {
			if err := m.entry(out, &resource{folder: f, lockPath: m.rq.lockPathFolder(f.Path)}, m.hrefFolder(f.Path)); err != nil {
				return err
			}
		}
		msgs := l.msgs[i]
		if len(msgs) == 0 {
			continue
		}
		prefix := m.hrefFolder(f.Path)
		for j := range msgs {
			if j&1023 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			m.href = append(append(m.href[:0], prefix...), '/')
			m.href = appendEscaped(m.href, msgs[j].Name)
			m.res = resource{msg: &msgs[j]}
			if m.h.locks.any() {
				m.res.lockPath = m.rq.lockPathMsg(f.Path, msgs[j].Name)
			}
			if err := m.entry(out, &m.res, m.href); err != nil {
				return err
			}
			if m.h.cfg.AttachmentFolders && msgs[j].Envelope.HasAttachments {
				// The virtual collection of its attachments (attach.go).
				m.items++
				m.buf = m.h.appendAttCollResponse(m.buf, m.rc, string(m.href)+attachmentsSuffix+"/", &attTarget{msg: msgs[j]}, m.req, m.brief)
			}
		}
	}
	if l.syncToken != "" {
		m.buf = append(m.buf, "<a:sync-token>"...)
		m.buf = appendXMLText(m.buf, l.syncToken)
		m.buf = append(m.buf, "</a:sync-token>\n"...)
	}
	m.buf = append(m.buf, multistatusClose...)
	_, err := out.Write(m.buf)
	return err
}

func (m *msRenderer) hrefFolder(path string) []byte {
	b := append(make([]byte, 0, len(m.base)+len(path)+32), m.base...)
	b = appendEscaped(b, m.rq.user)
	if path != "" {
		for _, seg := range strings.Split(folderURLPath(path), "/") {
			b = append(b, '/')
			b = appendEscaped(b, seg)
		}
	}
	return b
}

func (m *msRenderer) hrefMsg(msg *mailbox.Message) []byte {
	b := m.hrefFolder(msg.Folder)
	b = append(b, '/')
	return appendEscaped(b, msg.Name)
}

// entry appends one DAV:response.
func (m *msRenderer) entry(out io.Writer, res *resource, href []byte) error {
	m.items++
	b := m.buf
	b = append(b, "<a:response><a:href>"...)
	b = append(b, href...)
	if res.folder != nil {
		b = append(b, '/')
	}
	b = append(b, "</a:href>"...)
	m.rc.locks = nil
	if res.lockPath != "" {
		m.rc.locks = m.h.locks.view(res.lockPath, m.rc.now)
	}
	var dead []mailbox.Prop
	needDead := m.req.allprop || m.req.propname || len(m.req.props) > 0
	if needDead && (res.msg == nil || res.msg.HasDeadProps) {
		var err error
		folder, name := "", ""
		if res.msg != nil {
			folder, name = res.msg.Folder, res.msg.Name
		} else {
			folder = res.folder.Path
		}
		dead, err = m.rq.mb.DeadProps(m.rc.ctx, folder, name)
		if err != nil && err != mailbox.ErrNotFound {
			return err
		}
	}
	m.missing = m.missing[:0]
	b = append(b, "<a:propstat><a:prop>"...)
	switch {
	case m.req.propname:
		for _, p := range liveProps {
			if _, ok := p.appendValue(nil, m.rc, res); ok {
				b = appendEmptyProp(b, p.name)
			}
		}
		for _, d := range dead {
			b = appendEmptyProp(b, xml.Name{Space: d.Space, Local: d.Local})
		}
	case m.req.allprop:
		for _, p := range liveProps {
			if p.allprop {
				b = m.appendLive(b, &p, res, false)
			}
		}
		for _, d := range dead {
			b = appendDeadProp(b, d)
		}
		for _, it := range m.plan { // DAV:include
			if it.live >= 0 && !liveProps[it.live].allprop {
				b = m.appendLive(b, &liveProps[it.live], res, true)
			}
		}
	default:
		for _, it := range m.plan {
			n := it.name
			if it.live >= 0 {
				b = m.appendLive(b, &liveProps[it.live], res, true)
				continue
			}
			found := false
			for _, d := range dead {
				if d.Space == n.Space && d.Local == n.Local {
					b = appendDeadProp(b, d)
					found = true
					break
				}
			}
			if !found {
				m.missing = appendEmptyProp(m.missing, n)
			}
		}
	}
	b = append(b, "</a:prop><a:status>HTTP/1.1 200 OK</a:status></a:propstat>"...)
	if len(m.missing) > 0 && !m.brief {
		b = append(b, "<a:propstat><a:prop>"...)
		b = append(b, m.missing...)
		b = append(b, "</a:prop><a:status>HTTP/1.1 404 Resource Not Found</a:status></a:propstat>"...)
	}
	b = append(b, "</a:response>\n"...)
	m.buf = b
	if len(b) >= flushAt {
		if _, err := out.Write(b); err != nil {
			return err
		}
		m.buf = b[:0]
	}
	return nil
}

// appendLive writes one live property; one that does not apply to res
// is reported 404 when it was asked for by name (asked) and left out
// under allprop (RFC 4918 §9.1: allprop returns the properties that exist).
func (m *msRenderer) appendLive(b []byte, p *liveProp, res *resource, asked bool) []byte {
	start := len(b)
	b = appendPropOpen(b, p.name, p.dt)
	var ok bool
	b, ok = p.appendValue(b, m.rc, res)
	if !ok {
		if asked {
			m.missing = appendEmptyProp(m.missing, p.name)
		}
		return b[:start]
	}
	return appendPropClose(b, p.name)
}

func appendPropOpen(b []byte, n xml.Name, dt string) []byte {
	b = append(b, '<')
	if p := prefixOf(n.Space); p != "" {
		b = append(b, p...)
		b = append(b, ':')
		b = append(b, n.Local...)
	} else {
		b = append(b, "x:"...)
		b = append(b, n.Local...)
		b = append(b, ` xmlns:x="`...)
		b = appendXMLAttr(b, n.Space)
		b = append(b, '"')
	}
	if dt != "" {
		b = append(b, ` b:dt="`...)
		b = append(b, dt...)
		b = append(b, '"')
	}
	return append(b, '>')
}

func appendPropClose(b []byte, n xml.Name) []byte {
	b = append(b, "</"...)
	if p := prefixOf(n.Space); p != "" {
		b = append(b, p...)
	} else {
		b = append(b, 'x')
	}
	b = append(b, ':')
	b = append(b, n.Local...)
	return append(b, '>')
}

// appendEmptyProp writes <name/>, declaring unknown namespaces locally;
// the empty namespace is written with xmlns="" (litmus propnullns).
func appendEmptyProp(b []byte, n xml.Name) []byte {
	if n.Space == "" {
		b = append(b, '<')
		b = append(b, n.Local...)
		return append(b, ` xmlns=""/>`...)
	}
	b = appendPropOpen(b, n, "")
	return append(b[:len(b)-1], "/>"...)
}

func appendDeadProp(b []byte, d mailbox.Prop) []byte {
	n := xml.Name{Space: d.Space, Local: d.Local}
	if d.Space == "" {
		b = append(b, '<')
		b = append(b, d.Local...)
		b = append(b, ` xmlns=""`...)
	} else {
		b = appendPropOpen(b, n, "")
		b = b[:len(b)-1]
	}
	if d.Lang != "" {
		b = append(b, ` xml:lang="`...)
		b = appendXMLAttr(b, d.Lang)
		b = append(b, '"')
	}
	b = append(b, '>')
	b = append(b, d.XML...)
	if d.Space == "" {
		b = append(b, "</"...)
		b = append(b, d.Local...)
		return append(b, '>')
	}
	return appendPropClose(b, n)
}

// loadFolders fills c.folders once per response (hassubs and the
// special-folder URLs need the folder list).
func (c *renderCtx) loadFolders() {
	if c.folders != nil {
		return
	}
	fs, err := c.mb.Folders(c.ctx)
	if err != nil || fs == nil {
		fs = []mailbox.Folder{}
	}
	c.folders = fs
}

// hasSubfolders answers DAV:hassubs from the folder list.
func (h *Handler) hasSubfolders(c *renderCtx, path string) bool {
	c.loadFolders()
	for _, f := range c.folders {
		if mailbox.IsDescendant(f.Path, path) {
			return true
		}
	}
	return false
}

// exchangeDialect reports whether r comes from an Exchange-dialect client,
// which needs Exchange's value formats where they differ from RFC 4918's
// (only DAV:getlastmodified today): a client logged in through the OWA
// forms login (DavMail 6 works only that way, exchange-webdav.md §0.3 #8),
// or one that sends Exchange's Translate or Brief headers.
func exchangeDialect(r *http.Request) bool {
	return reqlog.From(r.Context()).Session || r.Header.Get("Translate") != "" || r.Header.Get("Brief") != ""
}
