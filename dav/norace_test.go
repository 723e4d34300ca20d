//go:build !race

package dav_test

const raceEnabled = false
