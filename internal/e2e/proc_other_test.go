//go:build !unix

package e2e

import "os/exec"

// ownProcessGroup is a no-op where process groups do not exist; the
// context still kills the direct child, and WaitDelay bounds the wait.
func ownProcessGroup(cmd *exec.Cmd) {}
