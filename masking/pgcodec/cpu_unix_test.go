//go:build unix

package pgcodec

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used. Benchmarks divide bytes by
// it to report throughput per core-second, which stays meaningful when the
// machine is shared and wall time stretches.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
