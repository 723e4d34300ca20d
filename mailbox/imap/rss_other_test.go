//go:build !linux

package imap

// peakRSS is not measured here (ru_maxrss has other units elsewhere).
func peakRSS() (int64, bool) { return 0, false }
