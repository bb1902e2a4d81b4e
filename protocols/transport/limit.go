package transport

import "math"

// DefaultMax is the cap on unauthenticated connections a Server takes when
// MaxUnauthenticated is 0: a quarter of the process's open-file limit, at
// least 8. An admitted session holds about three descriptors (client,
// upstream, recording), so a flood of silent connections that fills its
// quarter still leaves the other three quarters, room for as many whole
// sessions as the flood holds connections, and the accept loop keeps
// accepting (and dropping the oldest) instead of failing with EMFILE.
//
// Go raises the soft limit to the hard one at start-up, so this is usually
// a quarter of the hard limit.
func DefaultMax() int { return capFor(openFileLimit()) }

// Bounds of the default cap: a process with a tiny limit still lets a few
// clients authenticate at once, and an unlimited one does not queue without
// end.
const (
	minDefaultMax = 8
	maxDefaultMax = 1 << 20
)

func capFor(nofile uint64) int {
	if nofile > math.MaxInt64/2 {
		return maxDefaultMax
	}
	return min(max(int(nofile/4), minDefaultMax), maxDefaultMax)
}
