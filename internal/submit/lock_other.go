//go:build !unix

package submit

import (
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK. Without flock there is no protection against a
// second process using the same queue: do not run two.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}
