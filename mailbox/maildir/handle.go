package maildir

import (
	"context"
	"io"

	"github.com/davmail/davmail/mailbox"
)

// handle is the mailbox.Mailbox of one user. It holds no state but the
// user name: every call takes the user's open mailbox from the Store
// (loading it if it was closed to make room) and holds it for the call.
type handle struct {
	s    *Store
	user string
}

var _ mailbox.Mailbox = (*handle)(nil)

// with runs fn on the user's mailbox, locked.
func with[T any](ctx context.Context, h *handle, fn func(b *mbox) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	b, err := h.s.acquire(ctx, h.user)
	if err != nil {
		return zero, err
	}
	defer h.s.release(b)
	b.mu.Lock()
	defer func() {
		b.memMsgs.Store(b.messagesInMemory())
		b.mu.Unlock()
	}()
	if err := b.ensureLoaded(ctx); err != nil {
		return zero, err
	}
	return fn(b)
}

func (h *handle) Folders(ctx context.Context) ([]mailbox.Folder, error) {
	return with(ctx, h, func(b *mbox) ([]mailbox.Folder, error) { return b.listFolders(ctx) })
}

func (h *handle) Folder(ctx context.Context, path string) (mailbox.Folder, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Folder, error) { return b.folderInfo(ctx, path) })
}

func (h *handle) CreateFolder(ctx context.Context, path string) error {
	_, err := with(ctx, h, func(b *mbox) (struct{}, error) { return struct{}{}, b.createFolder(ctx, path) })
	return err
}

func (h *handle) RenameFolder(ctx context.Context, from, to string) error {
	_, err := with(ctx, h, func(b *mbox) (struct{}, error) { return struct{}{}, b.renameFolder(ctx, from, to) })
	return err
}

func (h *handle) DeleteFolder(ctx context.Context, path string) error {
	trash, err := with(ctx, h, func(b *mbox) ([]string, error) { return b.deleteFolder(ctx, path) })
	// The directories are already out of sight; removing their files
	// can take long and needs no lock.
	removeTrash(h.s, trash)
	return err
}

func (h *handle) List(ctx context.Context, folder string) ([]mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) ([]mailbox.Message, error) { return b.list(ctx, folder) })
}

func (h *handle) Stat(ctx context.Context, folder, name string) (mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Message, error) {
		_, m, _, err := b.stat(ctx, folder, name)
		return m, err
	})
}

func (h *handle) StatID(ctx context.Context, id uint64) (mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Message, error) { return b.statID(ctx, id) })
}

func (h *handle) StatUID(ctx context.Context, folder string, uid uint32) (mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Message, error) { return b.statUID(ctx, folder, uid) })
}

func (h *handle) Open(ctx context.Context, folder, name string) (mailbox.Content, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Content, error) { return b.open(ctx, folder, name) })
}

func (h *handle) Append(ctx context.Context, folder string, r io.Reader, opts mailbox.AppendOptions) (mailbox.Message, error) {
	return h.append(ctx, folder, r, opts)
}

func (h *handle) Copy(ctx context.Context, folder, name, dstFolder, dstName string, replace bool) (mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Message, error) {
		return b.copyMsg(ctx, folder, name, dstFolder, dstName, replace)
	})
}

func (h *handle) Move(ctx context.Context, folder, name, dstFolder, dstName string, replace bool) (mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Message, error) {
		return b.moveMsg(ctx, folder, name, dstFolder, dstName, replace)
	})
}

func (h *handle) Delete(ctx context.Context, folder, name string) error {
	_, err := with(ctx, h, func(b *mbox) (struct{}, error) { return struct{}{}, b.deleteMsg(ctx, folder, name) })
	return err
}

func (h *handle) SetFlags(ctx context.Context, folder, name string, flags mailbox.Flags, add bool) (mailbox.Message, error) {
	return with(ctx, h, func(b *mbox) (mailbox.Message, error) { return b.setFlags(ctx, folder, name, flags, add) })
}

func (h *handle) DeadProps(ctx context.Context, folder, name string) ([]mailbox.Prop, error) {
	return with(ctx, h, func(b *mbox) ([]mailbox.Prop, error) { return b.deadProps(ctx, folder, name) })
}

func (h *handle) PatchProps(ctx context.Context, folder, name string, set []mailbox.Prop, remove []mailbox.PropName) error {
	_, err := with(ctx, h, func(b *mbox) (struct{}, error) {
		return struct{}{}, b.patchProps(ctx, folder, name, set, remove)
	})
	return err
}

func (h *handle) Structure(ctx context.Context, folder, name string) (*mailbox.Structure, error) {
	return with(ctx, h, func(b *mbox) (*mailbox.Structure, error) { return b.structure(ctx, folder, name) })
}
