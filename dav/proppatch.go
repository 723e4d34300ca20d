package dav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/mailbox"
)

func xmlName(p mailbox.Prop) xml.Name { return xml.Name{Space: p.Space, Local: p.Local} }

var propRead = xml.Name{Space: nsHTTPMail, Local: "read"}

// proppatch applies a DAV:propertyupdate (RFC 4918 §9.2): all
// instructions or none. urn:schemas:httpmail:read maps to the Seen flag;
// other live properties are protected (403); everything else is a dead
// property stored in the index.
func (h *Handler) proppatch(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if !t.exists {
		return errorf(http.StatusNotFound, "no folder or message at this URL")
	}
	if err := h.preconditions(r, rq, []string{rq.lockPath()}, nil, nil); err != nil {
		return err
	}
	patches, err := h.parsePropertyUpdate(r.Body)
	if err != nil {
		return err
	}
	status := make([]int, len(patches))
	failed := false
	var set []mailbox.Prop
	var remove []mailbox.PropName
	var seen *bool
	// Instructions apply in document order (RFC 4918 §9.2): for a
	// property named twice, the last instruction decides.
	last := make(map[xml.Name]int, len(patches))
	for i, p := range patches {
		last[xmlName(p.prop)] = i
	}
	for i, p := range patches {
		if last[xmlName(p.prop)] != i {
			status[i] = http.StatusOK
			continue
		}
		n := xmlName(p.prop)
		switch {
		case n == propRead && t.msg != nil:
			v := !p.remove && parseBoolValue(p.prop.XML)
			seen = &v
			status[i] = http.StatusOK
		case protectedProp(n):
			status[i] = http.StatusForbidden
			failed = true
		case p.remove:
			remove = append(remove, mailbox.PropName{Space: n.Space, Local: n.Local})
			status[i] = http.StatusOK
		default:
			set = append(set, p.prop)
			status[i] = http.StatusOK
		}
	}
	folder, name := t.parent, t.name
	if t.isFolder {
		folder, name = t.folder.Path, ""
	}
	if !failed && (len(set) > 0 || len(remove) > 0) {
		if err := rq.mb.PatchProps(r.Context(), folder, name, set, remove); err != nil {
			if !errors.Is(err, mailbox.ErrTooManyProps) {
				return err
			}
			for i := range status {
				status[i] = http.StatusInsufficientStorage
			}
			failed = true
			seen = nil
		}
	}
	if failed {
		for i := range status {
			if status[i] == http.StatusOK {
				status[i] = http.StatusFailedDependency
			}
		}
	} else if seen != nil {
		if _, err := rq.mb.SetFlags(r.Context(), folder, name, mailbox.FlagSeen, *seen); err != nil {
			return err
		}
	}
	b := []byte(multistatusOpen)
	b = append(b, "<a:response><a:href>"...)
	b = append(b, baseURL(r)...)
	b = append(b, r.URL.EscapedPath()...)
	b = append(b, "</a:href>"...)
	for _, code := range []int{http.StatusOK, http.StatusForbidden, http.StatusFailedDependency, http.StatusInsufficientStorage} {
		any := false
		for i, p := range patches {
			if status[i] != code {
				continue
			}
			if !any {
				b = append(b, "<a:propstat><a:prop>"...)
				any = true
			}
			b = appendEmptyProp(b, xmlName(p.prop))
		}
		if any {
			b = append(b, "</a:prop><a:status>HTTP/1.1 "...)
			b = strconv.AppendInt(b, int64(code), 10)
			b = append(b, ' ')
			b = append(b, http.StatusText(code)...)
			b = append(b, "</a:status>"...)
			if code == http.StatusForbidden {
				b = append(b, "<a:error><a:cannot-modify-protected-property/></a:error>"...)
			}
			b = append(b, "</a:propstat>"...)
		}
	}
	b = append(b, "</a:response>\n"...)
	b = append(b, multistatusClose...)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(b)
	return nil
}

// parseBoolValue reads an Exchange boolean: "1"/"0", "true"/"false".
func parseBoolValue(s string) bool {
	s = strings.TrimSpace(s)
	return s == "1" || strings.EqualFold(s, "true")
}
