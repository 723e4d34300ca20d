package dav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// maxBatchTargets caps the targets of one B* request. Evolution batches
// a fixed, small number of hrefs (exchange-webdav.md §3.2); the seeds'
// failure 2 was one request carrying thousands of items, each doing
// per-node work. Over the cap the request is refused with 413 before any
// target is touched.
const maxBatchTargets = 1000

// batchBody is a B* request body: read whole (it is capped at
// max-xml-bytes) so the target list and the method's own part are parsed
// from the same bytes.
type batchBody struct {
	raw     []byte
	targets []string
}

// readBatch reads the body and its <D:target><D:href>… list (RFC-less:
// Exchange SDK BPROPFIND, BPROPPATCH, BDELETE, BMOVE, BCOPY).
func (h *Handler) readBatch(r *http.Request) (*batchBody, error) {
	raw, err := io.ReadAll(limits.NewReader(r.Body, "max-xml-bytes", h.cfg.MaxXMLBytes))
	if err != nil {
		return nil, err
	}
	bb := &batchBody{raw: raw}
	x := h.newXMLReader(bytes.NewReader(raw))
	var inTarget, inHref bool
	var href strings.Builder
	for {
		t, err := x.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Space == nsDAV && t.Name.Local == "target":
				inTarget = true
			case inTarget && t.Name.Space == nsDAV && t.Name.Local == "href":
				inHref = true
				href.Reset()
			}
		case xml.EndElement:
			switch {
			case inHref && t.Name.Local == "href":
				inHref = false
				bb.targets = append(bb.targets, strings.TrimSpace(href.String()))
				if len(bb.targets) > maxBatchTargets {
					return nil, limits.TooComplex("max-batch-targets", maxBatchTargets, int64(len(bb.targets)), "targets")
				}
			case t.Name.Space == nsDAV && t.Name.Local == "target":
				inTarget = false
			}
		case xml.CharData:
			if inHref {
				href.Write(t)
			}
		}
	}
	if len(bb.targets) == 0 {
		return nil, errorf(http.StatusBadRequest, "%s needs a DAV:target with at least one DAV:href", r.Method)
	}
	return bb, nil
}

// targetRequest resolves one target href, relative to the request URI
// (a folder) or absolute, within the user's mailbox.
func (h *Handler) targetRequest(r *http.Request, rq *request, href string) (*request, string, error) {
	base := r.URL.EscapedPath()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	u, err := url.Parse(href)
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, "invalid target href %q", href)
	}
	ref, _ := url.Parse(base)
	p := ref.ResolveReference(u).EscapedPath()
	user, segs, trailing, ok := splitPath(p, h.cfg.Prefix)
	if !ok {
		return nil, p, errorf(http.StatusBadRequest, "invalid target href %q", href)
	}
	if user != rq.user {
		return nil, p, errorf(http.StatusForbidden, "target %q is outside your mailbox", href)
	}
	t := &request{user: rq.user, mb: rq.mb}
	if err := h.resolve(r.Context(), t, segs, trailing); err != nil {
		return nil, p, err
	}
	return t, p, nil
}

// appendStatusResponse writes a DAV:response with a bare status.
func appendStatusResponse(b []byte, href string, err error, location string) []byte {
	code := http.StatusOK
	msg := ""
	if err != nil {
		code, msg = statusOf(err)
	}
	b = append(b, "<a:response><a:href>"...)
	b = appendXMLText(b, href)
	b = append(b, "</a:href><a:status>HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "</a:status>"...)
	if location != "" {
		b = append(b, "<a:location><a:href>"...)
		b = appendXMLText(b, location)
		b = append(b, "</a:href></a:location>"...)
	}
	if msg != "" && code >= 400 {
		b = append(b, "<a:responsedescription>"...)
		b = appendXMLText(b, msg)
		b = append(b, "</a:responsedescription>"...)
	}
	return append(b, "</a:response>\n"...)
}

func writeMultistatusBytes(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(b)
	return nil
}

// batch dispatches the B* methods. Each target is handled like the
// single-resource method (same locks, same errors), and reported in its
// own DAV:response; the request URI must be a folder.
func (h *Handler) batch(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !rq.target.isFolder {
		return errorf(http.StatusNotFound, "%s needs a folder URI", r.Method)
	}
	bb, err := h.readBatch(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	host := baseURL(r)
	b := []byte(multistatusOpen)
	switch r.Method {
	case "BPROPFIND":
		req, err := h.parsePropfind(bytes.NewReader(bb.raw))
		if err != nil {
			return err
		}
		ms := h.newPropfindRenderer(r, rq, &req)
		var out bytes.Buffer
		ms.buf = ms.buf[:0]
		for _, href := range bb.targets {
			t, p, err := h.targetRequest(r, rq, href)
			if err == nil && !t.target.exists {
				err = mailbox.ErrNotFound
			}
			if err != nil {
				ms.buf = appendStatusResponse(ms.buf, host+p, err, "")
				continue
			}
			res := &resource{msg: t.target.msg, lockPath: t.lockPath()}
			if t.target.isFolder {
				f := t.target.folder
				res = &resource{folder: &f, lockPath: t.lockPath()}
			}
			hrefB := []byte(host + strings.TrimSuffix(p, "/"))
			if err := ms.entry(&out, res, hrefB); err != nil {
				return err
			}
		}
		out.Write(ms.buf)
		b = append(b, out.Bytes()...)
	case "BPROPPATCH":
		patches, err := h.parsePropertyUpdate(bytes.NewReader(bb.raw))
		if err != nil {
			return err
		}
		brief := isBrief(r)
		for _, href := range bb.targets {
			t, p, err := h.targetRequest(r, rq, href)
			if err == nil {
				var parents []string
				if !t.target.exists {
					if perr := ensureMessageParent(&t.target); perr != nil {
						err = mailbox.ErrNotFound
					}
					parents = []string{t.lockPathFolder(t.target.parent)}
				}
				if err == nil {
					err = h.preconditions(r, t, []string{t.lockPath()}, nil, parents)
				}
			}
			if err != nil {
				b = appendStatusResponse(b, host+p, err, "")
				continue
			}
			res, err := h.applyPropPatch(ctx, t, patches)
			if err != nil {
				b = appendStatusResponse(b, host+p, err, "")
				continue
			}
			if !(brief && !res.failed) {
				b = appendPatchResponse(b, []byte(host+p), patches, res, brief)
			}
		}
	case "BDELETE":
		for _, href := range bb.targets {
			t, p, err := h.targetRequest(r, rq, href)
			if err == nil {
				err = h.deleteTarget(r, t)
			}
			if err != nil { // BDELETE reports the failed targets (§3.2)
				b = appendStatusResponse(b, host+p, err, "")
			}
		}
	case "BMOVE", "BCOPY":
		dst, err := h.destination(r, rq)
		if err != nil {
			return err
		}
		if !dst.target.isFolder {
			return errorf(http.StatusConflict, "the Destination of %s must be a folder", r.Method)
		}
		allowRename := strings.EqualFold(strings.TrimSpace(r.Header.Get("Allow-Rename")), "t")
		overwrite := !strings.EqualFold(strings.TrimSpace(r.Header.Get("Overwrite")), "f")
		for _, href := range bb.targets {
			t, p, err := h.targetRequest(r, rq, href)
			loc := ""
			if err == nil {
				loc, err = h.moveTarget(r, t, dst, r.Method == "BMOVE", overwrite, allowRename)
			}
			b = appendStatusResponse(b, host+p, err, loc)
		}
	}
	b = append(b, multistatusClose...)
	if int64(len(b)) > h.cfg.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, int64(len(b)))
	}
	return writeMultistatusBytes(w, b)
}

// deleteTarget deletes one message of a BDELETE, with DELETE's locks.
func (h *Handler) deleteTarget(r *http.Request, t *request) error {
	tg := &t.target
	if !tg.exists {
		return mailbox.ErrNotFound
	}
	if tg.isFolder {
		return errorf(http.StatusForbidden, "BDELETE deletes messages; DELETE a folder by itself")
	}
	if err := h.preconditions(r, t, []string{t.lockPath()}, nil, []string{t.lockPathFolder(tg.parent)}); err != nil {
		return err
	}
	if err := t.mb.Delete(r.Context(), tg.parent, tg.name); err != nil {
		return err
	}
	h.locks.removeTree(t.lockPath())
	return nil
}

// moveTarget moves or copies one message of a BMOVE/BCOPY into the
// destination folder, keeping its name or, with Allow-Rename, a free one.
func (h *Handler) moveTarget(r *http.Request, t, dst *request, move, overwrite, allowRename bool) (string, error) {
	tg := &t.target
	if !tg.exists || tg.msg == nil {
		if tg.isFolder {
			return "", errorf(http.StatusForbidden, "%s moves messages; MOVE a folder by itself", r.Method)
		}
		return "", mailbox.ErrNotFound
	}
	folder := dst.target.folder.Path
	if folder == "" {
		return "", errorf(http.StatusConflict, "messages are stored in folders, not at the mailbox root")
	}
	name := tg.name
	_, statErr := t.mb.Stat(r.Context(), folder, name)
	exists := statErr == nil
	if exists && allowRename {
		name = mailbox.UniqueName(name, func(n string) bool {
			_, err := t.mb.Stat(r.Context(), folder, n)
			return err == nil
		})
		exists = false
	}
	if exists && !overwrite {
		return "", errorf(http.StatusPreconditionFailed, "the destination exists and Overwrite is F")
	}
	if folder == tg.parent && name == tg.name {
		return "", errorf(http.StatusForbidden, "the source and the destination are the same")
	}
	paths := []string{t.lockPathMsg(folder, name)}
	parents := []string{t.lockPathFolder(folder)}
	if move {
		paths = append(paths, t.lockPath())
		parents = append(parents, t.lockPathFolder(tg.parent))
	}
	if err := h.preconditions(r, t, paths, nil, parents); err != nil {
		return "", err
	}
	var err error
	if move {
		_, err = t.mb.Move(r.Context(), tg.parent, tg.name, folder, name, overwrite)
		if err == nil {
			h.locks.removeTree(t.lockPath())
		}
	} else {
		_, err = t.mb.Copy(r.Context(), tg.parent, tg.name, folder, name, overwrite)
	}
	if err != nil {
		if errors.Is(err, mailbox.ErrExists) {
			return "", errorf(http.StatusPreconditionFailed, "the destination exists")
		}
		return "", err
	}
	ms := msRenderer{rq: t, base: baseURL(r) + h.cfg.Prefix}
	return string(append(append(ms.hrefFolder(folder), '/'), appendEscaped(nil, name)...)), nil
}
