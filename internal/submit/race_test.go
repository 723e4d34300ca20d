//go:build race

package submit

// raceEnabled: the race detector slows the SMTP round trips some ten
// times; the domain soak does a tenth of its rounds under it.
const raceEnabled = true
