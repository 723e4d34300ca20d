package dav

import (
	"context"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// submissionSegment is Exchange's mail submission URI below the mailbox
// root (exchange-webdav.md §1.4): PUT into it, or MOVE/COPY a draft into
// it, sends the message. It is not a folder and cannot be listed.
const submissionSegment = "##DavMailSubmissionURI##"

// Submitter sends a message submitted through the submission URI. The
// server wires it to the persistent SMTP queue (internal/submit); without
// one, sending is refused with a clear 403.
type Submitter interface {
	// Submit prepares and queues the message read from r for user.
	// contentType is "message/rfc822" or "message/rfc821" (an SMTP
	// envelope before the message). saveCopy, when non-nil, is called with
	// the prepared message (Bcc stripped) before it is queued, to keep a
	// copy in Sent Items. Errors carry their HTTP status (HTTPStatus()).
	Submit(ctx context.Context, user, contentType string, r io.Reader, saveCopy func(io.Reader) error) error
}

// submissionContentType picks the submission format from Content-Type.
func submissionContentType(r *http.Request) string {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "message/rfc821" {
		return mt
	}
	return "message/rfc822"
}

// sentCopy returns the function that saves the sent message, honouring
// Saveinsent (default t) and Savedestination (exchange-webdav.md §3.2).
func (h *Handler) sentCopy(r *http.Request, rq *request) (func(io.Reader) error, error) {
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Saveinsent")), "f") {
		return nil, nil
	}
	folder := ""
	if d := r.Header.Get("Savedestination"); d != "" {
		r2 := r.Clone(r.Context())
		r2.Header.Set("Destination", d)
		dreq, err := h.destination(r2, rq)
		if err != nil {
			return nil, err
		}
		if !dreq.target.isFolder {
			return nil, errorf(http.StatusConflict, "Savedestination is not a folder")
		}
		folder = dreq.target.folder.Path
	} else {
		all, err := rq.mb.Folders(r.Context())
		if err != nil {
			return nil, err
		}
		for _, f := range all {
			if f.SpecialUse == `\Sent` && mailbox.Parent(f.Path) == "" {
				folder = f.Path
				break
			}
		}
		if folder == "" {
			return nil, nil // no Sent folder: nothing to save into
		}
	}
	return func(msg io.Reader) error {
		_, err := rq.mb.Append(r.Context(), folder, msg, mailbox.AppendOptions{Flags: mailbox.FlagSeen})
		return err
	}, nil
}

// submit sends the body of a PUT to the submission URI.
func (h *Handler) submitPut(w http.ResponseWriter, r *http.Request, rq *request) error {
	if h.cfg.Submit == nil {
		return errorf(http.StatusForbidden, "sending mail is not configured on this server (no SMTP relay)")
	}
	if r.ContentLength > h.cfg.MaxMessageSize {
		return limits.TooLarge("max-message-size", h.cfg.MaxMessageSize, r.ContentLength)
	}
	save, err := h.sentCopy(r, rq)
	if err != nil {
		return err
	}
	if err := h.cfg.Submit.Submit(r.Context(), rq.user, submissionContentType(r), r.Body, save); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK) // 200 = queued (exchange-webdav.md §3.2)
	return nil
}

// submitStored sends a stored message (a draft) that a MOVE or COPY names
// the submission URI as destination; MOVE then deletes the draft.
func (h *Handler) submitStored(w http.ResponseWriter, r *http.Request, rq *request, move bool) error {
	src := &rq.target
	if h.cfg.Submit == nil {
		return errorf(http.StatusForbidden, "sending mail is not configured on this server (no SMTP relay)")
	}
	if src.msg == nil {
		return errorf(http.StatusForbidden, "only a message can be sent")
	}
	if src.msg.Size > h.cfg.MaxMessageSize {
		return limits.TooLarge("max-message-size", h.cfg.MaxMessageSize, src.msg.Size)
	}
	save, err := h.sentCopy(r, rq)
	if err != nil {
		return err
	}
	c, err := rq.mb.Open(r.Context(), src.parent, src.name)
	if err != nil {
		return err
	}
	err = h.cfg.Submit.Submit(r.Context(), rq.user, "message/rfc822", c, save)
	c.Close()
	if err != nil {
		return err
	}
	if move {
		if err := rq.mb.Delete(r.Context(), src.parent, src.name); err != nil {
			return err
		}
		h.locks.removeTree(rq.lockPath())
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated) // DavMail accepts 201 or 200 (§11 step 18)
	return nil
}

// isSubmission reports whether decoded segments name the submission URI
// (with or without a trailing slash; "#" arrives encoded or literal).
func isSubmission(segs []string) bool {
	return len(segs) == 1 && segs[0] == submissionSegment
}
