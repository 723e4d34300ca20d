//go:build !unix

package auth

// lockFile is a no-op where flock(2) is not available: concurrent
// `davmail user` commands may then lose one another's change (the file
// itself is still replaced atomically, never half-written).
func lockFile(path string) (func(), error) { return func() {}, nil }
