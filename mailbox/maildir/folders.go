package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

func (b *mbox) listFolders(ctx context.Context) ([]mailbox.Folder, error) {
	if err := b.sync(ctx, true); err != nil {
		return nil, err
	}
	out := make([]mailbox.Folder, 0, len(b.folders)-1)
	for p, f := range b.folders {
		if p != "" {
			out = append(out, f.info())
		}
	}
	slices.SortFunc(out, func(a, b mailbox.Folder) int {
		switch {
		case a.Path == b.Path:
			return 0
		case inboxFirst(a.Path, b.Path):
			return -1
		}
		return 1
	})
	return out, nil
}

func (b *mbox) folderInfo(ctx context.Context, path string) (mailbox.Folder, error) {
	if err := b.sync(ctx, false, path); err != nil {
		return mailbox.Folder{}, err
	}
	f, err := b.folder(path)
	if err != nil {
		return mailbox.Folder{}, err
	}
	return f.info(), nil
}

// checkNewPath validates a path for a new folder: a valid Maildir++
// name, and not a case variant of INBOX at the top level (IMAP treats
// INBOX case-insensitively, RFC 9051 §5.1, so Dovecot would confuse the
// two).
func checkNewPath(path string) (string, error) {
	dn, err := dirName(path)
	if err != nil {
		return "", err
	}
	top, _, _ := strings.Cut(path, "/")
	if top != mailbox.Inbox && strings.EqualFold(top, mailbox.Inbox) {
		return "", fmt.Errorf("maildir: folder %q: a case variant of INBOX: %w", path, mailbox.ErrInvalidName)
	}
	return dn, nil
}

func (b *mbox) createFolder(ctx context.Context, path string) error {
	if path == "" || path == mailbox.Inbox {
		return fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrExists)
	}
	dn, err := checkNewPath(path)
	if err != nil {
		return err
	}
	if err := b.sync(ctx, false); err != nil {
		return err
	}
	if b.folders[path] != nil {
		return fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrExists)
	}
	parent := b.folders[mailbox.Parent(path)]
	if parent == nil {
		return fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrNoParent)
	}
	if max := b.s.opts.MaxFolders; max >= 0 && len(b.folders)-1 >= max {
		return &limits.Error{Kind: limits.ErrTooComplex, Limit: "max-folders", Value: int64(max), Size: int64(len(b.folders)), Unit: "folders",
			Status: http.StatusInsufficientStorage} // RFC 4918 §11.5: no room for this
	}
	dir := filepath.Join(b.root, dn)
	if err := b.makeFolderDir(dir); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrExists)
		}
		return err
	}
	b.editSubscriptions(func(s *subscriptions) { s.add(path) })
	return b.commit(func(w *txw) error {
		ms, t := b.bump()
		b.meta.lastFid++
		f := newFolder(b.meta.lastFid, folderRec{path: path, onDisk: true, uidValidity: b.newUIDValidity(), modseq: ms, modified: t}, dir)
		f.subdirsOK = true
		b.folders[path] = f
		parent.touch(ms, t)
		if err := w.putFolder(f); err != nil {
			return err
		}
		return w.putFolder(parent)
	})
}

// makeFolderDir creates a folder directory with cur/, new/, tmp/ and the
// Maildir++ "maildirfolder" marker. It is put together under a temporary
// name and renamed into place, so no program ever sees it half made.
func (b *mbox) makeFolderDir(dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("maildir: %s: %w", dir, fs.ErrExist)
	}
	tmp := filepath.Join(b.root, mkdirPrefix+b.s.uniqueBase())
	err := os.Mkdir(tmp, 0o700)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err == nil {
			err = os.Mkdir(filepath.Join(tmp, sub), 0o700)
		}
	}
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(filepath.Join(tmp, "maildirfolder"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			err = f.Close()
		}
	}
	if err == nil {
		err = syncDir(tmp)
	}
	if err == nil {
		if err = os.Rename(tmp, dir); err != nil {
			if _, serr := os.Lstat(dir); serr == nil {
				err = fmt.Errorf("maildir: %s: %w", dir, fs.ErrExist)
			}
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("maildir: creating folder: %w", err)
	}
	return syncDir(b.root)
}

// subtree returns the folders at path and below, parents first.
func (b *mbox) subtree(path string) []*folder {
	var out []*folder
	for p, f := range b.folders {
		if p == path || mailbox.IsDescendant(p, path) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(x, y *folder) int { return strings.Compare(x.path, y.path) })
	return out
}

func (b *mbox) renameFolder(ctx context.Context, from, to string) error {
	for _, p := range [...]string{from, to} {
		if p == "" || p == mailbox.Inbox {
			return fmt.Errorf("maildir: folder %q: %w", p, mailbox.ErrForbidden)
		}
	}
	if _, err := dirName(from); err != nil {
		return fmt.Errorf("maildir: folder %q: %w", from, mailbox.ErrNotFound)
	}
	if _, err := checkNewPath(to); err != nil {
		return err
	}
	if err := b.sync(ctx, false); err != nil {
		return err
	}
	if b.folders[from] == nil {
		return fmt.Errorf("maildir: folder %q: %w", from, mailbox.ErrNotFound)
	}
	if mailbox.IsDescendant(to, from) {
		return fmt.Errorf("maildir: cannot move folder %q into itself (%q): %w", from, to, mailbox.ErrInvalidName)
	}
	if b.folders[to] != nil {
		return fmt.Errorf("maildir: folder %q: %w", to, mailbox.ErrExists)
	}
	newParent := b.folders[mailbox.Parent(to)]
	if newParent == nil {
		return fmt.Errorf("maildir: folder %q: %w", to, mailbox.ErrNoParent)
	}
	moved := b.subtree(from)
	type plan struct {
		f             *folder
		path, dir     string
		renamedOnDisk bool
	}
	plans := make([]plan, len(moved))
	for i, f := range moved {
		np := to + f.path[len(from):]
		dn, err := dirName(np)
		if err != nil {
			return err
		}
		plans[i] = plan{f: f, path: np, dir: filepath.Join(b.root, dn)}
		if _, err := os.Lstat(plans[i].dir); err == nil {
			return fmt.Errorf("maildir: folder %q: directory exists: %w", np, mailbox.ErrExists)
		}
	}
	// Each directory rename is atomic; the set is not. On failure the
	// ones done are undone.
	for i := range plans {
		p := &plans[i]
		if !p.f.onDisk {
			continue
		}
		if err := os.Rename(p.f.dir, p.dir); err != nil {
			for j := i - 1; j >= 0; j-- {
				if plans[j].renamedOnDisk {
					os.Rename(plans[j].dir, plans[j].f.dir)
				}
			}
			return fmt.Errorf("maildir: renaming folder: %w", err)
		}
		p.renamedOnDisk = true
	}
	if err := syncDir(b.root); err != nil {
		return err
	}
	b.editSubscriptions(func(s *subscriptions) { s.rename(from, to) })
	return b.commit(func(w *txw) error {
		ms, t := b.bump()
		if op := b.folders[mailbox.Parent(from)]; op != nil {
			op.touch(ms, t)
			if err := w.putFolder(op); err != nil {
				return err
			}
		}
		for _, p := range plans {
			delete(b.folders, p.f.path)
		}
		for _, p := range plans {
			f := p.f
			f.setPath(p.path, p.dir)
			f.touch(ms, t)
			b.folders[p.path] = f
			if err := w.putFolder(f); err != nil {
				return err
			}
		}
		newParent.touch(ms, t)
		if err := w.putFolder(newParent); err != nil {
			return err
		}
		return b.pruneImplicit(w, ms, t)
	})
}

// deleteFolder removes a folder and its subfolders. Each directory is
// first renamed to a trash name, which makes it disappear atomically;
// the returned trash directories are removed by the caller without the
// lock.
func (b *mbox) deleteFolder(ctx context.Context, path string) ([]string, error) {
	if path == "" || path == mailbox.Inbox {
		return nil, fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrForbidden)
	}
	if err := b.sync(ctx, false); err != nil {
		return nil, err
	}
	if b.folders[path] == nil {
		return nil, fmt.Errorf("maildir: folder %q: %w", path, mailbox.ErrNotFound)
	}
	gone := b.subtree(path)
	var trash, from []string
	for _, f := range gone {
		if !f.onDisk {
			continue
		}
		t := filepath.Join(b.root, trashPrefix+"."+b.s.uniqueBase())
		if err := os.Rename(f.dir, t); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // already gone
			}
			// Put back what was trashed: all or nothing.
			for i, d := range trash {
				os.Rename(d, from[i])
			}
			return nil, fmt.Errorf("maildir: deleting folder: %w", err)
		}
		trash, from = append(trash, t), append(from, f.dir)
	}
	if err := syncDir(b.root); err != nil {
		return trash, err
	}
	b.editSubscriptions(func(s *subscriptions) { s.remove(path) })
	err := b.commit(func(w *txw) error {
		ms, t := b.bump()
		for _, f := range gone {
			if err := w.delFolder(f.fid); err != nil {
				return err
			}
			var err error
			f.each(func(m *mailbox.Message, _ fileRef) bool {
				if m.HasDeadProps {
					err = w.tx.Bucket(bucketProps).Delete(msgPropKey(m.ID))
				}
				if err == nil {
					err = w.tx.Bucket(bucketStructs).Delete(structKey(m.ID))
				}
				return err == nil
			})
			if err != nil {
				return err
			}
			delete(b.folders, f.path)
		}
		if parent := b.folders[mailbox.Parent(path)]; parent != nil {
			parent.touch(ms, t)
			if err := w.putFolder(parent); err != nil {
				return err
			}
		}
		return b.pruneImplicit(w, ms, t)
	})
	return trash, err
}

// removeTrash removes trashed folder directories.
func removeTrash(s *Store, dirs []string) {
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			s.log.Warn().Err(err).Str("dir", d).Msg("cannot remove deleted folder; it is removed when the mailbox is next opened")
		}
	}
}

// pruneImplicit drops implicit folders (listed only as parents, with no
// directory) that have no subfolder left, as Dovecot drops \NoSelect
// folders without children.
func (b *mbox) pruneImplicit(w *txw, ms uint64, t time.Time) error {
	for {
		var drop *folder
		for p, f := range b.folders {
			if p == "" || p == mailbox.Inbox || f.onDisk {
				continue
			}
			hasChild := false
			for q := range b.folders {
				if mailbox.IsDescendant(q, p) {
					hasChild = true
					break
				}
			}
			if !hasChild {
				drop = f
				break
			}
		}
		if drop == nil {
			return nil
		}
		if err := w.delFolder(drop.fid); err != nil {
			return err
		}
		delete(b.folders, drop.path)
		if parent := b.folders[mailbox.Parent(drop.path)]; parent != nil {
			parent.touch(ms, t)
			if err := w.putFolder(parent); err != nil {
				return err
			}
		}
	}
}
