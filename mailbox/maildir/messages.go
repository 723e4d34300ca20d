package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

func (b *mbox) list(ctx context.Context, path string) ([]mailbox.Message, error) {
	if err := b.sync(ctx, false, path); err != nil {
		return nil, err
	}
	f, err := b.folder(path)
	if err != nil {
		return nil, err
	}
	return f.list(), nil
}

// stat finds a message by name. When the folder changed since its last
// scan, a message found in the index is confirmed by a stat of its file
// (cheaper than reading a big directory); only a miss rescans.
func (b *mbox) stat(ctx context.Context, fpath, name string) (*folder, mailbox.Message, fileRef, error) {
	f, m, r, err := b.statBy(ctx, fpath, func(f *folder) (mailbox.Message, fileRef, bool) { return f.lookup(name) })
	if errors.Is(err, errNoMessage) {
		err = errMessage(fpath, name, mailbox.ErrNotFound)
	}
	return f, m, r, err
}

// statUID finds a message by UID, as stat finds one by name: a binary
// search of base (sorted by UID) after a look at the overlay.
func (b *mbox) statUID(ctx context.Context, fpath string, uid uint32) (mailbox.Message, error) {
	_, m, _, err := b.statBy(ctx, fpath, func(f *folder) (mailbox.Message, fileRef, bool) { return f.get(uid) })
	if errors.Is(err, errNoMessage) {
		err = fmt.Errorf("maildir: message uid %d in %q: %w", uid, fpath, mailbox.ErrNotFound)
	}
	return m, err
}

// errNoMessage is statBy's miss, which its callers describe.
var errNoMessage = fmt.Errorf("maildir: no such message: %w", mailbox.ErrNotFound)

// statBy finds a message of folder with lookup, confirming it as stat
// describes.
func (b *mbox) statBy(ctx context.Context, fpath string, lookup func(*folder) (mailbox.Message, fileRef, bool)) (*folder, mailbox.Message, fileRef, error) {
	if err := b.sync(ctx, false); err != nil {
		return nil, mailbox.Message{}, fileRef{}, err
	}
	f, err := b.folder(fpath)
	if err != nil {
		return nil, mailbox.Message{}, fileRef{}, err
	}
	st, err := b.staleState(f)
	if err != nil {
		return nil, mailbox.Message{}, fileRef{}, err
	}
	m, r, ok := lookup(f)
	if ok && st == nil {
		return f, m, r, nil
	}
	if ok {
		if _, err := os.Lstat(f.filePath(r)); err == nil {
			return f, m, r, nil
		}
	}
	if st != nil {
		if err := b.sync(ctx, false, fpath); err != nil {
			return nil, mailbox.Message{}, fileRef{}, err
		}
		if f, err = b.folder(fpath); err != nil {
			return nil, mailbox.Message{}, fileRef{}, err
		}
		if m, r, ok = lookup(f); ok {
			return f, m, r, nil
		}
	}
	return nil, mailbox.Message{}, fileRef{}, errNoMessage
}

// find finds a message by name for a write, without a freshness check:
// a write whose file is gone rescans and retries (see retry).
func (b *mbox) find(ctx context.Context, folder, name string) (*folder, mailbox.Message, fileRef, error) {
	if err := b.sync(ctx, false); err != nil {
		return nil, mailbox.Message{}, fileRef{}, err
	}
	f, err := b.folder(folder)
	if err != nil {
		return nil, mailbox.Message{}, fileRef{}, err
	}
	m, r, ok := f.lookup(name)
	if !ok {
		// Not in the index: it may have just arrived.
		return b.stat(ctx, folder, name)
	}
	return f, m, r, nil
}

// retry runs op on the message folder/name; if op fails because the
// file is gone (another program renamed it for a flag change, or moved
// or deleted it), the folder is rescanned and op runs once more on what
// the scan found.
func (b *mbox) retry(ctx context.Context, folder, name string, op func(f *folder, m mailbox.Message, r fileRef) error) (*folder, mailbox.Message, fileRef, error) {
	f, m, r, err := b.find(ctx, folder, name)
	if err != nil {
		return nil, m, r, err
	}
	err = op(f, m, r)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, m, r, err
	}
	if _, serr := os.Lstat(f.filePath(r)); serr == nil {
		return f, m, r, err // the file is there: the missing piece is something else
	}
	f.scanned = 0 // force a rescan
	if err := b.sync(ctx, false, folder); err != nil {
		return nil, m, r, err
	}
	if f, err = b.folder(folder); err != nil {
		return nil, m, r, err
	}
	var ok bool
	if m, r, ok = f.lookup(name); !ok {
		return nil, m, r, errMessage(folder, name, mailbox.ErrNotFound)
	}
	return f, m, r, op(f, m, r)
}

func (b *mbox) statID(ctx context.Context, id uint64) (mailbox.Message, error) {
	if err := b.sync(ctx, false); err != nil {
		return mailbox.Message{}, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		for _, f := range b.folders {
			m, r, ok := f.getID(id)
			if !ok {
				continue
			}
			st, err := b.staleState(f)
			if err != nil {
				return mailbox.Message{}, err
			}
			if st == nil {
				return m, nil
			}
			if _, err := os.Lstat(f.filePath(r)); err == nil {
				return m, nil
			}
			// Gone from there: rescan (moves to other folders included)
			// and look again.
			if err := b.sync(ctx, false, f.path); err != nil {
				return mailbox.Message{}, err
			}
			break
		}
	}
	for _, f := range b.folders {
		if m, _, ok := f.getID(id); ok {
			return m, nil
		}
	}
	return mailbox.Message{}, fmt.Errorf("maildir: message id %d: %w", id, mailbox.ErrNotFound)
}

func (b *mbox) open(ctx context.Context, folder, name string) (mailbox.Content, error) {
	f, m, r, err := b.stat(ctx, folder, name)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(f.filePath(r))
	if errors.Is(err, fs.ErrNotExist) {
		f.scanned = 0
		if f, m, r, err = b.stat(ctx, folder, name); err != nil {
			return nil, err
		}
		fh, err = os.Open(f.filePath(r))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errMessage(folder, name, mailbox.ErrNotFound)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("maildir: %w", err)
	}
	if st.Size() != m.Size {
		// Maildir files never change; someone edited this one in place.
		// Serve exactly what is there.
		b.log.Warn().Str("folder", folder).Str("file", r.name).Int64("index_size", m.Size).Int64("file_size", st.Size()).Msg("message file changed size")
	}
	b.s.stats.opened.Add(1)
	return newContent(fh, st.Size()), nil
}

// materialize gives an implicit folder (listed only as a parent) its
// own directory, before the first message is stored in it.
//
// For a folder with a directory it makes sure cur/, new/ and tmp/ exist
// (once per load), as Dovecot does: a Maildir copied by hand may lack an
// empty tmp/.
func (b *mbox) materialize(f *folder) error {
	if f.fid == 0 || f.subdirsOK {
		return nil
	}
	if f.onDisk {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.Mkdir(filepath.Join(f.dir, sub), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("maildir: %w", err)
			}
		}
		f.subdirsOK = true
		return nil
	}
	if err := b.makeFolderDir(f.dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	f.onDisk, f.scanned, f.subdirsOK = true, 0, true
	return b.commit(func(w *txw) error { return w.putFolder(f) })
}

// append stores a message: checked and prepared under the lock, copied
// into tmp/ without it (a big message must not block the mailbox), then
// renamed into cur/ and indexed under the lock.
func (h *handle) append(ctx context.Context, folder string, r io.Reader, opts mailbox.AppendOptions) (mailbox.Message, error) {
	if opts.Name != "" && !mailbox.ValidSegment(opts.Name) {
		return mailbox.Message{}, errMessage(folder, opts.Name, mailbox.ErrInvalidName)
	}
	// Hold the mailbox open while the message streams into tmp/, outside
	// its lock: a mailbox closed meanwhile to make room for others (the
	// MaxOpen and MaxOpenMessages caps) would, when reopened, clean its
	// tmp/ of the gateway's temporary files, this one included.
	hold, err := h.s.acquire(ctx, h.user)
	if err != nil {
		return mailbox.Message{}, err
	}
	defer h.s.release(hold)
	base := h.s.uniqueBase()
	dir, err := with(ctx, h, func(b *mbox) (string, error) {
		if err := b.sync(ctx, false); err != nil {
			return "", err
		}
		f, err := b.msgFolder(folder)
		if err != nil {
			return "", err
		}
		if opts.Name != "" && !opts.Replace && f.taken(opts.Name) {
			return "", errMessage(folder, opts.Name, mailbox.ErrExists)
		}
		return f.dir, b.materialize(f)
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	tmpName := base + tmpMarker
	size, sc, idate, err := h.s.writeTemp(ctx, filepath.Join(dir, "tmp", tmpName), r, opts)
	if err != nil {
		return mailbox.Message{}, err
	}
	// Once the message is durably written it is stored even if the
	// client has gone meanwhile.
	fctx := context.WithoutCancel(ctx)
	m, err := with(fctx, h, func(b *mbox) (mailbox.Message, error) {
		return b.finishAppend(fctx, folder, base, tmpName, size, sc, idate, opts)
	})
	if err != nil {
		// Gone already if the folder was renamed or deleted meanwhile;
		// then this removes nothing.
		os.Remove(filepath.Join(dir, "tmp", tmpName))
	}
	return m, err
}

// writeTemp streams r into a new file at path through the fixed buffer,
// fsyncs it with its mtime set to the internal date (which a rebuilt
// index reads back), and scans its envelope. On any failure the file is
// removed.
func (s *Store) writeTemp(ctx context.Context, path string, r io.Reader, opts mailbox.AppendOptions) (size int64, sc scanned, idate time.Time, err error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, sc, idate, fmt.Errorf("maildir: folder vanished while storing: %w", mailbox.ErrNotFound)
		}
		return 0, sc, idate, fmt.Errorf("maildir: %w", err)
	}
	defer func() {
		if err != nil {
			fh.Close()
			os.Remove(path)
		}
	}()
	src := r
	if opts.MaxSize > 0 {
		src = limits.NewReader(r, "max-message-size", opts.MaxSize)
	}
	if size, err = s.copyData(ctx, fh, src); err != nil {
		var le *limits.Error
		if errors.As(err, &le) || errors.Is(err, ctx.Err()) {
			return 0, sc, idate, err
		}
		return 0, sc, idate, fmt.Errorf("maildir: storing message: %w", err)
	}
	idate = opts.InternalDate
	if idate.IsZero() {
		idate = time.Now()
	}
	idate = idate.UTC()
	if err = os.Chtimes(path, idate, idate); err != nil {
		return 0, sc, idate, fmt.Errorf("maildir: %w", err)
	}
	if err = fh.Sync(); err != nil {
		return 0, sc, idate, fmt.Errorf("maildir: fsync: %w", err)
	}
	if _, err = fh.Seek(0, io.SeekStart); err != nil {
		return 0, sc, idate, fmt.Errorf("maildir: %w", err)
	}
	if sc.env, sc.st, err = scanMessage(fh); err != nil {
		return 0, sc, idate, fmt.Errorf("maildir: reading stored message: %w", err)
	}
	if err = fh.Close(); err != nil {
		return 0, sc, idate, fmt.Errorf("maildir: %w", err)
	}
	return size, sc, idate, nil
}

// scanned is what indexing learns from a message's bytes.
type scanned struct {
	env mailbox.Envelope
	st  []byte // structure record (structure.go)
}

// finishAppend renames a written temp file into cur/ and indexes it.
func (b *mbox) finishAppend(ctx context.Context, folder, base, tmpName string, size int64, sc scanned, idate time.Time, opts mailbox.AppendOptions) (_ mailbox.Message, err error) {
	env := sc.env
	if err := b.sync(ctx, false); err != nil {
		return mailbox.Message{}, err
	}
	f, err := b.msgFolder(folder)
	if err != nil {
		return mailbox.Message{}, err
	}
	tmpPath := filepath.Join(f.dir, "tmp", tmpName) // where it is now, even if the folder was renamed meanwhile
	renamed := false
	defer func() {
		if err != nil && !renamed {
			os.Remove(tmpPath)
		}
	}()
	if err := b.ensureUIDs(f, 1); err != nil { // before any lookup: it may renumber
		return mailbox.Message{}, err
	}
	name := opts.Name
	var old mailbox.Message
	var oldRef fileRef
	replacing := false
	if name == "" {
		name = mailbox.UniqueName(derivedName(env.Subject), f.taken)
	} else if om, or, ok := f.lookup(name); ok {
		if !opts.Replace {
			return mailbox.Message{}, errMessage(folder, name, mailbox.ErrExists)
		}
		old, oldRef, replacing = om, or, true
	}
	flags := opts.Flags & allFlags
	fileName := base + ",S=" + strconv.FormatInt(size, 10) + infoSep + mergeInfo("", flags)
	ref, ok := newFileRef(fileName, false)
	if !ok {
		return mailbox.Message{}, fmt.Errorf("maildir: bad file name %q", fileName)
	}
	cur := filepath.Join(f.dir, "cur")
	final := filepath.Join(cur, fileName)
	if err := os.Rename(tmpPath, final); err != nil {
		return mailbox.Message{}, fmt.Errorf("maildir: %w", err)
	}
	renamed = true
	if err := syncDir(cur); err != nil {
		os.Remove(final)
		return mailbox.Message{}, err
	}
	var m mailbox.Message
	err = b.commit(func(w *txw) error {
		ms, t := b.bump()
		m = mailbox.Message{
			// A replacing Append is new content: a new ID and UID.
			ID: b.nextID(), UID: f.takeUID(), Folder: f.path, Name: name, Size: size, Flags: flags,
			InternalDate: idate, Modified: t, Modseq: ms, Envelope: env,
		}
		if replacing {
			// RFC 4918 §9.7.1: a PUT replacing a resource leaves its dead
			// properties alone (DavMail sets them before the PUT), as in
			// memstore.
			if old.HasDeadProps {
				if err := w.moveProps(old.ID, m.ID); err != nil {
					return err
				}
				m.HasDeadProps = true
			}
			if err := w.delMsg(f.fid, old.UID, old.ID, false); err != nil {
				return err
			}
		}
		if err := w.putMsg(f.fid, &m, ref); err != nil {
			return err
		}
		if err := w.putStruct(m.ID, sc.st); err != nil {
			return err
		}
		if replacing {
			f.remove(old.UID)
		}
		f.add(m, ref)
		f.touch(ms, t)
		f.maybeCompact()
		return w.putFolder(f)
	})
	if err != nil {
		if rerr := os.Remove(final); rerr == nil {
			syncDir(cur)
		}
		return mailbox.Message{}, err
	}
	if replacing {
		b.removeFile(f, oldRef)
	}
	return m, nil
}

// removeFile unlinks a message file that the index no longer has. A
// failure is logged: the next scan finds the file again as a new message,
// which is better than losing it.
func (b *mbox) removeFile(f *folder, r fileRef) {
	p := f.filePath(r)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log.Error().Err(err).Str("file", p).Msg("cannot remove replaced message file")
		return
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		b.log.Warn().Err(err).Msg("fsync after remove")
	}
}

// transferCheck resolves the destination of a Copy or Move.
func (b *mbox) transferCheck(dstFolder, dstName, name string) (*folder, string, error) {
	if dstName == "" {
		dstName = name
	} else if !mailbox.ValidSegment(dstName) {
		return nil, "", errMessage(dstFolder, dstName, mailbox.ErrInvalidName)
	}
	dst, err := b.msgFolder(dstFolder)
	if err != nil {
		return nil, "", err
	}
	return dst, dstName, nil
}

func (b *mbox) copyMsg(ctx context.Context, fpath, name, dstFolder, dstName string, replace bool) (mailbox.Message, error) {
	if dstName != "" && !mailbox.ValidSegment(dstName) {
		return mailbox.Message{}, errMessage(dstFolder, dstName, mailbox.ErrInvalidName)
	}
	f, m, _, err := b.find(ctx, fpath, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	dst, dstName, err := b.transferCheck(dstFolder, dstName, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	if dst == f && dstName == name {
		// RFC 4918 §9.8.5: 403 when source and destination are the same.
		return mailbox.Message{}, fmt.Errorf("maildir: copy of %q onto itself: %w", name, mailbox.ErrForbidden)
	}
	if err := b.ensureUIDs(dst, 1); err != nil { // before the lookups below: it may renumber
		return mailbox.Message{}, err
	}
	old, oldRef, replacing := dst.lookup(dstName)
	if replacing && !replace {
		return mailbox.Message{}, errMessage(dstFolder, dstName, mailbox.ErrExists)
	}
	if err := b.materialize(dst); err != nil {
		return mailbox.Message{}, err
	}
	newBase := b.s.uniqueBase()
	tmp := filepath.Join(dst.dir, "tmp", newBase+tmpMarker)
	var fileName string
	f, m, _, err = b.retry(ctx, fpath, name, func(f *folder, m mailbox.Message, r fileRef) error {
		fileName = newBase + ",S=" + strconv.FormatInt(m.Size, 10) + infoSep + mergeInfo(r.info(), m.Flags)
		return b.linkOrCopy(ctx, f.filePath(r), tmp, m.InternalDate)
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	ref, _ := newFileRef(fileName, false)
	cur := filepath.Join(dst.dir, "cur")
	final := filepath.Join(cur, fileName)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return mailbox.Message{}, fmt.Errorf("maildir: %w", err)
	}
	if err := syncDir(cur); err != nil {
		os.Remove(final)
		return mailbox.Message{}, err
	}
	c := m
	err = b.commit(func(w *txw) error {
		ms, t := b.bump()
		c.ID, c.Folder, c.Name, c.Modseq, c.Modified = b.nextID(), dst.path, dstName, ms, t
		if m.HasDeadProps {
			// RFC 4918 §9.8.2: dead properties are copied.
			if err := w.copyProps(m.ID, c.ID); err != nil {
				return err
			}
		}
		if err := w.copyStruct(m.ID, c.ID); err != nil {
			return err
		}
		if replacing {
			if err := w.delMsg(dst.fid, old.UID, old.ID, old.HasDeadProps); err != nil {
				return err
			}
			dst.remove(old.UID)
		}
		c.UID = dst.takeUID() // after the replaced one is gone: the copy enters dst
		if err := w.putMsg(dst.fid, &c, ref); err != nil {
			return err
		}
		dst.add(c, ref)
		dst.touch(ms, t)
		dst.maybeCompact()
		return w.putFolder(dst)
	})
	if err != nil {
		if os.Remove(final) == nil {
			syncDir(cur)
		}
		return mailbox.Message{}, err
	}
	if replacing {
		b.removeFile(dst, oldRef)
	}
	return c, nil
}

// linkOrCopy puts the content of src at dst: a hard link (Maildir files
// are immutable, so sharing the inode is safe and instant), or a copy
// through the fixed buffer, fsynced, where links are not possible.
func (b *mbox) linkOrCopy(ctx context.Context, src, dst string, mtime time.Time) error {
	err := os.Link(src, dst)
	if err == nil {
		return nil
	}
	if _, serr := os.Lstat(src); serr != nil {
		return serr // the source is gone: the caller rescans
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	_, err = b.s.copyData(ctx, out, in)
	if err == nil {
		err = os.Chtimes(dst, mtime, mtime)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("maildir: copying message: %w", err)
	}
	return nil
}

func (b *mbox) moveMsg(ctx context.Context, fpath, name, dstFolder, dstName string, replace bool) (mailbox.Message, error) {
	if dstName != "" && !mailbox.ValidSegment(dstName) {
		return mailbox.Message{}, errMessage(dstFolder, dstName, mailbox.ErrInvalidName)
	}
	f, m, r, err := b.find(ctx, fpath, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	dst, dstName, err := b.transferCheck(dstFolder, dstName, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	if dst == f && dstName == name {
		return m, nil // onto itself: nothing to do
	}
	if dst != f {
		// Before the lookup below: it may renumber dst (m is in f).
		if err := b.ensureUIDs(dst, 1); err != nil {
			return mailbox.Message{}, err
		}
	}
	old, oldRef, replacing := dst.lookup(dstName)
	if replacing && !replace {
		return mailbox.Message{}, errMessage(dstFolder, dstName, mailbox.ErrExists)
	}
	nr := r
	if dst != f {
		if err := b.materialize(dst); err != nil {
			return mailbox.Message{}, err
		}
		cur := filepath.Join(dst.dir, "cur")
		f, m, r, err = b.retry(ctx, fpath, name, func(f *folder, m mailbox.Message, r fileRef) error {
			nr, _ = newFileRef(r.base()+infoSep+mergeInfo(r.info(), m.Flags), false)
			return os.Rename(f.filePath(r), filepath.Join(cur, nr.name))
		})
		if err != nil {
			if errors.Is(err, mailbox.ErrNotFound) {
				return mailbox.Message{}, err
			}
			return mailbox.Message{}, fmt.Errorf("maildir: %w", err)
		}
		if err := syncDir(cur); err != nil {
			return mailbox.Message{}, err
		}
		if err := syncDir(filepath.Join(f.dir, r.sub())); err != nil {
			return mailbox.Message{}, err
		}
	}
	err = b.commit(func(w *txw) error {
		ms, t := b.bump()
		if replacing {
			if err := w.delMsg(dst.fid, old.UID, old.ID, old.HasDeadProps); err != nil {
				return err
			}
			dst.remove(old.UID)
		}
		if err := w.delRecord(f.fid, m.UID); err != nil { // the ID stays: its structure and properties with it
			return err
		}
		f.remove(m.UID)
		if dst != f {
			// RFC 3501 §2.3.1.1: a message entering a folder gets a new
			// UID there; a rename within the folder keeps it.
			m.UID = dst.takeUID()
		}
		m.Folder, m.Name, m.Modseq, m.Modified = dst.path, dstName, ms, t
		if err := w.putMsg(dst.fid, &m, nr); err != nil {
			return err
		}
		dst.add(m, nr)
		f.touch(ms, t)
		dst.touch(ms, t)
		f.maybeCompact()
		dst.maybeCompact()
		if err := w.putFolder(f); err != nil {
			return err
		}
		return w.putFolder(dst)
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	if replacing {
		b.removeFile(dst, oldRef)
	}
	return m, nil
}

func (b *mbox) deleteMsg(ctx context.Context, fpath, name string) error {
	f, m, r, err := b.retry(ctx, fpath, name, func(f *folder, m mailbox.Message, r fileRef) error {
		return os.Remove(f.filePath(r))
	})
	if err != nil {
		if errors.Is(err, mailbox.ErrNotFound) {
			return err
		}
		return fmt.Errorf("maildir: %w", err)
	}
	if err := syncDir(filepath.Join(f.dir, r.sub())); err != nil {
		return err
	}
	return b.commit(func(w *txw) error {
		if err := w.delMsg(f.fid, m.UID, m.ID, m.HasDeadProps); err != nil {
			return err
		}
		f.remove(m.UID)
		f.touch(b.bump())
		f.maybeCompact()
		return w.putFolder(f)
	})
}

func (b *mbox) setFlags(ctx context.Context, fpath, name string, flags mailbox.Flags, add bool) (mailbox.Message, error) {
	f, m, _, err := b.find(ctx, fpath, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	nf := m.Flags &^ flags
	if add {
		nf = m.Flags | flags
	}
	if nf&allFlags == m.Flags {
		return m, nil // no change, no new modseq
	}
	var nr fileRef
	var moved bool
	f, m, _, err = b.retry(ctx, fpath, name, func(f *folder, m mailbox.Message, r fileRef) error {
		nf = m.Flags &^ flags
		if add {
			nf = m.Flags | flags
		}
		nf &= allFlags
		nr, _ = newFileRef(r.base()+infoSep+mergeInfo(r.info(), nf), false)
		moved = r.inNew
		if nr.name == r.name && !moved {
			return nil
		}
		return os.Rename(f.filePath(r), f.filePath(nr))
	})
	if err != nil {
		if errors.Is(err, mailbox.ErrNotFound) {
			return mailbox.Message{}, err
		}
		return mailbox.Message{}, fmt.Errorf("maildir: %w", err)
	}
	if nf == m.Flags {
		return m, nil // the rescan found the flags already set
	}
	if err := syncDir(filepath.Join(f.dir, "cur")); err != nil {
		return mailbox.Message{}, err
	}
	if moved {
		if err := syncDir(filepath.Join(f.dir, "new")); err != nil {
			return mailbox.Message{}, err
		}
	}
	err = b.commit(func(w *txw) error {
		ms, t := b.bump()
		m.Flags, m.Modseq, m.Modified = nf, ms, t
		if err := w.putMsg(f.fid, &m, nr); err != nil {
			return err
		}
		f.update(m, nr)
		f.touch(ms, t)
		f.maybeCompact()
		return w.putFolder(f)
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	return m, nil
}
