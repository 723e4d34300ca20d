// Package dav serves mailboxes over WebDAV (RFC 4918) under /exchange/.
//
// Folders are collections, messages are resources named "<Subject>.EML"
// whose GET returns the raw RFC 5322 bytes as stored. Listings are written
// from the mailbox index by a streaming multistatus writer
// (propfind.go); no message file is opened to answer a PROPFIND.
//
// The handler implements the methods itself rather than through
// golang.org/x/net/webdav.Handler, whose FileSystem walk stats and opens
// every entry and whose gaps (no If-Match on PUT, locks kept after
// DELETE, ETags ignored in If:, unbounded bodies, content sniffing) the
// gateway cannot have. Errors become statuses in one place: writeError.
package dav

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox"
)

// Handler is the WebDAV handler. Create it with New.
type Handler struct {
	cfg   Config
	locks *lockManager
	subs  *subs
	bufs  *pipeBufs
	// rawGets counts the raw message downloads in flight (get.go picks
	// their writer by it).
	rawGets atomic.Int64
	// sendfileGets counts the raw downloads served by sendfile (tests).
	sendfileGets atomic.Int64
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, locks: newLockManager(), subs: newSubs(), bufs: newPipeBufs()}, nil
}

// LockCount returns the number of live WebDAV locks (a gauge).
func (h *Handler) LockCount() int { return h.locks.Len() }

// allowMethods is the Allow header (RFC 7231 §7.4.1).
const allowMethods = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK, SEARCH, BPROPFIND, BPROPPATCH, BDELETE, BMOVE, BCOPY, SUBSCRIBE, UNSUBSCRIBE, POLL, X-MS-ENUMATTS, REPORT"

// target is what a URL names in the mailbox.
type target struct {
	segs     []string // decoded segments below the user
	folder   mailbox.Folder
	isFolder bool
	msg      *mailbox.Message
	exists   bool
	// parent is the store path of the parent folder and name the last
	// segment, for targets that are (or would be) messages or subfolders.
	parent       string
	parentExists bool
	name         string
	trailing     bool
	// att is set for an attachment of a message, or the virtual
	// collection of its attachments (attach.go).
	att *attTarget
}

// request is one request's resolved context.
type request struct {
	user   string
	mb     mailbox.Mailbox
	target target
}

func (rq *request) lockPathFolder(path string) string {
	return rq.user + "/" + path
}

func (rq *request) lockPathMsg(folder, name string) string {
	return rq.user + "/" + folder + "/" + name
}

// lockPath is the canonical lock path of the target.
func (rq *request) lockPath() string {
	t := &rq.target
	if t.isFolder {
		return rq.lockPathFolder(t.folder.Path)
	}
	return rq.lockPathMsg(t.parent, t.name)
}

func (rq *request) state() resourceState {
	st := resourceState{lockPath: rq.lockPath()}
	if rq.target.msg != nil {
		st.etag = etagOf(rq.target.msg.ID, rq.target.msg.Size)
	} else if rq.target.isFolder {
		st.etag = folderETag(&rq.target.folder)
	}
	return st
}

func folderETag(f *mailbox.Folder) string {
	return `"f` + strings.TrimPrefix(etagOf(uint64(f.UIDValidity), int64(f.Modseq)), `"`)
}

// ServeHTTP implements http.Handler. The authenticated user is taken from
// the request's reqlog entry (set by the auth middleware).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		writeError(w, r, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("DAV", "1, 2")
	w.Header().Set("MS-Author-Via", "DAV")
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", allowMethods)
		w.Header().Set("Public", allowMethods)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	authUser := reqlog.User(r.Context())
	if authUser == "" {
		return errorf(http.StatusUnauthorized, "authentication required")
	}
	user, segs, trailing, ok := splitPath(r.URL.EscapedPath(), h.cfg.Prefix)
	if !ok {
		return errorf(http.StatusBadRequest, "invalid path: segments may not be \".\" or \"..\" or hold encoded slashes, backslashes, NUL or invalid UTF-8")
	}
	if user == "" {
		// The vroot itself: clients are sent to their own mailbox.
		return h.serveVroot(w, r, authUser)
	}
	if user != authUser && h.cfg.Address != nil && strings.EqualFold(user, h.cfg.Address(authUser)) {
		user = authUser // /exchange/<email>/ is an alias of /exchange/<user>/
	}
	if user != authUser {
		return errorf(http.StatusForbidden, "user %s may only reach %s%s/", authUser, h.cfg.Prefix, authUser)
	}
	mb, err := h.cfg.Store.Mailbox(r.Context(), user)
	if err != nil {
		return err
	}
	rq := &request{user: user, mb: mb}
	if isSubmission(segs) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			return h.submitPut(w, r, rq)
		}
		w.Header().Set("Allow", "PUT, POST")
		return errorf(http.StatusMethodNotAllowed, "the submission URI only takes PUT, or a MOVE/COPY of a draft into it")
	}
	if err := h.resolve(r.Context(), rq, segs, trailing); err != nil {
		return err
	}
	if rq.target.att != nil {
		return h.serveAttachment(w, r, rq)
	}
	switch r.Method {
	case "X-MS-ENUMATTS":
		return h.enumAtts(w, r, rq)
	case "REPORT":
		return h.report(w, r, rq)
	case "PROPFIND":
		return h.propfind(w, r, rq)
	case http.MethodGet, http.MethodHead:
		return h.get(w, r, rq)
	case http.MethodPut:
		return h.put(w, r, rq)
	case http.MethodDelete:
		return h.delete(w, r, rq)
	case "MKCOL":
		return h.mkcol(w, r, rq)
	case "COPY", "MOVE":
		return h.copyMove(w, r, rq)
	case "PROPPATCH":
		return h.proppatch(w, r, rq)
	case "LOCK":
		return h.lock(w, r, rq)
	case "UNLOCK":
		return h.unlock(w, r, rq)
	case "SEARCH":
		return h.search(w, r, rq)
	case "BPROPFIND", "BPROPPATCH", "BDELETE", "BMOVE", "BCOPY":
		return h.batch(w, r, rq)
	case "SUBSCRIBE":
		return h.subscribe(w, r, rq)
	case "UNSUBSCRIBE":
		return h.unsubscribe(w, r, rq)
	case "POLL":
		return h.poll(w, r, rq)
	}
	w.Header().Set("Allow", allowMethods)
	return errorf(http.StatusMethodNotAllowed, "method %s is not supported here", r.Method)
}

// serveVroot answers requests on /exchange/ itself.
func (h *Handler) serveVroot(w http.ResponseWriter, r *http.Request, user string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		http.Redirect(w, r, h.cfg.Prefix+url.PathEscape(user)+"/", http.StatusFound)
		return nil
	}
	return errorf(http.StatusForbidden, "the mailbox tree is at %s%s/", h.cfg.Prefix, user)
}

// resolve finds what segs names: the root, a folder, a message, or
// nothing (with whether its parent folder exists).
func (h *Handler) resolve(ctx context.Context, rq *request, segs []string, trailing bool) error {
	t := &rq.target
	t.segs, t.trailing = segs, trailing
	if len(segs) == 0 {
		f, err := rq.mb.Folder(ctx, "")
		if err != nil {
			return err
		}
		t.folder, t.isFolder, t.exists = f, true, true
		return nil
	}
	if segs[0] == flatURLSpace {
		return h.resolvePermanent(ctx, rq, segs)
	}
	path := urlToFolder(segs)
	f, err := rq.mb.Folder(ctx, path)
	switch {
	case err == nil:
		t.folder, t.isFolder, t.exists = f, true, true
		t.parent, t.parentExists, t.name = mailbox.Parent(path), true, f.Name()
		return nil
	case !errors.Is(err, mailbox.ErrNotFound):
		return err
	}
	t.parent = urlToFolder(segs[:len(segs)-1])
	t.name = segs[len(segs)-1]
	if len(segs) == 1 {
		// Only folders live at the mailbox root.
		t.parent, t.parentExists = "", true
		t.name = path
		return nil
	}
	if _, err := rq.mb.Folder(ctx, t.parent); err != nil {
		if errors.Is(err, mailbox.ErrNotFound) {
			return h.resolveAttachment(ctx, rq, segs)
		}
		return err
	}
	t.parentExists = true
	m, err := rq.mb.Stat(ctx, t.parent, t.name)
	switch {
	case err == nil:
		t.msg, t.exists = &m, true
	case !errors.Is(err, mailbox.ErrNotFound):
		return err
	case h.cfg.AttachmentFolders && strings.HasSuffix(t.name, attachmentsSuffix):
		return h.resolveAttachment(ctx, rq, segs)
	}
	return nil
}

// stateOfURL resolves an If header resource tag (absolute URL or path)
// within the user's mailbox.
func (h *Handler) stateOfURL(r *http.Request, rq *request, raw string) (resourceState, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return resourceState{}, false
	}
	user, segs, trailing, ok := splitPath(u.EscapedPath(), h.cfg.Prefix)
	if !ok || user != rq.user {
		return resourceState{}, false
	}
	other := &request{user: rq.user, mb: rq.mb}
	if err := h.resolve(r.Context(), other, segs, trailing); err != nil {
		return resourceState{}, false
	}
	return other.state(), true
}

// resolvePermanent resolves /exchange/<user>/-FlatUrlSpace-/<id>, the
// permanent URL of a message (exchange-webdav.md §1.3): the ID survives
// moves and renames, so DavMail's writes through it find the message
// wherever it went.
func (h *Handler) resolvePermanent(ctx context.Context, rq *request, segs []string) error {
	t := &rq.target
	if len(segs) != 2 && len(segs) != 3 {
		return errorf(http.StatusNotFound, "a permanent URL is %s%s/%s/<id>[/<attachment>]", h.cfg.Prefix, rq.user, flatURLSpace)
	}
	id, err := strconv.ParseUint(segs[1], 36, 64)
	if err != nil {
		return errorf(http.StatusNotFound, "no message has the permanent id %q", segs[1])
	}
	m, err := rq.mb.StatID(ctx, id)
	if err != nil {
		return err
	}
	if len(segs) == 3 {
		return h.setAttTarget(ctx, rq, m, segs[2], false)
	}
	t.segs = append(strings.Split(folderURLPath(m.Folder), "/"), m.Name)
	t.msg, t.exists, t.parent, t.parentExists, t.name = &m, true, m.Folder, true, m.Name
	return nil
}
