//go:build linux

package maildir

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"time"
)

// openScan opens a message file for indexing with raw system calls:
// open, fstat, reads, close, and nothing else (os.Open adds poller
// registration calls that cost a third of the time of indexing a folder
// of small messages). O_NOATIME keeps indexing from dirtying every inode
// it reads; noatimeRefused is set once the kernel refused it (the files
// belong to another user and davmail lacks CAP_FOWNER), so later opens
// skip it. It returns the file's size and mtime.
func openScan(path string, noatimeRefused *atomic.Bool) (io.ReadCloser, int64, time.Time, error) {
	flags := syscall.O_RDONLY | syscall.O_CLOEXEC
	var fd int
	var err error
	for {
		if !noatimeRefused.Load() {
			fd, err = syscall.Open(path, flags|syscall.O_NOATIME, 0)
			if errors.Is(err, syscall.EPERM) {
				noatimeRefused.Store(true)
				continue
			}
		} else {
			fd, err = syscall.Open(path, flags, 0)
		}
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, 0, time.Time{}, &pathError{op: "open", path: path, err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, 0, time.Time{}, &pathError{op: "fstat", path: path, err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, 0, time.Time{}, fmt.Errorf("maildir: %s is not a regular file", path)
	}
	return fdReader(fd), st.Size, time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(), nil
}

// fdReader reads a file descriptor directly.
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(int(f), p)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f fdReader) Close() error { return syscall.Close(int(f)) }

// pathError is fs.PathError; errors.Is(err, fs.ErrNotExist) works
// through syscall.Errno's Is.
type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
