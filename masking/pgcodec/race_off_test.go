//go:build !race

package pgcodec

const raceEnabled = false
