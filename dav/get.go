package dav

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"

	"github.com/davmail/davmail/limits"
)

// maxRanges caps the ranges of one Range header: clients fetch one range
// (resuming) or a handful; hundreds of ranges only make multipart work
// (issue: absurd Range lists).
const maxRanges = 16

func (h *Handler) get(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	if !t.exists {
		return errorf(http.StatusNotFound, "no folder or message at this URL")
	}
	if t.isFolder && len(t.segs) == 0 && strings.EqualFold(r.URL.Query().Get("Cmd"), "galfind") {
		return h.galfind(w, r, rq)
	}
	if t.isFolder {
		// A folder has no content; say how to use it rather than render
		// a listing of possibly 100,000 entries.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		body := fmt.Sprintf("This is the mail folder %q (%d messages). Mount %s with a WebDAV client to browse it.\n",
			displayFolder(t.folder.Path), t.folder.Messages, r.URL.Path)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method != http.MethodHead {
			w.Write([]byte(body))
		}
		return nil
	}
	m := t.msg
	if wantsView(r) {
		return h.getView(w, r, rq)
	}
	if strings.Count(r.Header.Get("Range"), ",") >= maxRanges {
		return errorf(http.StatusRequestedRangeNotSatisfiable, "at most %d ranges per request", maxRanges)
	}
	// Legacy messages over the message limit (stored before it was set)
	// stay listed, but are not served whole: decided from the index, before
	// the file is opened (brief, failure 5).
	if m.Size > h.cfg.MaxMessageSize {
		return limits.ResponseTooLarge("max-message-size", h.cfg.MaxMessageSize, m.Size)
	}
	if m.Size > h.cfg.MaxResponseSize {
		return limits.ResponseTooLarge("max-response-size", h.cfg.MaxResponseSize, m.Size)
	}
	c, err := rq.mb.Open(r.Context(), m.Folder, m.Name)
	if err != nil {
		return err
	}
	defer c.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("ETag", etagOf(m.ID, m.Size))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// http.ServeContent does Range (RFC 7233), If-Match, If-None-Match and
	// If-(Un)Modified-Since, and streams through io.CopyN into one of
	// three writers, all with fixed memory whatever the message size:
	//   - a message file, while the raw downloads in flight are at most
	//     half the cores: blockWriter, which reads and writes one 512 KiB
	//     block at a time (a single 213 MB GET at about Apache's speed;
	//     pipe.go has the figures against the other two).
	//   - a message file, beyond that: the response writer with the
	//     *os.File itself, so the kernel's sendfile moves the bytes with
	//     no copy through the process, the cheaper when downloads compete
	//     for the cores (8 parallel GETs: 1.14x Apache by sendfile, 0.74x
	//     through pipeWriter).
	//   - any other reader (the IMAP backend's): pipeWriter, which reads
	//     the next block on a second goroutine while the handler writes,
	//     so a slow source overlaps the socket writes.
	inFlight := h.rawGets.Add(1)
	defer h.rawGets.Add(-1)
	// The struct hides the reader's other methods (an *os.File's
	// WriteTo) from io.Copy, so that the writer's ReadFrom does the copy.
	content := struct{ io.ReadSeeker }{c}
	f, ok := c.(interface{ File() *os.File })
	if !ok || f.File() == nil {
		http.ServeContent(pipeWriter{w, h.bufs}, r, "", m.Modified, content)
		return nil
	}
	if inFlight > int64(max(1, runtime.GOMAXPROCS(0)/2)) {
		if fi, err := f.File().Stat(); err == nil && fi.Size() == m.Size {
			h.sendfileGets.Add(1)
			http.ServeContent(w, r, "", m.Modified, f.File())
			return nil
		}
	}
	http.ServeContent(blockWriter{w, h.bufs}, r, "", m.Modified, content)
	return nil
}

func displayFolder(path string) string {
	if path == "" {
		return "/"
	}
	return folderURLPath(path)
}

// ensureMessageParent refuses message writes where no folder can hold
// them.
func ensureMessageParent(t *target) error {
	if len(t.segs) <= 1 {
		return errorf(http.StatusConflict, "messages are stored in folders; the mailbox root holds only folders")
	}
	if !t.parentExists {
		return errorf(http.StatusConflict, "the parent folder does not exist")
	}
	return nil
}

// galfind answers DavMail's address lookup, GET <mailbox>?Cmd=galfind&AN=
// (exchange-webdav.md §2.5), with the caller's own entry when AN names
// them: the gateway does not publish a directory of its other users.
func (h *Handler) galfind(w http.ResponseWriter, r *http.Request, rq *request) error {
	b := []byte(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<a:response xmlns:a="DAV:">`)
	an := r.URL.Query().Get("AN")
	if h.cfg.Address != nil && (an == "" || strings.EqualFold(an, rq.user) || strings.EqualFold(an, h.cfg.Address(rq.user))) {
		b = append(b, "<a:item><a:DN>"...)
		b = appendXMLText(b, rq.user)
		b = append(b, "</a:DN><a:AN>"...)
		b = appendXMLText(b, rq.user)
		b = append(b, "</a:AN><a:EM>"...)
		b = appendXMLText(b, h.cfg.Address(rq.user))
		b = append(b, "</a:EM></a:item>"...)
	}
	b = append(b, "</a:response>\n"...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.Write(b)
	return nil
}
