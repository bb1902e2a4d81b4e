package config

import (
	"fmt"
	"net"
	"time"

	"github.com/airlock-gw/airlock/session"
)

// AuthThrottle slows down the guessing of tokens on every listener and on
// the admin API: once a source address or an identity has failed to
// authenticate FreeFailures times, the answer to each further failure
// waits BaseDelay × 2^n, up to MaxDelay. Successful logins are never
// delayed.
type AuthThrottle struct {
	// Disabled answers every failure at once.
	Disabled bool `yaml:"disabled"`
	// FreeFailures (default 3) are answered at once.
	FreeFailures int `yaml:"free_failures"`
	// BaseDelay (default 100ms) is the first delay; each failure doubles
	// it, up to MaxDelay (default 5s, or half of handshake.timeout when
	// that is shorter), which must be shorter than handshake.timeout so
	// that the answer arrives before the connection is closed.
	BaseDelay time.Duration `yaml:"base_delay"`
	MaxDelay  time.Duration `yaml:"max_delay"`
	// ForgetAfter (default 10m) is the quiet period after which a source's
	// or an identity's failures are forgotten.
	ForgetAfter time.Duration `yaml:"forget_after"`
	// MaxTracked (default 65536) caps the sources and identities
	// remembered; past it the one that failed least recently is forgotten.
	MaxTracked int `yaml:"max_tracked"`
	// LogBurst (default 10) failures are logged one by one per LogInterval
	// (default 1m); the rest are summed up in one line per protocol.
	LogBurst    int           `yaml:"log_burst"`
	LogInterval time.Duration `yaml:"log_interval"`
}

// Throttle is the gateway's throttle configuration, defaults applied:
// max_delay's default is 5s, or half of handshake.timeout when that is
// shorter, and base_delay's is 100ms or max_delay when that is shorter.
func (c *Config) Throttle() session.ThrottleConfig {
	a := c.AuthThrottle
	t := session.ThrottleConfig{Free: a.FreeFailures, Base: a.BaseDelay, Max: a.MaxDelay, Forget: a.ForgetAfter,
		Tracked: a.MaxTracked, LogBurst: a.LogBurst, LogInterval: a.LogInterval}
	if hs := c.Handshake.Timeout; t.Max == 0 && hs > 0 && hs/2 < defaultMaxDelay {
		t.Max = hs / 2
	}
	t.ApplyDefaults()
	if a.BaseDelay == 0 {
		t.Base = min(t.Base, t.Max)
	}
	return t
}

// defaultMaxDelay is auth_throttle.max_delay's default.
const defaultMaxDelay = 5 * time.Second

// validateThrottle checks auth_throttle and debug.
func (c *Config) validateThrottle() []error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	a := c.AuthThrottle
	for _, f := range []struct {
		path string
		v    int
	}{{"free_failures", a.FreeFailures}, {"max_tracked", a.MaxTracked}, {"log_burst", a.LogBurst}} {
		if f.v < 0 {
			bad("auth_throttle."+f.path, "must not be negative (0 takes the default)")
		}
	}
	negative := false
	for _, f := range []struct {
		path string
		v    time.Duration
	}{{"base_delay", a.BaseDelay}, {"max_delay", a.MaxDelay}, {"forget_after", a.ForgetAfter}, {"log_interval", a.LogInterval}} {
		if f.v < 0 {
			negative = true
			bad("auth_throttle."+f.path, "must not be negative (0 takes the default)")
		}
	}
	if c.Debug.PprofAnyAddress && !c.Debug.Pprof {
		bad("debug.pprof_any_address", "set without debug.pprof (which turns profiling on)")
	}
	if negative || a.Disabled {
		return errs
	}
	t := c.Throttle()
	if t.Base > t.Max {
		bad("auth_throttle.base_delay", "%s is longer than max_delay (%s)", t.Base, t.Max)
	}
	if hs := c.Handshake.Timeout; hs > 0 && t.Max >= hs {
		bad("auth_throttle.max_delay", "%s is not shorter than handshake.timeout (%s): a delayed answer would come after the connection was closed", t.Max, hs)
	}
	if t.LogInterval < time.Second {
		bad("auth_throttle.log_interval", "%s is out of range (want at least 1s)", t.LogInterval)
	}
	return errs
}

// ServesPprof reports whether the admin listener serves /debug/pprof/:
// only when debug.pprof is set, and on an address other than loopback
// only when debug.pprof_any_address says so too.
func (c *Config) ServesPprof() bool {
	if !c.Debug.Pprof {
		return false
	}
	return c.Debug.PprofAnyAddress || IsLoopback(c.Listen["admin"])
}

// IsLoopback reports whether a listen address ("host:port") binds only
// loopback: localhost or a loopback IP; an empty host or an unspecified
// address binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
