package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/davmail/davmail/mailbox"
)

// trashName is the folder deleted messages go to when no folder carries
// the \Trash special use (RFC 6154): the name Dovecot's default
// configuration and mkcorpus use; WebDAV shows it as Deleted Items' role.
const trashName = "Trash"

// maxRenameTries bounds the names tried when a moved message's name is
// taken in the destination ("x.EML", "x-2.EML", … "x-20.EML"); a folder
// with twenty messages of one subject gets a clear error instead of a
// long loop.
const maxRenameTries = 20

// isTrash reports whether f is the Deleted Items folder.
func (h *Handler) isTrash(f mailbox.Folder) bool {
	return f.SpecialUse == `\Trash` || f.Path == trashName
}

// trashFolder finds the Deleted Items folder: the one with special use
// \Trash, else "Trash", created when missing.
func trashFolder(ctx context.Context, mb mailbox.Mailbox) (string, error) {
	fs, err := mb.Folders(ctx)
	if err != nil {
		return "", err
	}
	plain := false
	for _, f := range fs {
		if f.SpecialUse == `\Trash` {
			return f.Path, nil
		}
		plain = plain || f.Path == trashName
	}
	if !plain {
		if err := mb.CreateFolder(ctx, trashName); err != nil && !errors.Is(err, mailbox.ErrExists) {
			return "", err
		}
	}
	return trashName, nil
}

// moveUnique moves a message to folder to, keeping its name when it is
// free there, else the first free "<name>-N<ext>".
func moveUnique(ctx context.Context, mb mailbox.Mailbox, from, name, to string) (mailbox.Message, error) {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	for n := 1; n <= maxRenameTries; n++ {
		dst := name
		if n > 1 {
			dst = base + "-" + strconv.Itoa(n) + ext
		}
		m, err := mb.Move(ctx, from, name, to, dst, false)
		if !errors.Is(err, mailbox.ErrExists) {
			return m, err
		}
	}
	return mailbox.Message{}, errorf(http.StatusConflict, "The folder already holds %d messages named like this one; rename or delete some first.", maxRenameTries)
}

// action performs one change on one message (POST, CSRF-checked by
// authed): read, unread, flag, unflag, move (to "to"), delete (to Deleted
// Items; from Deleted Items, for good). Every change goes through the
// store, so WebDAV clients see it at once. With ajax=1 (the page's script
// marking an opened message read) the answer is 204; otherwise a 303 back
// to the message, or to its folder after a move or delete.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) error {
	wh := whoFrom(r.Context())
	f := r.PostForm
	folder, name, op := f.Get("f"), f.Get("n"), f.Get("op")
	if folder == "" || name == "" {
		return errorf(http.StatusBadRequest, "The form does not name a message.")
	}
	mb, err := h.opts.Store.Mailbox(r.Context(), wh.User)
	if err != nil {
		return err
	}
	ctx := r.Context()
	back := h.messageURL(folder, name)
	switch op {
	case "read", "unread":
		_, err = mb.SetFlags(ctx, folder, name, mailbox.FlagSeen, op == "read")
	case "flag", "unflag":
		_, err = mb.SetFlags(ctx, folder, name, mailbox.FlagFlagged, op == "flag")
	case "move":
		to := f.Get("to")
		if to == "" || to == folder {
			return errorf(http.StatusBadRequest, "Choose another folder to move the message to.")
		}
		if _, err = mb.Folder(ctx, to); err == nil {
			_, err = moveUnique(ctx, mb, folder, name, to)
		}
		back = h.folderURL(folder, listQuery{})
	case "delete":
		var cur mailbox.Folder
		if cur, err = mb.Folder(ctx, folder); err != nil {
			break
		}
		if h.isTrash(cur) {
			err = mb.Delete(ctx, folder, name)
		} else {
			var trash string
			if trash, err = trashFolder(ctx, mb); err == nil {
				_, err = moveUnique(ctx, mb, folder, name, trash)
			}
		}
		back = h.folderURL(folder, listQuery{})
	default:
		return errorf(http.StatusBadRequest, "Unknown action.")
	}
	if err != nil {
		return err
	}
	reqlog.From(ctx).Log.Info().Str("op", op).Str("folder", folder).Str("name", name).Msg("web action")
	if f.Get("ajax") == "1" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}
