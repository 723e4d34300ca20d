package dav

import (
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type lockInfo struct {
	shared bool
	owner  string
	write  bool
}

// parseLockInfo reads a DAV:lockinfo body (RFC 4918 §14.11); io.EOF
// means an empty body (a refresh).
func (h *Handler) parseLockInfo(body io.Reader) (lockInfo, error) {
	var li lockInfo
	x := h.newXMLReader(body)
	root, err := x.root()
	if err != nil {
		return li, err
	}
	if root.Name != (xml.Name{Space: nsDAV, Local: "lockinfo"}) {
		return li, errorf(http.StatusBadRequest, "LOCK body must be a DAV:lockinfo element")
	}
	scope := false
	for {
		t, err := x.Token()
		if err != nil {
			return li, eofIsBad(err)
		}
		if _, ok := t.(xml.EndElement); ok {
			break
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name.Space == nsDAV && se.Name.Local == "lockscope":
			names, err := x.nameList()
			if err != nil {
				return li, err
			}
			for _, n := range names {
				if n.Space == nsDAV && n.Local == "shared" {
					li.shared, scope = true, true
				}
				if n.Space == nsDAV && n.Local == "exclusive" {
					scope = true
				}
			}
		case se.Name.Space == nsDAV && se.Name.Local == "locktype":
			names, err := x.nameList()
			if err != nil {
				return li, err
			}
			for _, n := range names {
				if n.Space == nsDAV && n.Local == "write" {
					li.write = true
				}
			}
		case se.Name.Space == nsDAV && se.Name.Local == "owner":
			inner, err := x.innerXML()
			if err != nil {
				return li, err
			}
			li.owner = inner
		default:
			if err := x.skip(); err != nil {
				return li, err
			}
		}
	}
	if !scope || !li.write {
		return li, errorf(http.StatusBadRequest, "DAV:lockinfo needs a lockscope (exclusive or shared) and locktype write")
	}
	return li, x.drain()
}

func (h *Handler) lock(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	timeout := parseTimeout(r.Header.Get("Timeout"))
	depthInf := true
	if v := r.Header.Get("Depth"); v != "" {
		d, _, err := parseDepth(r, infinity)
		if err != nil || d == 1 {
			return errorf(http.StatusBadRequest, "LOCK takes Depth: 0 or infinity")
		}
		depthInf = d == infinity
	}
	li, err := h.parseLockInfo(r.Body)
	now := time.Now()
	if err == io.EOF {
		// Refresh (RFC 4918 §9.10.2): the token comes in the If header.
		lists, ok := parseIf(r.Header.Get("If"))
		if !ok {
			return errorf(http.StatusBadRequest, "a LOCK refresh needs an If header with the lock token")
		}
		for _, tok := range ifTokens(lists) {
			if lv, ok := h.locks.refresh(tok, rq.lockPath(), timeout); ok {
				return writeLockResponse(w, http.StatusOK, lv, now)
			}
		}
		return errorf(http.StatusPreconditionFailed, "no lock of the If header applies to this resource")
	}
	if err != nil {
		return err
	}
	tokens, err := h.checkIf(r, rq)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !t.exists {
		// Lock on an unmapped URL: RFC 4918 §7.3 creates an empty
		// resource (the lock-null resource of RFC 2518).
		if err := ensureMessageParent(t); err != nil {
			return err
		}
		if err := h.locks.check(tokens, nil, nil, []string{rq.lockPathFolder(t.parent)}); err != nil {
			return err
		}
		if _, err := appendEmpty(r.Context(), rq.mb, t.parent, t.name); err != nil {
			return err
		}
		status = http.StatusCreated
	}
	lp := rq.lockPath()
	root := r.URL.EscapedPath()
	if t.isFolder && !strings.HasSuffix(root, "/") {
		root += "/"
	}
	lv, err := h.locks.create(lp, baseURL(r)+root, depthInf && t.isFolder, li.shared, li.owner, timeout)
	if err != nil {
		return err
	}
	w.Header().Set("Lock-Token", "<"+lv.token+">")
	return writeLockResponse(w, status, lv, now)
}

func writeLockResponse(w http.ResponseWriter, status int, lv lockView, now time.Time) error {
	b := []byte(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<a:prop xmlns:a="DAV:"><a:lockdiscovery>`)
	b = appendActiveLock(b, lv, now)
	b = append(b, "</a:lockdiscovery></a:prop>\n"...)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	return nil
}

func (h *Handler) unlock(w http.ResponseWriter, r *http.Request, rq *request) error {
	v := strings.TrimSpace(r.Header.Get("Lock-Token"))
	if len(v) < 2 || v[0] != '<' || v[len(v)-1] != '>' {
		return errorf(http.StatusBadRequest, "UNLOCK needs a Lock-Token header: <token>")
	}
	if !rq.target.exists {
		return errorf(http.StatusNotFound, "no folder or message at this URL")
	}
	if !h.locks.unlock(v[1:len(v)-1], rq.lockPath()) {
		return &httpError{Code: http.StatusConflict, Cond: "lock-token-matches-request-uri", Msg: "that lock token does not apply to this resource"}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
