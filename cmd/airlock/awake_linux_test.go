package main

import (
	"runtime"
	"runtime/metrics"
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
	// The collector stops the keeper to scan its stack without waiting
	// out its sleeps: with the keeper, collections take about the GC CPU
	// they take without it. (When the collector waited, it was over ten
	// times as much; other tests running alongside make it vary by two.)
	withKeeper := leastGCCPU(20)
	keeperLinger = 0
	r1()
	r2()
	waitFor(t, func() bool { return runtime.GOMAXPROCS(0) == base })
	without := leastGCCPU(20)
	if withKeeper > 3*without+20*keeperSleep.Seconds()/4 {
		t.Errorf("20 collections took %.1f ms of GC CPU with the keeper, %.1f ms without", withKeeper*1e3, without*1e3)
	}
	keeperLinger = 50 * time.Millisecond
	r1, r2 = scheduler.hold(), scheduler.hold()
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

// leastGCCPU is the least GC CPU of three runs of n collections. The
// runtime estimates that CPU from the wall time of the collector's phases,
// which other work on a busy machine only lengthens, so the least of a few
// runs is the closest to what the collector itself costs.
func leastGCCPU(n int) float64 {
	least := gcCPU(n)
	for range 2 {
		least = min(least, gcCPU(n))
	}
	return least
}

// gcCPU runs n collections and returns the CPU seconds the collector spent.
func gcCPU(n int) float64 {
	read := func() float64 {
		s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
		metrics.Read(s)
		return s[0].Value.Float64()
	}
	before := read()
	for range n {
		runtime.GC()
	}
	return read() - before
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
