package web

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox"
)

// pageNames are the page templates; each is templates/<name>.html plus
// the shared templates/layout.html.
var pageNames = []string{"login", "folder", "message", "admin", "error"}

// pageCSP is the Content-Security-Policy of every page: scripts and
// styles only from the UI's own static files (no inline script or style
// at all), images from the gateway and data: URLs, frames only from the
// gateway (the message body frame), forms only to the gateway, never
// framed by another site.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) parseTemplates() error {
	h.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return err
		}
		h.pages[name] = t
	}
	return nil
}

// pageData is what every page template gets; each page uses its part.
type pageData struct {
	Title     string
	Prefix    string
	Who       who
	Error     string
	Notice    string
	Next      string // login: where to go afterwards
	LoginName string // login: the name typed, after a failure

	Folders []folderItem // the folder tree (folder and message pages)
	Folder  *folderView
	Message *messageView
	Admin   *adminView
}

// page renders a page template into a buffer first (so that a template
// error is a clean 500, not half a page) and sends it with the page
// headers.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, code int, name string, d pageData) {
	d.Prefix = h.opts.Prefix
	if d.Who.User == "" {
		d.Who = whoFrom(r.Context())
	}
	var b bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&b, "layout", d); err != nil {
		e := reqlog.From(r.Context())
		e.Err = err
		e.Log.Error().Err(err).Str("page", name).Msg("rendering a page")
		code = http.StatusInternalServerError
		b.Reset()
		b.WriteString("500 Internal Server Error (request " + template.HTMLEscapeString(e.ID) + ")\n")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	setPageHeaders(w.Header(), pageCSP, "DENY")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
}

// setPageHeaders sets what every HTML answer carries: its CSP, no
// caching (pages show mail), no sniffing, no referrer beyond the
// gateway, and whether it may be framed (frameOptions: DENY, or
// SAMEORIGIN for the message body frame).
func setPageHeaders(h http.Header, csp, frameOptions string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", frameOptions)
	h.Set("Referrer-Policy", "same-origin")
}

// listQuery is the state of a folder listing carried in its URL.
type listQuery struct {
	Sort string // "date" (default), "from", "subject", "size"
	Asc  bool   // ascending; the default is descending (newest first)
	Page int    // 1-based
	Q    string // search text
}

func (q listQuery) values(folder string) url.Values {
	v := url.Values{"f": {folder}}
	if q.Sort != "" && q.Sort != "date" {
		v.Set("sort", q.Sort)
	}
	if q.Asc {
		v.Set("dir", "asc")
	}
	if q.Page > 1 {
		v.Set("p", strconv.Itoa(q.Page))
	}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	return v
}

func (h *Handler) folderURL(folder string, q listQuery) string {
	return h.opts.Prefix + "folder?" + q.values(folder).Encode()
}

func (h *Handler) messageURL(folder, name string) string {
	return h.opts.Prefix + "msg?" + url.Values{"f": {folder}, "n": {name}}.Encode()
}

// folderLabel is how a folder path is shown: INBOX as "Inbox", the rest
// by their last segment (the tree shows the nesting).
func folderLabel(path string) string {
	if path == mailbox.Inbox {
		return "Inbox"
	}
	if i := lastSlash(path); i >= 0 {
		return path[i+1:]
	}
	return path
}

// folderFullLabel is a folder path for a person: "Inbox", "Archive / 2024".
func folderFullLabel(path string) string {
	if path == mailbox.Inbox {
		return "Inbox"
	}
	out := []byte{}
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, " / "...)
			continue
		}
		out = append(out, path[i])
	}
	if len(path) > 6 && path[:6] == mailbox.Inbox+"/" {
		return "Inbox" + string(out[5:])
	}
	return string(out)
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}
