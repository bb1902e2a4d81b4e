package config

import (
	"fmt"
	"time"
)

// Shutdown bounds a graceful shutdown (SIGTERM or SIGINT): the listeners
// close, /readyz turns unready, commands held for approval are withdrawn,
// and each session ends once its command in flight has finished.
type Shutdown struct {
	// DrainTimeout (default 20s) is how long commands in flight, and open
	// transactions, may take to finish; then what still runs is
	// cancelled upstream.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// CancelTimeout (default 5s) is how long the upstreams may take to
	// answer those cancels before the sessions left are closed.
	CancelTimeout time.Duration `yaml:"cancel_timeout"`
}

// Readiness tunes the checks behind the admin listener's /readyz.
type Readiness struct {
	// Interval (default 5s) is how often the store, the recording
	// directory and each connection's upstream are checked.
	Interval time.Duration `yaml:"interval"`
	// Timeout (default 3s) bounds each check.
	Timeout time.Duration `yaml:"timeout"`
	// Upstreams (default true) logs in to each connection's upstream at
	// every check, as a new session would; false checks only Airlock's own
	// store and recordings.
	Upstreams *bool `yaml:"upstreams"`
}

// ChecksUpstreams reports whether readiness logs in to the upstreams.
func (r Readiness) ChecksUpstreams() bool { return r.Upstreams == nil || *r.Upstreams }

// Reload says who may reload the configuration through the admin API
// (POST /admin/reload, `airlock reload`); SIGHUP reloads it too.
type Reload struct {
	// Allow lists identity names, "group:NAME" entries or "*"; empty: no
	// one, and only SIGHUP reloads.
	Allow []string `yaml:"allow"`
}

func (s *Shutdown) applyDefaults() {
	if s.DrainTimeout == 0 {
		s.DrainTimeout = 20 * time.Second
	}
	if s.CancelTimeout == 0 {
		s.CancelTimeout = 5 * time.Second
	}
}

func (r *Readiness) applyDefaults() {
	if r.Interval == 0 {
		r.Interval = 5 * time.Second
	}
	if r.Timeout == 0 {
		r.Timeout = 3 * time.Second
	}
}

// validateLifecycle checks the shutdown, readiness and reload blocks.
func (c *Config) validateLifecycle() []error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	if c.Shutdown.DrainTimeout < 0 {
		bad("shutdown.drain_timeout", "must not be negative (0 takes the default, 20s)")
	}
	if c.Shutdown.CancelTimeout < 0 {
		bad("shutdown.cancel_timeout", "must not be negative (0 takes the default, 5s)")
	}
	if c.Readiness.Interval < 0 || (c.Readiness.Interval > 0 && c.Readiness.Interval < 100*time.Millisecond) {
		bad("readiness.interval", "%s is out of range (want at least 100ms)", c.Readiness.Interval)
	}
	if c.Readiness.Timeout < 0 {
		bad("readiness.timeout", "must not be negative (0 takes the default, 3s)")
	}
	for i, p := range c.Reload.Allow {
		if p == "" {
			bad(fmt.Sprintf("reload.allow[%d]", i), "empty entry (write an identity name, group:NAME or \"*\")")
		}
	}
	return append(errs, c.validateThrottle()...)
}
