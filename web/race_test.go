//go:build race

package web

// raceEnabled: the race detector slows everything some 10 times; timing
// assertions are skipped under it.
const raceEnabled = true
