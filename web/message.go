package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// frameCSP is the Content-Security-Policy of the message body document:
// nothing may load or run but images from the gateway (cid: parts) and
// data: URLs, and the inline styles of the sanitized mail. The sandbox
// directive applies even if the document is opened on its own, outside
// the page's sandboxed iframe: no scripts, no forms, a unique origin for
// everything but same-origin image loads (allow-same-origin lets the cid:
// image requests carry the session cookie; without allow-scripts it
// gives the document no power). Links open in new tabs outside the
// sandbox (allow-popups-to-escape-sandbox) so that the sites they lead
// to work normally.
const frameCSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; " +
	"frame-ancestors 'self'; base-uri 'none'; form-action 'none'; " +
	"sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"

// frameCSPRemote is frameCSP once the reader asked for remote images.
const frameCSPRemote = "default-src 'none'; img-src 'self' data: https: http:; style-src 'unsafe-inline'; " +
	"frame-ancestors 'self'; base-uri 'none'; form-action 'none'; " +
	"sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"

// partCSP is the CSP of a downloaded part: should a browser render it
// after all (it is sent as an attachment), nothing in it can run or load.
const partCSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"

// frameHead and frameTail wrap the rendered body in a document.
const frameHead = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><style>
html{color-scheme:light}body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:12px 16px;color:#1b1b1b;background:#fff;overflow-wrap:anywhere}
img{max-width:100%;height:auto}table{max-width:100%}pre.dm-text{font:14px/1.45 ui-monospace,Menlo,Consolas,monospace;margin:0}
.dm-note{background:#fff4ce;border-left:4px solid #b58300;padding:6px 10px;font-size:14px}
</style></head><body>
`
const frameTail = "</body></html>\n"

// inlineImageTypes are served inline for cid: references; everything
// else is an attachment. Raster formats only: an SVG is a document that
// can hold scripts.
var inlineImageTypes = map[string]bool{
	"image/png": true, "image/gif": true, "image/jpeg": true, "image/jpg": true,
	"image/webp": true, "image/bmp": true, "image/avif": true,
}

type messageView struct {
	Folder      string
	FolderLabel string
	BackURL     string
	Name        string
	ID          string
	Subject     string
	From        string
	To          string
	Cc          string
	Date        string
	DateISO     string
	Size        string
	Unread      bool
	Flagged     bool
	InTrash     bool

	FrameURL    string
	RemoteURL   string // "" unless remote images were blocked
	Blocked     int
	RemoteShown bool

	Notes       []string // plain explanations: oversized, problems
	Attachments []attachment
	EMLURL      string // the original on WebDAV; "" when refused
	EMLRefused  string
	MoveTargets []folderItem
}

type attachment struct {
	Name    string
	Type    string
	Size    string
	URL     string // "" when refused
	Refused string // the plain explanation
}

// msgRef is a message located from the query (f, n) and, for the
// frame and parts, checked against the id the page was built with (id):
// a message replaced meanwhile must not show another's parts.
type msgRef struct {
	mb  mailbox.Mailbox
	msg mailbox.Message
	st  *mailbox.Structure
}

func (h *Handler) loadMessage(r *http.Request, checkID bool) (*msgRef, error) {
	wh := whoFrom(r.Context())
	q := r.URL.Query()
	folder, name := q.Get("f"), q.Get("n")
	if folder == "" || name == "" {
		return nil, errorf(http.StatusBadRequest, "The address does not name a message.")
	}
	mb, err := h.opts.Store.Mailbox(r.Context(), wh.User)
	if err != nil {
		return nil, err
	}
	m, err := mb.Stat(r.Context(), folder, name)
	if err != nil {
		return nil, err
	}
	if checkID && q.Get("id") != strconv.FormatUint(m.ID, 10) {
		return nil, errorf(http.StatusNotFound, "This message has changed since the page was loaded. Reload the message.")
	}
	st, err := mb.Structure(r.Context(), folder, name)
	if err != nil {
		return nil, err
	}
	return &msgRef{mb: mb, msg: m, st: st}, nil
}

// wholeRefusal is why the whole message cannot be served, or nil. The
// same checks, in the same order, as WebDAV's GET.
func (h *Handler) wholeRefusal(m *mailbox.Message) *limits.Error {
	if m.Size > h.opts.MaxMessageSize {
		return limits.ResponseTooLarge("max-message-size", h.opts.MaxMessageSize, m.Size)
	}
	if m.Size > h.opts.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.opts.MaxResponseSize, m.Size)
	}
	return nil
}

// partRefusal is why a part cannot be downloaded, or nil: a part larger
// than a message may be is refused like such a message, and no answer
// exceeds max-response-size.
func (h *Handler) partRefusal(p *mailbox.Part) *limits.Error {
	if p.DecodedSize > h.opts.MaxMessageSize {
		return limits.ResponseTooLarge("max-message-size", h.opts.MaxMessageSize, p.DecodedSize)
	}
	if p.DecodedSize > h.opts.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.opts.MaxResponseSize, p.DecodedSize)
	}
	return nil
}

func (h *Handler) partURL(ref *msgRef, i int, inline bool) string {
	v := url.Values{"f": {ref.msg.Folder}, "n": {ref.msg.Name}, "id": {strconv.FormatUint(ref.msg.ID, 10)}, "i": {strconv.Itoa(i)}}
	if inline {
		v.Set("inline", "1")
	}
	return h.opts.Prefix + "part?" + v.Encode()
}

func (h *Handler) frameURL(ref *msgRef, remote bool) string {
	v := url.Values{"f": {ref.msg.Folder}, "n": {ref.msg.Name}, "id": {strconv.FormatUint(ref.msg.ID, 10)}}
	if remote {
		v.Set("remote", "1")
	}
	return h.opts.Prefix + "body?" + v.Encode()
}

// renderOptions are the options of convert.RenderBody for ref: cid:
// references resolve to the inline URL of the image part with that
// Content-ID when it may be served.
func (h *Handler) renderOptions(ref *msgRef, remote bool) convert.RenderOptions {
	return convert.RenderOptions{SanitizeOptions: convert.SanitizeOptions{
		AllowRemoteImages: remote,
		CID: func(id string) (string, bool) {
			want := convert.NormalizeContentID(id)
			if want == "" {
				return "", false
			}
			for i := range ref.st.Parts {
				p := &ref.st.Parts[i]
				if convert.NormalizeContentID(p.ContentID) != want {
					continue
				}
				if !inlineImageTypes[p.ContentType] || h.partRefusal(p) != nil {
					return "", false
				}
				return h.partURL(ref, i, true), true
			}
			return "", false
		},
	}}
}

// renderBody renders ref's body with the store's content.
func (h *Handler) renderBody(ctx context.Context, w io.Writer, ref *msgRef, remote bool) (convert.RenderInfo, error) {
	c, err := ref.mb.Open(ctx, ref.msg.Folder, ref.msg.Name)
	if err != nil {
		return convert.RenderInfo{}, err
	}
	defer c.Close()
	return convert.RenderBody(w, c, ref.st, h.renderOptions(ref, remote))
}

func (h *Handler) messagePage(w http.ResponseWriter, r *http.Request) error {
	ref, err := h.loadMessage(r, false)
	if err != nil {
		return err
	}
	m := &ref.msg
	remote := r.URL.Query().Get("remote") == "1"
	// The body is rendered here once into a counter to learn what the
	// frame will show (blocked images) before the page is written.
	info, err := h.renderBody(r.Context(), io.Discard, ref, remote)
	if err != nil {
		return err
	}
	name, addr := splitFrom(m.Envelope.From)
	from := name
	if addr != name {
		from = name + " <" + addr + ">"
	}
	d := messageDate(m)
	f, err := ref.mb.Folder(r.Context(), m.Folder)
	if err != nil {
		return err
	}
	v := &messageView{
		Folder: m.Folder, FolderLabel: folderFullLabel(m.Folder), BackURL: h.folderURL(m.Folder, listQuery{}),
		Name: m.Name, ID: strconv.FormatUint(m.ID, 10),
		Subject: m.Envelope.Subject, From: from, To: m.Envelope.To, Cc: m.Envelope.Cc,
		Date: d.Local().Format("Monday, 2 January 2006 15:04 MST"), DateISO: d.Format(time.RFC3339),
		Size:   sizeText(m.Size),
		Unread: m.Flags&mailbox.FlagSeen == 0, Flagged: m.Flags&mailbox.FlagFlagged != 0,
		InTrash:  h.isTrash(f),
		FrameURL: h.frameURL(ref, remote), Blocked: info.BlockedImages, RemoteShown: remote,
	}
	if v.Subject == "" {
		v.Subject = "(no subject)"
	}
	if info.BlockedImages > 0 {
		q := r.URL.Query()
		q.Set("remote", "1")
		v.RemoteURL = h.opts.Prefix + "msg?" + q.Encode()
	}
	if le := h.wholeRefusal(m); le != nil {
		v.EMLRefused = wholeExplanation(le)
		v.Notes = append(v.Notes, v.EMLRefused+" The headers, the text and the parts within the limits are shown below.")
	} else {
		v.EMLURL = h.davURL(whoFrom(r.Context()).User, m.Folder, m.Name)
	}
	if len(ref.st.Problems) > 0 {
		v.Notes = append(v.Notes, "This message is malformed ("+strings.Join(ref.st.Problems, ", ")+"); it is shown as well as it could be read.")
	}
	v.Attachments = h.attachments(ref, info.Part)
	tree, err := h.folderTree(r.Context(), ref.mb, m.Folder)
	if err != nil {
		return err
	}
	for _, t := range tree {
		if t.Path != m.Folder {
			t.Label = folderFullLabel(t.Path)
			v.MoveTargets = append(v.MoveTargets, t)
		}
	}
	h.page(w, r, http.StatusOK, "message", pageData{Title: v.Subject, Folders: tree, Message: v})
	return nil
}

// wholeExplanation says in plain words why the original cannot be
// downloaded.
func wholeExplanation(le *limits.Error) string {
	return fmt.Sprintf("This message is %s, over the limit %s of %s, so it cannot be downloaded whole (it was stored before the limit was set, or by another program).",
		sizeText(le.Size), le.Limit, sizeText(le.Value))
}

// attachments lists the parts a person may want to save: the message's
// attachments as WebDAV lists them (convert.Attachments: the same names
// as X-MS-ENUMATTS, an attached message as one file), but the body.
func (h *Handler) attachments(ref *msgRef, body int) []attachment {
	var out []attachment
	for _, ca := range convert.Attachments(ref.st.Parts) {
		i := ca.Part
		if i == body {
			continue
		}
		p := &ref.st.Parts[i]
		a := attachment{Name: ca.Name, Type: p.ContentType, Size: sizeText(p.DecodedSize)}
		if le := h.partRefusal(p); le != nil {
			a.Refused = fmt.Sprintf("Not downloadable: %s is over the limit %s of %s.", sizeText(le.Size), le.Limit, sizeText(le.Value))
		} else {
			a.URL = h.partURL(ref, i, false)
		}
		out = append(out, a)
	}
	return out
}

// displayFileName is a part's file name, cleaned to be shown and used
// as a download name: no path separators, no control characters, at
// most 200 bytes; a part without one gets a name from its position and
// type.
func displayFileName(p *mailbox.Part, i int) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\':
			return '_'
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, p.FileName)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	if len(name) > 200 { // file systems allow 255 bytes; leave room for "(1)"
		name = strings.ToValidUTF8(name[:200], "")
	}
	if name != "" {
		return name
	}
	ext := ".bin"
	switch {
	case p.ContentType == "message/rfc822" || p.ContentType == "message/global":
		ext = ".eml"
	case strings.HasPrefix(p.ContentType, "text/"):
		ext = ".txt"
	default:
		if exts, _ := mime.ExtensionsByType(p.ContentType); len(exts) > 0 {
			ext = exts[0]
		}
	}
	return "part-" + strconv.Itoa(i) + ext
}

// davURL is the message's URL in the WebDAV tree, where GET serves the
// original under WebDAV's own limits.
func (h *Handler) davURL(user, folder, name string) string {
	segs := strings.Split(folder, "/")
	if segs[0] == mailbox.Inbox {
		segs[0] = "Inbox"
	}
	var b strings.Builder
	b.WriteString(h.opts.DAVPrefix)
	b.WriteString(url.PathEscape(user))
	for _, s := range append(segs, name) {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// bodyFrame serves the sanitized body as its own document, for the
// message page's sandboxed iframe.
func (h *Handler) bodyFrame(w http.ResponseWriter, r *http.Request) error {
	ref, err := h.loadMessage(r, true)
	if err != nil {
		return err
	}
	remote := r.URL.Query().Get("remote") == "1"
	var b bytes.Buffer
	b.WriteString(frameHead)
	if _, err := h.renderBody(r.Context(), &b, ref, remote); err != nil {
		return err
	}
	b.WriteString(frameTail)
	csp := frameCSP
	if remote {
		csp = frameCSPRemote
	}
	setPageHeaders(w.Header(), csp, "SAMEORIGIN")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
	return nil
}

// partDownload serves one decoded part: refused from the index, before
// the message is opened, when it is over a limit; otherwise exactly
// DecodedSize bytes with that Content-Length.
func (h *Handler) partDownload(w http.ResponseWriter, r *http.Request) error {
	ref, err := h.loadMessage(r, true)
	if err != nil {
		return err
	}
	i, err := strconv.Atoi(r.URL.Query().Get("i"))
	if err != nil || i < 0 || i >= len(ref.st.Parts) {
		return errorf(http.StatusNotFound, "This message has no such part.")
	}
	p := &ref.st.Parts[i]
	if strings.HasPrefix(p.ContentType, "multipart/") {
		return errorf(http.StatusNotFound, "This part is a container; download the parts inside it.")
	}
	if le := h.partRefusal(p); le != nil {
		return le
	}
	c, err := ref.mb.Open(r.Context(), ref.msg.Folder, ref.msg.Name)
	if err != nil {
		return err
	}
	defer c.Close()
	inline := r.URL.Query().Get("inline") == "1" && inlineImageTypes[p.ContentType]
	disp := "attachment"
	if inline {
		disp = "inline"
	}
	ct := mime.FormatMediaType(p.ContentType, nil)
	if ct == "" {
		ct = "application/octet-stream"
	}
	name := displayFileName(p, i)
	for _, ca := range convert.Attachments(ref.st.Parts) {
		if ca.Part == i {
			name = ca.Name // the name WebDAV gives it too
			break
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	hd.Set("Content-Security-Policy", partCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "private, no-cache")
	// ServeContent: exact Content-Length (DecodedSize), Range for resumed
	// downloads, decoding with fixed buffers and seeking into base64
	// without decoding what comes before (convert.PartReader).
	http.ServeContent(w, r, "", ref.msg.Modified, convert.NewPartReader(c, p))
	return nil
}
