//go:build race

package resp

// raceEnabled shrinks the tests that allocate hundreds of megabytes: under
// the race detector every fresh heap page also maps shadow memory.
const raceEnabled = true
