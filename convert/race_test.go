//go:build race

package convert

// raceEnabled: the race detector slows the scan some 20 times; the
// heaviest tests do less under it.
const raceEnabled = true
