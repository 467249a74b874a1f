//go:build race

package github

// raceEnabled: the race detector slows CPU-bound work several times, so timing
// assertions are skipped under it.
const raceEnabled = true
