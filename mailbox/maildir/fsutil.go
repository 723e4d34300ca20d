package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/davmail/davmail/mailbox"
)

// copyBufSize is the fixed buffer every message copy goes through: 64 KiB
// keeps syscalls few for large messages while memory per request stays
// constant whatever the message size.
const copyBufSize = 64 << 10

// readdirBatch is how many names one readdir call returns: large enough
// that a 100,000-message folder takes ~100 calls, small enough to bound
// the memory of one batch.
const readdirBatch = 1024

// syncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: fsync %s: %w", dir, err)
	}
	return nil
}

// readDirBatches calls fn with the names in dir, readdirBatch at a time;
// the slice is fn's only during the call.
func readDirBatches(dir string, fn func(names []string)) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(readdirBatch)
		if len(names) > 0 {
			fn(names)
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readDirNames returns the names in dir, reading in batches.
func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []string
	for {
		names, err := d.Readdirnames(readdirBatch)
		out = append(out, names...)
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// mtimeOf returns the mtime of path in Unix ns, or -1 when it does not
// exist (a folder without new/, say).
func mtimeOf(path string) (int64, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return st.ModTime().UnixNano(), nil
}

// writerOnly and readerOnly hide ReadFrom and WriteTo so that
// io.CopyBuffer really uses the fixed buffer it is given.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// ctxReader fails a read as soon as ctx is done, so that a copy stops
// between two buffer reads when the client goes away.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// copyData copies r into w through a pooled fixed buffer.
func (s *Store) copyData(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	bp := s.copyBufs.Get().(*[]byte)
	defer s.copyBufs.Put(bp)
	return io.CopyBuffer(writerOnly{w}, readerOnly{ctxReader{ctx: ctx, r: r}}, *bp)
}

// content is an open message file, read through a SectionReader so that
// exactly Size bytes are served even if the file were to change.
type content struct {
	f  *os.File
	sr *io.SectionReader
}

var _ mailbox.Content = (*content)(nil)

func newContent(f *os.File, size int64) *content {
	return &content{f: f, sr: io.NewSectionReader(f, 0, size)}
}

func (c *content) Read(p []byte) (int, error)                { return c.sr.Read(p) }
func (c *content) ReadAt(p []byte, off int64) (int, error)   { return c.sr.ReadAt(p, off) }
func (c *content) Seek(off int64, whence int) (int64, error) { return c.sr.Seek(off, whence) }
func (c *content) Close() error                              { return c.f.Close() }
func (c *content) Size() int64                               { return c.sr.Size() }

// File returns the underlying file so that the HTTP layer can hand it to
// http.ServeContent and let the kernel's sendfile(2) move the bytes. Maildir
// files never change once delivered (RFC: flags live in the name), so the
// file holds exactly Size bytes; dav checks that before using it.
func (c *content) File() *os.File { return c.f }
