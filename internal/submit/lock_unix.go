//go:build unix

package submit

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir/LOCK for the life of the Queue:
// two processes delivering from one queue would send messages twice.
// The lock is released by closing the returned file (or by the process
// ending).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("submit: the queue in %s is in use by another process (%v)", dir, err)
	}
	return f, nil
}
