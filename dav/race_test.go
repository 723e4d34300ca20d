//go:build race

package dav_test

// raceEnabled: the race detector slows the handler some 10 times; the
// soak tests do fewer iterations under it.
const raceEnabled = true
