//go:build race

package pgcodec

// raceEnabled shrinks the large-input tests: the race detector slows byte
// loops tenfold and those tests look for quadratic paths, not races.
const raceEnabled = true
