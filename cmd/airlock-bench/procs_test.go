package main

import (
	"os"
	"strings"
	"testing"
	"time"
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

var sink uint64

func TestCPUTicksOfSelf(t *testing.T) {
	// Burn CPU until the counter moves: it counts whole clock ticks.
	start, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i := uint64(0); i < 1_000_000; i++ {
			sink += i % 7
		}
		now, err := cpuTicks(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > start {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU ticks of a busy process did not move in 10s (stuck at %d)", now)
		}
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
