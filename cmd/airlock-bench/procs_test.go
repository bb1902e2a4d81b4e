package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime and stime are fields
	// 14 and 15.
	tests := []struct {
		name, in string
		want     uint64
		wantErr  bool
	}{
		{"plain", "1234 (airlock) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0", 325, false},
		{"odd command name", "77 (a b) (c)) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 7, false},
		{"truncated", "1 (x) S 1 2 3", 0, true},
		{"no command", "1 x S", 0, true},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseStatCPU = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCPUTicksOfSelf(t *testing.T) {
	// Burn a little CPU so the counter is not zero on a coarse clock.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i % 7
	}
	_ = x
	ticks, err := cpuTicks(os.Getpid())
	if err != nil || ticks == 0 {
		t.Fatalf("cpuTicks(self) = %d, %v", ticks, err)
	}
	if hz := clockTicks(); hz < 10 || hz > 10000 {
		t.Fatalf("clockTicks = %d", hz)
	}
}

func TestParseStatusRSS(t *testing.T) {
	in := "Name:\tairlock\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t5\n"
	rss, hwm, err := parseStatusRSS([]byte(in))
	if err != nil || rss != 1024 || hwm != 2048 {
		t.Fatalf("parseStatusRSS = %d %d %v", rss, hwm, err)
	}
	if _, _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("missing fields accepted")
	}
	if _, _, err := parseStatusRSS([]byte("VmRSS:\tlots kB\nVmHWM:\t1 kB\n")); err == nil || !strings.Contains(err.Error(), "VmRSS") {
		t.Fatalf("bad number: %v", err)
	}
	rss, _, err = rssKiB(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("rssKiB(self) = %d, %v", rss, err)
	}
}
