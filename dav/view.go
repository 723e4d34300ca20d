package dav

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// The HTML view of a message: what Exchange serves on a GET of a message
// URL without "Translate: f" (OWA's reading view, exchange-webdav.md
// §3.1). Generic WebDAV clients send no Translate header either and must
// get the raw message (a mount copies files byte for byte), so the view
// is served only to whom it is meant for:
//
//   - a request with "Translate: t", or
//   - a browser in a forms-login (OWA) session: no Translate header and
//     an Accept header that names text/html.
//
// Everything else gets the raw message/rfc822 bytes. The view holds the
// headers, the links to the attachments (their GET URLs) and the body
// converted to UTF-8 and sanitized (convert.RenderBody), with cid: images
// pointing at the attachments and remote images blocked. Its exact size is
// learnt by rendering it once into a counter, so max-response-size is
// checked before the first byte and Content-Length is exact.

func wantsView(r *http.Request) bool {
	tr := strings.TrimSpace(r.Header.Get("Translate"))
	if strings.EqualFold(tr, "t") {
		return true
	}
	if tr != "" {
		return false
	}
	return reqlog.From(r.Context()).Session && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// viewCSP forbids scripts, frames, forms and every remote load: images
// come from the gateway (attachments) or data: URLs, styles only inline.
const viewCSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"

func (h *Handler) getView(w http.ResponseWriter, r *http.Request, rq *request) error {
	m := rq.target.msg
	st, err := rq.mb.Structure(r.Context(), m.Folder, m.Name)
	if err != nil {
		return err
	}
	c, err := rq.mb.Open(r.Context(), m.Folder, m.Name)
	if err != nil {
		return err
	}
	defer c.Close()
	// Links are relative to the message URL: its last segment, then the
	// attachment name.
	self := r.URL.EscapedPath()
	self = self[strings.LastIndexByte(self, '/')+1:]
	v := &view{h: h, m: m, st: st, c: c, self: self, atts: convert.Attachments(st.Parts)}
	var count countWriter
	if err := v.write(&count); err != nil {
		return err
	}
	if count.n > h.cfg.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, count.n)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.FormatInt(count.n, 10))
	hd.Set("Content-Security-Policy", viewCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "private, no-cache")
	hd.Set("Vary", "Translate, Accept")
	if r.Method == http.MethodHead {
		return nil
	}
	if err := v.write(w); err != nil {
		reqlog.From(r.Context()).Err = err // headers are out
	}
	return nil
}

type view struct {
	h    *Handler
	m    *mailbox.Message
	st   *mailbox.Structure
	c    io.ReaderAt
	self string
	atts []convert.Attachment
}

func (v *view) attURL(a *convert.Attachment) string {
	return v.self + "/" + string(appendEscaped(nil, a.Name))
}

// write renders the view; it is deterministic, so two renderings have the
// same length.
func (v *view) write(out io.Writer) error {
	bw := bufio.NewWriter(out)
	e := &v.m.Envelope
	fmt.Fprintf(bw, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>%s</title>\n", html.EscapeString(e.Subject))
	io.WriteString(bw, "<style>body{font:15px/1.45 system-ui,sans-serif;margin:1em;color:#111}table.h th{text-align:left;padding-right:1em;color:#555;font-weight:normal}"+
		".dm-note{background:#fff4cc;padding:.4em .6em;border-radius:4px}ul.a{padding-left:1.2em}hr{border:0;border-top:1px solid #ccc}</style></head><body>\n<table class=\"h\">\n")
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(bw, "<tr><th>%s</th><td>%s</td></tr>\n", k, html.EscapeString(val))
		}
	}
	row("From", e.From)
	row("To", e.To)
	row("Cc", e.Cc)
	if !e.Date.IsZero() {
		row("Date", e.Date.UTC().Format("Mon, 02 Jan 2006 15:04:05 MST"))
	}
	row("Subject", e.Subject)
	io.WriteString(bw, "</table>\n")
	if v.m.Size > v.h.cfg.MaxMessageSize {
		fmt.Fprintf(bw, "<p class=\"dm-note\" role=\"note\">This message is %s, over this server's message size limit (max-message-size %s): it cannot be downloaded whole. Its text and the attachments within the limits below can still be read.</p>\n",
			limits.FormatSize(v.m.Size), limits.FormatSize(v.h.cfg.MaxMessageSize))
	}
	if len(v.st.Problems) > 0 {
		// Malformed MIME degrades with a clear marker (issue 4).
		fmt.Fprintf(bw, "<p class=\"dm-note\" role=\"note\">This message is malformed (%s); it is shown as well as it could be read. The raw message is unchanged.</p>\n",
			html.EscapeString(strings.Join(v.st.Problems, ", ")))
	}
	cids := map[string]string{}
	if len(v.atts) > 0 {
		io.WriteString(bw, "<ul class=\"a\">\n")
		for i := range v.atts {
			a := &v.atts[i]
			p := &v.st.Parts[a.Part]
			if id := convert.NormalizeContentID(p.ContentID); id != "" && v.h.attRefusal(&http.Request{Header: http.Header{}}, p.DecodedSize) == nil {
				cids[id] = v.attURL(a)
			}
			if refusal := v.h.attRefusal(&http.Request{Header: http.Header{}}, p.DecodedSize); refusal != nil {
				fmt.Fprintf(bw, "<li>%s (%s, %s) — not available: %s</li>\n", html.EscapeString(a.Name), html.EscapeString(p.ContentType), limits.FormatSize(p.DecodedSize), html.EscapeString(refusal.Error()))
				continue
			}
			fmt.Fprintf(bw, "<li><a href=\"%s\">%s</a> (%s, %s)</li>\n", html.EscapeString(v.attURL(a)), html.EscapeString(a.Name), html.EscapeString(p.ContentType), limits.FormatSize(p.DecodedSize))
		}
		io.WriteString(bw, "</ul>\n")
	}
	io.WriteString(bw, "<hr>\n")
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := convert.RenderBody(out, v.c, v.st, convert.RenderOptions{SanitizeOptions: convert.SanitizeOptions{
		CID: func(id string) (string, bool) {
			u, ok := cids[convert.NormalizeContentID(id)]
			return u, ok
		},
	}})
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, "</body></html>\n")
	return err
}
