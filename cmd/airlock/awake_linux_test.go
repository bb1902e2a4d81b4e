package main

import (
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestKeeperHoldsAPAndLingers(t *testing.T) {
	old := keeperLinger
	keeperLinger = 50 * time.Millisecond
	t.Cleanup(func() { keeperLinger = old })
	// Wait out a keeper another test in this process left lingering.
	waitFor(t, func() bool {
		scheduler.mu.Lock()
		defer scheduler.mu.Unlock()
		return scheduler.run == nil
	})
	base := runtime.GOMAXPROCS(0)

	r1 := scheduler.hold()
	r2 := scheduler.hold()
	t.Cleanup(func() { r1(); r2() })
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("GOMAXPROCS with two holders = %d, want %d", got, base+1)
	}
	// The keeper sleeps in a system call the scheduler knows of, so the
	// collector scans and stops it without waiting for the sleep to end.
	inSyscall := 0
	for range 5 {
		if keeperState() == "syscall" {
			inSyscall++
		}
		time.Sleep(time.Millisecond)
	}
	if inSyscall < 4 {
		t.Errorf("the keeper was in a system call in %d of 5 looks", inSyscall)
	}
	// A stop-the-world must not wait for the keeper's sleep to end.
	before := stopping()
	for range 20 {
		runtime.GC()
	}
	after := stopping()
	var n, slow uint64
	for i, c := range after.Counts {
		d := c - before.Counts[i]
		n += d
		if after.Buckets[i] >= (keeperSleep / 2).Seconds() {
			slow += d
		}
	}
	if n == 0 || slow*2 > n {
		t.Errorf("%d of %d stops of the world took %v or more with the keeper running", slow, n, keeperSleep/2)
	}
	r1()
	r1() // a second call is a no-op
	time.Sleep(3 * keeperLinger)
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("keeper stopped with a holder left: GOMAXPROCS = %d", got)
	}
	r2()
	// A hold within the linger keeps the same keeper.
	r3 := scheduler.hold()
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("GOMAXPROCS after a re-hold = %d, want %d", got, base+1)
	}
	r3()
	waitFor(t, func() bool { return runtime.GOMAXPROCS(0) == base })
	scheduler.mu.Lock()
	running := scheduler.run != nil
	scheduler.mu.Unlock()
	if running {
		t.Fatal("keeper still running after the linger")
	}
}

// keeperState is the scheduler state of the keeper goroutine ("syscall",
// "running", ...), from a dump of every goroutine.
func keeperState() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "keeperRun).keep(") {
			continue
		}
		// goroutine 7 [syscall, 2 minutes]:
		head, _, _ := strings.Cut(g, "\n")
		_, st, _ := strings.Cut(head, "[")
		st, _, _ = strings.Cut(st, "]")
		st, _, _ = strings.Cut(st, ",")
		return st
	}
	// Not found: it was running on another thread, whose stack a dump
	// cannot show.
	return "running"
}

// stopping is the histogram of how long the GC took to stop the world.
func stopping() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64Histogram()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
