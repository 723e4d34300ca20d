package dav

import (
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// preconditions checks If (RFC 4918 §10.4) and then the locks a write
// touches. paths are written, trees are removed or replaced with all
// their members, parents gain or lose a member.
func (h *Handler) preconditions(r *http.Request, rq *request, paths, trees, parents []string) error {
	tokens, err := h.checkIf(r, rq)
	if err != nil {
		return err
	}
	return h.locks.check(tokens, paths, trees, parents)
}

// checkETagHeaders applies If-Match and If-None-Match (RFC 7232 §3.1,
// §3.2) to a write. x/net/webdav ignores them on PUT; we don't.
func checkETagHeaders(r *http.Request, current string) error {
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatches(im, current) {
			return errorf(http.StatusPreconditionFailed, "If-Match does not match the current entity tag")
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, current) {
			return errorf(http.StatusPreconditionFailed, "If-None-Match matches the current entity tag")
		}
	}
	return nil
}

func etagListMatches(list, current string) bool {
	if current == "" {
		return false
	}
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || e == current {
			return true
		}
	}
	return false
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if t.isFolder {
		w.Header().Set("Allow", "OPTIONS, PROPFIND, PROPPATCH, DELETE, MKCOL, COPY, MOVE, LOCK, UNLOCK")
		return errorf(http.StatusMethodNotAllowed, "PUT on a folder: a folder holds messages, it has no content of its own")
	}
	if err := ensureMessageParent(t); err != nil {
		return err
	}
	// Refuse before reading a byte when the declared length is over the
	// limit: the client learns at once and no bandwidth is wasted.
	if r.ContentLength > h.cfg.MaxMessageSize {
		return limits.TooLarge("max-message-size", h.cfg.MaxMessageSize, r.ContentLength)
	}
	cur := ""
	if t.msg != nil {
		cur = etagOf(t.msg.ID, t.msg.Size)
	}
	if err := checkETagHeaders(r, cur); err != nil {
		return err
	}
	var parents []string
	if !t.exists {
		parents = []string{rq.lockPathFolder(t.parent)}
	}
	if err := h.preconditions(r, rq, []string{rq.lockPath()}, nil, parents); err != nil {
		return err
	}
	// Chunked bodies are counted while streaming; the store removes the
	// partial file when the limit trips (limits.Reader fails loudly).
	opts := mailbox.AppendOptions{Name: t.name, Replace: true, MaxSize: h.cfg.MaxMessageSize}
	if t.msg != nil {
		// PUT replaces the content, not the state: flags set earlier (by
		// PROPPATCH before PUT, as DavMail's APPEND does, §11 step 17)
		// stay, like the dead properties the store keeps.
		opts.Flags = t.msg.Flags
	}
	m, err := rq.mb.Append(r.Context(), t.parent, r.Body, opts)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etagOf(m.ID, m.Size))
	w.Header().Set("Content-Length", "0")
	if t.exists {
		// 200, not 204: DavMail 6.0.1's APPEND and send PUT over the item
		// their PROPPATCH created and accept only 200 or 201
		// (exchange-webdav.md §11 #17); RFC 4918 §9.7.1 allows either.
		w.WriteHeader(http.StatusOK)
	} else {
		w.Header().Set("Location", baseURL(r)+r.URL.EscapedPath())
		w.WriteHeader(http.StatusCreated)
	}
	return nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if !t.exists {
		return errorf(http.StatusNotFound, "no folder or message at this URL")
	}
	if d := r.Header.Get("Depth"); t.isFolder && d != "" && !strings.EqualFold(d, "infinity") {
		// RFC 4918 §9.6.1: DELETE on a collection acts as Depth infinity.
		return errorf(http.StatusBadRequest, "DELETE of a folder needs Depth: infinity")
	}
	lp := rq.lockPath()
	var trees []string
	if t.isFolder {
		if t.folder.Path == "" || t.folder.Path == mailbox.Inbox {
			return errorf(http.StatusForbidden, "the mailbox root and Inbox cannot be deleted")
		}
		trees = []string{lp}
	}
	if err := h.preconditions(r, rq, []string{lp}, trees, []string{rq.lockPathFolder(t.parent)}); err != nil {
		return err
	}
	var err error
	if t.isFolder {
		err = rq.mb.DeleteFolder(r.Context(), t.folder.Path)
	} else {
		err = rq.mb.Delete(r.Context(), t.parent, t.name)
	}
	if err != nil {
		return err
	}
	h.locks.removeTree(lp)
	// 200, not 204: DavMail treats 204 as a failure (exchange-webdav.md
	// §0.3 #6); generic clients accept any 2xx.
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) mkcol(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if t.exists {
		w.Header().Set("Allow", allowMethods)
		return errorf(http.StatusMethodNotAllowed, "a folder or message already exists at this URL")
	}
	if !t.parentExists {
		return errorf(http.StatusConflict, "the parent folder does not exist")
	}
	var patches []propPatch
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// RFC 4918 §9.3: a body we don't understand is 415. Exchange
		// clients send a DAV:propertyupdate (outlookfolderclass), which we
		// accept and store (exchange-webdav.md §3.2 MKCOL).
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "text/xml" && mt != "application/xml" {
			return errorf(http.StatusUnsupportedMediaType, "MKCOL accepts no body, or a DAV:propertyupdate in XML")
		}
		var err error
		if patches, err = h.parsePropertyUpdate(r.Body); err != nil {
			var he *httpError
			if errors.As(err, &he) && he.Code == http.StatusBadRequest {
				return errorf(http.StatusUnsupportedMediaType, "MKCOL body is not a DAV:propertyupdate")
			}
			return err
		}
	}
	path := urlToFolder(t.segs)
	if err := h.preconditions(r, rq, []string{rq.lockPathFolder(path)}, nil, []string{rq.lockPathFolder(t.parent)}); err != nil {
		return err
	}
	if err := rq.mb.CreateFolder(r.Context(), path); err != nil {
		if errors.Is(err, mailbox.ErrExists) {
			return errorf(http.StatusMethodNotAllowed, "the folder already exists")
		}
		return err
	}
	if len(patches) > 0 {
		var set []mailbox.Prop
		for _, p := range patches {
			if !p.remove && !protectedProp(xmlName(p.prop)) {
				set = append(set, p.prop)
			}
		}
		if len(set) > 0 {
			if err := rq.mb.PatchProps(r.Context(), path, "", set, nil); err != nil {
				return err
			}
		}
	}
	w.Header().Set("Location", baseURL(r)+r.URL.EscapedPath())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}
