package memstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// allFlags is every flag bit mailbox defines; other bits are dropped.
const allFlags = mailbox.FlagDraft | mailbox.FlagFlagged | mailbox.FlagPassed |
	mailbox.FlagAnswered | mailbox.FlagSeen | mailbox.FlagDeleted

// readChunk is the fixed buffer Append reads through; 32 KiB is io.Copy's.
const readChunk = 32 << 10

// maxDerivedName caps a name derived from a subject, in bytes, leaving
// room within ValidSegment's 255 bytes for UniqueName's "-N" suffix.
const maxDerivedName = 240

func errMessage(folder, name string, err error) error {
	return fmt.Errorf("memstore: message %q in %q: %w", name, folder, err)
}

// message returns the message folder/name; the caller holds mu.
func (mb *mbox) message(folder, name string) (*folder, *message, error) {
	f, err := mb.folder(folder)
	if err != nil {
		return nil, nil, err
	}
	m := f.msgs[name]
	if m == nil {
		return nil, nil, errMessage(folder, name, mailbox.ErrNotFound)
	}
	return f, m, nil
}

// msgFolder returns a folder that can hold messages: the root cannot.
func (mb *mbox) msgFolder(path string) (*folder, error) {
	f, err := mb.folder(path)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("memstore: the root folder holds no messages: %w", mailbox.ErrForbidden)
	}
	return f, nil
}

func (mb *mbox) List(ctx context.Context, folder string) ([]mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mb.mu.RLock()
	f, err := mb.folder(folder)
	if err != nil {
		mb.mu.RUnlock()
		return nil, err
	}
	if l := f.list; l != nil {
		mb.mu.RUnlock()
		return l, nil
	}
	mb.mu.RUnlock()

	// Rebuild the snapshot under the write lock, rechecking: the folder
	// may have changed or gone in between.
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if f, err = mb.folder(folder); err != nil {
		return nil, err
	}
	if f.list == nil {
		l := make([]mailbox.Message, 0, len(f.msgs))
		for _, m := range f.msgs {
			l = append(l, m.m)
		}
		slices.SortFunc(l, func(a, b mailbox.Message) int { return cmp.Compare(a.UID, b.UID) })
		f.list = l
	}
	return f.list, nil
}

func (mb *mbox) Stat(ctx context.Context, folder, name string) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	_, m, err := mb.message(folder, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	return m.m, nil
}

func (mb *mbox) StatID(ctx context.Context, id uint64) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	m := mb.byID[id]
	if m == nil {
		return mailbox.Message{}, fmt.Errorf("memstore: message id %d: %w", id, mailbox.ErrNotFound)
	}
	return m.m, nil
}

func (mb *mbox) StatUID(ctx context.Context, folder string, uid uint32) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	f, err := mb.folder(folder)
	if err != nil {
		return mailbox.Message{}, err
	}
	m := f.byUID[uid]
	if m == nil {
		return mailbox.Message{}, fmt.Errorf("memstore: message uid %d in %q: %w", uid, folder, mailbox.ErrNotFound)
	}
	return m.m, nil
}

func (mb *mbox) Open(ctx context.Context, folder, name string) (mailbox.Content, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	_, m, err := mb.message(folder, name)
	if err != nil {
		return nil, err
	}
	return &content{r: bytes.NewReader(m.data)}, nil
}

// Structure returns the structure scanned when the message was stored.
func (mb *mbox) Structure(ctx context.Context, folder, name string) (*mailbox.Structure, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	_, m, err := mb.message(folder, name)
	if err != nil {
		return nil, err
	}
	return m.st, nil
}

// checkAppend tells early, before the body is read, whether an Append
// would fail for its folder or name; the caller holds mu (read).
func (mb *mbox) checkAppend(folder string, opts mailbox.AppendOptions) error {
	f, err := mb.msgFolder(folder)
	if err != nil {
		return err
	}
	if opts.Name != "" && !opts.Replace && f.msgs[opts.Name] != nil {
		return errMessage(folder, opts.Name, mailbox.ErrExists)
	}
	return nil
}

// readBody reads r whole through a fixed buffer, failing when ctx is
// done, when maxSize (if > 0) is passed, or when the store's byte budget
// would be.
func (mb *mbox) readBody(ctx context.Context, r io.Reader, maxSize int64) ([]byte, error) {
	src := io.Reader(ctxReader{ctx: ctx, r: r})
	if maxSize > 0 {
		src = limits.NewReader(src, "max-message-size", maxSize)
	}
	budget := int64(-1)
	if max := mb.s.opts.MaxBytes; max >= 0 {
		budget = max - mb.s.bytes.Load()
	}
	var out bytes.Buffer
	chunk := make([]byte, readChunk)
	for {
		n, err := src.Read(chunk)
		out.Write(chunk[:n])
		if budget >= 0 && int64(out.Len()) > budget {
			return nil, full("memstore-max-bytes", mb.s.opts.MaxBytes, mb.s.bytes.Load()+int64(out.Len()), "")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	data := out.Bytes()
	if cap(data)-len(data) > len(data)/4 {
		// Do not keep the buffer's growth slack for the life of the message.
		data = bytes.Clone(data)
	}
	return data, nil
}

// derivedName is the name of a message appended without one: the
// Exchange-style "<Subject>.EML" of mailbox.NameFromSubject, shortened to
// maxDerivedName bytes if need be so that it stays a valid segment.
func derivedName(subject string) string {
	name := mailbox.NameFromSubject(subject)
	if len(name) <= maxDerivedName {
		return name
	}
	const ext = ".EML"
	stem := name[:len(name)-len(ext)]
	for len(stem)+len(ext) > maxDerivedName {
		_, n := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-n]
	}
	return stem + ext
}

func (mb *mbox) Append(ctx context.Context, folder string, r io.Reader, opts mailbox.AppendOptions) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	if opts.Name != "" && !mailbox.ValidSegment(opts.Name) {
		return mailbox.Message{}, errMessage(folder, opts.Name, mailbox.ErrInvalidName)
	}
	mb.mu.RLock()
	err := mb.checkAppend(folder, opts)
	mb.mu.RUnlock()
	if err != nil {
		return mailbox.Message{}, err
	}

	data, err := mb.readBody(ctx, r, opts.MaxSize)
	if err != nil {
		return mailbox.Message{}, err
	}
	st, err := convert.Scan(bytes.NewReader(data), convert.ScanOptions{})
	if err != nil {
		return mailbox.Message{}, err
	}
	env := st.Envelope
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	size := int64(len(data))
	if err := mb.s.reserve(size); err != nil {
		return mailbox.Message{}, err
	}

	mb.mu.Lock()
	defer mb.mu.Unlock()
	m, err := mb.insert(folder, data, env, opts)
	if err == nil {
		m.st = &mailbox.Structure{Parts: st.Parts, Problems: st.Problems}
	}
	if err != nil {
		mb.s.release(size)
		return mailbox.Message{}, err
	}
	return m.m, nil
}

// insert stores a read message; the caller holds mu and has reserved its
// bytes.
func (mb *mbox) insert(folder string, data []byte, env mailbox.Envelope, opts mailbox.AppendOptions) (*message, error) {
	// Checked again: the folder may have changed while the body was read.
	f, err := mb.msgFolder(folder)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	var old *message
	if name == "" {
		name = mailbox.UniqueName(derivedName(env.Subject), func(n string) bool { return f.msgs[n] != nil })
	} else if old = f.msgs[name]; old != nil && !opts.Replace {
		return nil, errMessage(folder, name, mailbox.ErrExists)
	}
	if old == nil {
		if err := mb.checkMessageCap(); err != nil {
			return nil, err
		}
	}
	ms, t := mb.bump()
	idate := opts.InternalDate
	if idate.IsZero() {
		idate = t
	}
	mb.lastID++
	m := &message{
		m: mailbox.Message{
			ID:           mb.lastID,
			Name:         name,
			Size:         int64(len(data)),
			Flags:        opts.Flags & allFlags,
			InternalDate: idate,
			Modified:     t,
			Modseq:       ms,
			Envelope:     env,
		},
		data: data,
	}
	if old != nil {
		// RFC 4918 §9.7.1: a PUT replacing a resource leaves its
		// (dead) properties alone; DavMail relies on it, setting them
		// with PROPPATCH before the PUT (exchange-webdav.md §6.1).
		m.props = old.props
		mb.remove(f, old)
		mb.s.release(old.m.Size)
	}
	m.m.HasDeadProps = len(m.props) > 0
	m.m.UID = mb.takeUID(f) // new content: a new UID, even under an old name
	mb.add(f, m)
	f.touch(ms, t)
	return m, nil
}

func (mb *mbox) checkMessageCap() error {
	if max := mb.s.opts.MaxMessages; max >= 0 && len(mb.byID) >= max {
		return full("memstore-max-messages", int64(max), int64(len(mb.byID)+1), "messages")
	}
	return nil
}

// transferCheck resolves the source and destination of a Copy or Move;
// the caller holds mu.
func (mb *mbox) transferCheck(folder, name, dstFolder, dstName string) (src, dst *folder, m *message, newName string, err error) {
	if dstName == "" {
		dstName = name
	} else if !mailbox.ValidSegment(dstName) {
		return nil, nil, nil, "", errMessage(dstFolder, dstName, mailbox.ErrInvalidName)
	}
	if src, m, err = mb.message(folder, name); err != nil {
		return nil, nil, nil, "", err
	}
	if dst, err = mb.msgFolder(dstFolder); err != nil {
		return nil, nil, nil, "", err
	}
	return src, dst, m, dstName, nil
}

func (mb *mbox) Copy(ctx context.Context, folder, name, dstFolder, dstName string, replace bool) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	_, dst, m, dstName, err := mb.transferCheck(folder, name, dstFolder, dstName)
	if err != nil {
		return mailbox.Message{}, err
	}
	if dst.path == folder && dstName == name {
		// RFC 4918 §9.8.5: 403 when source and destination are the same.
		return mailbox.Message{}, fmt.Errorf("memstore: copy of %q onto itself: %w", name, mailbox.ErrForbidden)
	}
	old := dst.msgs[dstName]
	if old != nil && !replace {
		return mailbox.Message{}, errMessage(dstFolder, dstName, mailbox.ErrExists)
	}
	if old == nil {
		if err := mb.checkMessageCap(); err != nil {
			return mailbox.Message{}, err
		}
	}
	if err := mb.s.reserve(m.m.Size); err != nil {
		return mailbox.Message{}, err
	}
	ms, t := mb.bump()
	mb.lastID++
	c := &message{m: m.m, data: m.data, props: slices.Clone(m.props), st: m.st}
	c.m.ID, c.m.Name, c.m.Modseq, c.m.Modified = mb.lastID, dstName, ms, t
	if old != nil {
		mb.remove(dst, old)
		mb.s.release(old.m.Size)
	}
	c.m.UID = mb.takeUID(dst)
	mb.add(dst, c)
	dst.touch(ms, t)
	return c.m, nil
}

func (mb *mbox) Move(ctx context.Context, folder, name, dstFolder, dstName string, replace bool) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	src, dst, m, dstName, err := mb.transferCheck(folder, name, dstFolder, dstName)
	if err != nil {
		return mailbox.Message{}, err
	}
	if src == dst && dstName == name {
		return m.m, nil // onto itself: nothing to do
	}
	old := dst.msgs[dstName]
	if old != nil && !replace {
		return mailbox.Message{}, errMessage(dstFolder, dstName, mailbox.ErrExists)
	}
	ms, t := mb.bump()
	if old != nil {
		mb.remove(dst, old)
		mb.s.release(old.m.Size)
	}
	mb.remove(src, m)
	m.m.Name, m.m.Modseq, m.m.Modified = dstName, ms, t
	if dst != src {
		// RFC 3501 §2.3.1.1: a message entering a folder gets a new UID
		// there; a rename within the folder keeps its UID.
		m.m.UID = mb.takeUID(dst)
	}
	mb.add(dst, m)
	src.touch(ms, t)
	dst.touch(ms, t)
	return m.m, nil
}

func (mb *mbox) Delete(ctx context.Context, folder, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	f, m, err := mb.message(folder, name)
	if err != nil {
		return err
	}
	mb.remove(f, m)
	mb.s.release(m.m.Size)
	f.touch(mb.bump())
	return nil
}

func (mb *mbox) SetFlags(ctx context.Context, folder, name string, flags mailbox.Flags, add bool) (mailbox.Message, error) {
	if err := ctx.Err(); err != nil {
		return mailbox.Message{}, err
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	f, m, err := mb.message(folder, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	nf := m.m.Flags &^ flags
	if add {
		nf = m.m.Flags | flags
	}
	nf &= allFlags
	if nf == m.m.Flags {
		return m.m, nil // no change, no new Modseq
	}
	ms, t := mb.bump()
	mb.remove(f, m)
	m.m.Flags, m.m.Modseq, m.m.Modified = nf, ms, t
	mb.add(f, m)
	f.touch(ms, t)
	return m.m, nil
}

// propTarget returns the dead-property list of folder (name "") or of a
// message, and a function recording a change of it; the caller holds mu.
func (mb *mbox) propTarget(folder, name string) (props *[]mailbox.Prop, changed func(ms uint64, t time.Time), err error) {
	if name == "" {
		f, err := mb.folder(folder)
		if err != nil {
			return nil, nil, err
		}
		return &f.props, f.touch, nil
	}
	f, m, err := mb.message(folder, name)
	if err != nil {
		return nil, nil, err
	}
	return &m.props, func(ms uint64, t time.Time) {
		m.m.Modseq, m.m.Modified = ms, t
		m.m.HasDeadProps = len(m.props) > 0
		f.touch(ms, t)
	}, nil
}

func (mb *mbox) DeadProps(ctx context.Context, folder, name string) ([]mailbox.Prop, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	props, _, err := mb.propTarget(folder, name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(*props), nil
}

// errEmptyPropName refuses a property without a local name, which no XML
// element can have.
var errEmptyPropName = fmt.Errorf("memstore: dead property without a name: %w", mailbox.ErrInvalidName)

func (mb *mbox) PatchProps(ctx context.Context, folder, name string, set []mailbox.Prop, remove []mailbox.PropName) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range set {
		if p.Local == "" {
			return errEmptyPropName
		}
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	props, changed, err := mb.propTarget(folder, name)
	if err != nil {
		return err
	}
	next, err := patch(*props, set, remove)
	if err != nil {
		return err
	}
	*props = next
	changed(mb.bump())
	return nil
}

// patch applies a dead-property patch with the caps every backend shares.
func patch(cur []mailbox.Prop, set []mailbox.Prop, remove []mailbox.PropName) ([]mailbox.Prop, error) {
	return mailbox.MergeProps(cur, set, remove)
}
