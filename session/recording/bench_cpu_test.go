package recording

import (
	"syscall"
	"testing"
	"time"
)

// cpuTimer reports the process's CPU time (user and system, all threads,
// GC included) per benchmark iteration as "cpu-ns/op". On a machine shared
// with other work, wall time per op swings with the load; CPU time per op
// is what the recording actually costs.
type cpuTimer struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuTimer { return cpuTimer{cpuNow()} }

func (c cpuTimer) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N), "cpu-ns/op")
	}
}
