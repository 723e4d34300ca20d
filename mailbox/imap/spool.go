package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox"
)

// spoolMemory is how much of an appended message is kept in memory
// before the rest goes to an unlinked temporary file: 1 MiB holds almost
// every message a client PUTs, and bounds memory per concurrent upload.
const spoolMemory = 1 << 20

// spool holds an appended message between the client's upload and the
// upstream APPEND: IMAP needs the literal's size before its first byte
// (RFC 3501 §4.3), and the size limit must be enforced before anything
// reaches upstream.
type spool struct {
	mem  bytes.Buffer
	file *os.File // nil while everything fits in mem
	size int64
	// The scan of the stored bytes: envelope and MIME structure.
	st *convert.Structure
	// dirty is set when the bytes hold a NUL, a bare CR or a bare LF:
	// upstream stores and serves such a message with other bytes (IMAP
	// messages are CRLF text, RFC 3501 §4.3, and Dovecot rewrites line
	// ends), so sizes and offsets must come from upstream, not from here.
	dirty bool
	prev  byte // last byte written, for a CR LF split across writes
}

// note tracks dirty over the bytes written.
func (sp *spool) note(b []byte) {
	if sp.dirty {
		return
	}
	prev := sp.prev
	for _, c := range b {
		switch {
		case c == 0:
			sp.dirty = true
		case c == '\n' && prev != '\r':
			sp.dirty = true
		case prev == '\r' && c != '\n':
			sp.dirty = true
		}
		prev = c
	}
	sp.prev = prev
}

// spoolMessage reads r to the end (at most maxSize bytes when > 0,
// failing with a *limits.Error beyond), then scans what it read.
func spoolMessage(ctx context.Context, r io.Reader, maxSize int64, dir string) (*spool, error) {
	if maxSize > 0 {
		r = limits.NewReader(r, "max-message-size", maxSize)
	}
	sp := &spool{}
	buf := make([]byte, 32<<10) // 32 KiB: the copy buffer io.Copy would use
	for {
		if err := ctx.Err(); err != nil {
			sp.Close()
			return nil, err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if werr := sp.write(buf[:n], dir); werr != nil {
				sp.Close()
				return nil, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			sp.Close()
			var le *limits.Error
			if errors.As(err, &le) {
				return nil, err
			}
			return nil, fmt.Errorf("imap: reading the message: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		sp.Close()
		return nil, err
	}
	if sp.prev == '\r' {
		sp.dirty = true // a final bare CR
	}
	st, err := convert.Scan(sp.reader(), convert.ScanOptions{})
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("imap: scanning the message: %w", err)
	}
	sp.st = st
	return sp, nil
}

func (sp *spool) write(b []byte, dir string) error {
	sp.size += int64(len(b))
	sp.note(b)
	if sp.file == nil && sp.mem.Len()+len(b) <= spoolMemory {
		sp.mem.Write(b)
		return nil
	}
	if sp.file == nil {
		f, err := os.CreateTemp(dir, ".spool-*")
		if err != nil {
			return fmt.Errorf("imap: spool: %w", err)
		}
		// Unlinked at once: nothing is left behind by a crash.
		os.Remove(f.Name())
		sp.file = f
		if _, err := f.Write(sp.mem.Bytes()); err != nil {
			return fmt.Errorf("imap: spool: %w", err)
		}
		sp.mem = bytes.Buffer{}
	}
	if _, err := sp.file.Write(b); err != nil {
		return fmt.Errorf("imap: spool: %w", err)
	}
	return nil
}

// reader returns the spooled bytes from the start.
func (sp *spool) reader() io.Reader {
	if sp.file != nil {
		return io.NewSectionReader(sp.file, 0, sp.size)
	}
	return bytes.NewReader(sp.mem.Bytes())
}

// structure returns the scanned structure in the index's form.
func (sp *spool) structure() *mailbox.Structure {
	return &mailbox.Structure{Parts: sp.st.Parts, Problems: sp.st.Problems}
}

// Close releases the spool.
func (sp *spool) Close() {
	if sp.file != nil {
		sp.file.Close()
		sp.file = nil
	}
}
