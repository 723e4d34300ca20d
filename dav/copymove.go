package dav

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// maxCopyItems caps the messages one COPY of a folder tree duplicates: the
// copy runs inside one request, so it is bounded like every other input.
// 100,000 is the largest folder the gateway is benchmarked with.
const maxCopyItems = 100000

// destination parses the Destination header (RFC 4918 §10.3): an
// absolute URL or, as DavMail sends, a path (exchange-webdav.md §0.3 #7).
func (h *Handler) destination(r *http.Request, rq *request) (*request, error) {
	raw := r.Header.Get("Destination")
	if raw == "" {
		return nil, errorf(http.StatusBadRequest, "COPY and MOVE need a Destination header")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid Destination header")
	}
	if u.Host != "" && !strings.EqualFold(u.Host, r.Host) {
		// RFC 4918 §9.8.5: a destination on another server.
		return nil, errorf(http.StatusBadGateway, "the Destination is on another server (%s)", u.Host)
	}
	user, segs, trailing, ok := splitPath(u.EscapedPath(), h.cfg.Prefix)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "invalid Destination path")
	}
	if user != rq.user {
		return nil, errorf(http.StatusForbidden, "the Destination must be in your own mailbox %s%s/", h.cfg.Prefix, rq.user)
	}
	dst := &request{user: rq.user, mb: rq.mb}
	if err := h.resolve(r.Context(), dst, segs, trailing); err != nil {
		return nil, err
	}
	return dst, nil
}

// destinationSegs returns the decoded segments below the user of the
// Destination header, when it is in the user's own mailbox.
func (h *Handler) destinationSegs(r *http.Request, rq *request) ([]string, bool) {
	u, err := url.Parse(strings.ReplaceAll(r.Header.Get("Destination"), "#", "%23"))
	if err != nil {
		return nil, false
	}
	user, segs, _, ok := splitPath(u.EscapedPath(), h.cfg.Prefix)
	return segs, ok && user == rq.user
}

func (h *Handler) copyMove(w http.ResponseWriter, r *http.Request, rq *request) error {
	move := r.Method == "MOVE"
	src := &rq.target
	if !src.exists {
		return errorf(http.StatusNotFound, "no folder or message at this URL")
	}
	if segs, ok := h.destinationSegs(r, rq); ok && isSubmission(segs) {
		return h.submitStored(w, r, rq, move)
	}
	dreq, err := h.destination(r, rq)
	if err != nil {
		return err
	}
	dst := &dreq.target
	overwrite := true
	switch strings.ToUpper(strings.TrimSpace(r.Header.Get("Overwrite"))) {
	case "", "T":
	case "F":
		overwrite = false
	default:
		return errorf(http.StatusBadRequest, "invalid Overwrite header: want T or F")
	}
	depth := infinity
	if src.isFolder {
		d, _, err := parseDepth(r, infinity)
		if err != nil {
			return err
		}
		if d == 1 || (move && d != infinity) {
			return errorf(http.StatusBadRequest, "%s of a folder takes Depth: infinity%s", r.Method, map[bool]string{true: "", false: " or 0"}[move])
		}
		depth = d
		if src.folder.Path == "" || (move && src.folder.Path == mailbox.Inbox) {
			return errorf(http.StatusForbidden, "the mailbox root and Inbox cannot be moved")
		}
	}
	srcLP, dstLP := rq.lockPath(), dreq.lockPath()
	if srcLP == dstLP {
		return errorf(http.StatusForbidden, "the source and the destination are the same")
	}
	if src.isFolder && isBelow(dstLP, srcLP) {
		return errorf(http.StatusForbidden, "a folder cannot be copied or moved into itself")
	}
	if !src.isFolder {
		if err := ensureMessageParent(dst); err != nil {
			return err
		}
	} else if !dst.parentExists {
		return errorf(http.StatusConflict, "the destination's parent folder does not exist")
	}
	if dst.exists && !src.isFolder && !dst.isFolder && strings.EqualFold(strings.TrimSpace(r.Header.Get("Allow-Rename")), "t") {
		// Allow-Rename: t (exchange-webdav.md §3.2): keep both, give the
		// copy a free name and say where in Location.
		dst.name = mailbox.UniqueName(dst.name, func(n string) bool {
			_, err := rq.mb.Stat(r.Context(), dst.parent, n)
			return err == nil
		})
		dst.segs = append(append([]string(nil), dst.segs[:len(dst.segs)-1]...), dst.name)
		dst.exists, dst.msg = false, nil
		dstLP = dreq.lockPathMsg(dst.parent, dst.name)
	}
	if dst.exists && !overwrite {
		return errorf(http.StatusPreconditionFailed, "the destination exists and Overwrite is F")
	}
	// Locks: the destination (and what it replaces) and its parent; for
	// MOVE also the source tree and its parent.
	paths, trees, parents := []string{dstLP}, []string{dstLP}, []string{dreq.lockPathFolder(dst.parent)}
	if move {
		paths = append(paths, srcLP)
		trees = append(trees, srcLP)
		parents = append(parents, rq.lockPathFolder(src.parent))
	}
	if err := h.preconditions(r, rq, paths, trees, parents); err != nil {
		return err
	}
	ctx := r.Context()
	existed := dst.exists
	// Overwrite: T on a destination of the other kind, or on a folder,
	// deletes it first (RFC 4918 §9.8.4, §9.9.3). A message replacing a
	// message is done atomically by the store instead.
	if dst.exists && (dst.isFolder || src.isFolder) {
		if dst.isFolder {
			if dst.folder.Path == mailbox.Inbox || dst.folder.Path == "" {
				return errorf(http.StatusForbidden, "Inbox cannot be overwritten")
			}
			err = rq.mb.DeleteFolder(ctx, dst.folder.Path)
		} else {
			err = rq.mb.Delete(ctx, dst.parent, dst.name)
		}
		if err != nil {
			return err
		}
		h.locks.removeTree(dstLP)
	}
	dstPath := urlToFolder(dst.segs)
	switch {
	case !src.isFolder && move:
		_, err = rq.mb.Move(ctx, src.parent, src.name, dst.parent, dst.name, true)
	case !src.isFolder:
		_, err = rq.mb.Copy(ctx, src.parent, src.name, dst.parent, dst.name, true)
	case move:
		err = rq.mb.RenameFolder(ctx, src.folder.Path, dstPath)
	default:
		err = h.copyTree(ctx, rq.mb, src.folder, dstPath, depth)
	}
	if err != nil {
		return err
	}
	if move {
		h.locks.removeTree(srcLP)
	}
	loc := baseURL(r) + h.cfg.Prefix + url.PathEscape(rq.user)
	for _, s := range dst.segs {
		loc += "/" + string(appendEscaped(nil, s))
	}
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Length", "0")
	if existed {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	return nil
}

// copyTree copies folder src to dst: messages, dead properties and, with
// Depth infinity, subfolders. It counts the work first and refuses a copy
// over maxCopyItems before changing anything.
func (h *Handler) copyTree(ctx context.Context, mb mailbox.Mailbox, src mailbox.Folder, dst string, depth int) error {
	folders := []mailbox.Folder{src}
	if depth == infinity {
		all, err := mb.Folders(ctx)
		if err != nil {
			return err
		}
		for _, f := range all {
			if mailbox.IsDescendant(f.Path, src.Path) {
				folders = append(folders, f)
			}
		}
	}
	total := 0
	for _, f := range folders {
		total += f.Messages
	}
	if total > maxCopyItems {
		return limits.TooComplex("max-copy-items", maxCopyItems, int64(total), "messages")
	}
	for _, f := range folders {
		target := dst + strings.TrimPrefix(f.Path, src.Path)
		if err := mb.CreateFolder(ctx, target); err != nil {
			return err
		}
		props, err := mb.DeadProps(ctx, f.Path, "")
		if err != nil {
			return err
		}
		if len(props) > 0 {
			if err := mb.PatchProps(ctx, target, "", props, nil); err != nil {
				return err
			}
		}
		msgs, err := mb.List(ctx, f.Path)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := mb.Copy(ctx, f.Path, m.Name, target, m.Name, false); err != nil {
				return err
			}
		}
	}
	return nil
}
