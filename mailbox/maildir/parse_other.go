//go:build !linux

package maildir

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// openScan opens a message file for indexing and returns its size and
// mtime.
func openScan(path string, _ *atomic.Bool) (io.ReadCloser, int64, time.Time, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, time.Time{}, err
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return nil, 0, time.Time{}, fmt.Errorf("maildir: %s is not a regular file", path)
	}
	return fh, st.Size(), st.ModTime().UTC(), nil
}
