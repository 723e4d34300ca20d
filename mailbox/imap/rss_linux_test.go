//go:build linux

package imap

import "syscall"

// peakRSS returns the process's peak resident set size in bytes
// (getrusage ru_maxrss, KiB on Linux).
func peakRSS() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Maxrss << 10, true
}
