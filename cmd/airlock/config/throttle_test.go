package config

import (
	"testing"
	"time"
)

// TestServesPprof: /debug/pprof/ is served only when debug.pprof is set,
// and on an admin address other than loopback only with
// debug.pprof_any_address too.
func TestServesPprof(t *testing.T) {
	for _, tc := range []struct {
		admin      string
		pprof, any bool
		want       bool
	}{
		{"127.0.0.1:9090", false, false, false},
		{"127.0.0.1:9090", true, false, true},
		{"127.8.9.1:9090", true, false, true},
		{"localhost:9090", true, false, true},
		{"[::1]:9090", true, false, true},
		{"0.0.0.0:9090", true, false, false},
		{":9090", true, false, false},
		{"[::]:9090", true, false, false},
		{"192.0.2.2:9090", true, false, false},
		{"admin.example:9090", true, false, false},
		{"192.0.2.2:9090", true, true, true},
		{":9090", true, true, true},
		{"192.0.2.2:9090", false, true, false},
	} {
		c := &Config{Listen: Listen{"admin": tc.admin}, Debug: Debug{Pprof: tc.pprof, PprofAnyAddress: tc.any}}
		if got := c.ServesPprof(); got != tc.want {
			t.Errorf("admin %s, pprof %v, pprof_any_address %v: serves %v, want %v", tc.admin, tc.pprof, tc.any, got, tc.want)
		}
	}
}

// TestThrottleDefaults: max_delay defaults to 5s, or half of a shorter
// handshake.timeout, so that a delayed answer comes before the handshake
// times out.
func TestThrottleDefaults(t *testing.T) {
	for _, tc := range []struct {
		handshake, maxDelay, wantMax, wantBase time.Duration
	}{
		{10 * time.Second, 0, 5 * time.Second, 100 * time.Millisecond},
		{2 * time.Second, 0, time.Second, 100 * time.Millisecond},
		{100 * time.Millisecond, 0, 50 * time.Millisecond, 50 * time.Millisecond},
		{2 * time.Second, 1500 * time.Millisecond, 1500 * time.Millisecond, 100 * time.Millisecond},
	} {
		c := &Config{Handshake: Handshake{Timeout: tc.handshake}, AuthThrottle: AuthThrottle{MaxDelay: tc.maxDelay}}
		got := c.Throttle()
		if got.Max != tc.wantMax || got.Base != tc.wantBase || got.Free != 3 {
			t.Errorf("handshake.timeout %s, max_delay %s: %+v", tc.handshake, tc.maxDelay, got)
		}
		if errs := c.validateThrottle(); len(errs) != 0 {
			t.Errorf("handshake.timeout %s, max_delay %s: %v", tc.handshake, tc.maxDelay, errs)
		}
	}
}
