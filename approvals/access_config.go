package approvals

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/airlock-gw/airlock/approvals/policy"
)

// Access request defaults.
const (
	DefaultAccessMaxDuration = time.Hour
	DefaultAccessDuration    = time.Hour
	DefaultAccessTimeout     = time.Hour
	maxAccessDuration        = 7 * 24 * time.Hour
	minAccessDuration        = time.Second
)

// AccessConfig is the global access requests block (`approvals.access:`).
// A caller asks for elevated access to a connection for a bounded time,
// with a reason: a named role's overlay, or (unless custom is false) an
// overlay of their own. Reviewers decide as they decide statements (the
// connection's reviewers, required approvals and self-approval setting).
//
//	access:
//	  max_duration: 4h
//	  timeout: 30m          # how long a request waits for a decision
//	  lift_critical: false  # may a grant lift critical rules (reach.*)?
//	  custom: true          # may callers ask for their own overlay?
//	  roles:
//	    writer:
//	      description: writes and DDL without review
//	      rules: {"write.*": allow, "schema.*": allow, "ddl.*": allow}
type AccessConfig struct {
	// Disabled turns access requests off.
	Disabled bool `yaml:"disabled"`
	// MaxDuration caps a grant's window (default 1h, at most 168h).
	MaxDuration time.Duration `yaml:"max_duration"`
	// Timeout is how long a request waits for a decision (default 1h).
	Timeout time.Duration `yaml:"timeout"`
	// LiftCritical lets a grant's overlay lift rules of critical risk
	// (reach.*): without it they keep the policy's action.
	LiftCritical bool `yaml:"lift_critical"`
	// Custom (default true) lets a caller ask for an overlay of their own
	// instead of a role.
	Custom *bool `yaml:"custom"`
	// Roles are named overlays callers can ask for.
	Roles map[string]RoleConfig `yaml:"roles"`
}

// RoleConfig is a named overlay.
type RoleConfig struct {
	Description          string `yaml:"description"`
	policy.OverlayConfig `yaml:",inline"`
}

// ConnectionAccess overrides the access settings for one connection
// (`connections[i].approvals.access:`). Unset fields inherit.
type ConnectionAccess struct {
	Disabled     *bool         `yaml:"disabled"`
	MaxDuration  time.Duration `yaml:"max_duration"`
	LiftCritical *bool         `yaml:"lift_critical"`
	Custom       *bool         `yaml:"custom"`
	// Roles lists the roles offered on the connection (default: all).
	Roles []string `yaml:"roles"`
}

var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func (c *AccessConfig) validate(path string) []error {
	var errs []error
	errs = append(errs, validateWindow(path, c.MaxDuration, c.Timeout)...)
	for _, name := range sortedRoles(c.Roles) {
		p := fmt.Sprintf("%s.roles[%s]", path, name)
		if !roleName.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: role names are lower-case letters, digits, '_', '-' and '.'", p))
		}
		if err := c.Roles[name].Validate(p, c.LiftCritical); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (c *ConnectionAccess) validate(path string) []error {
	errs := validateWindow(path, c.MaxDuration, 0)
	seen := map[string]bool{}
	for i, r := range c.Roles {
		if seen[r] {
			errs = append(errs, fmt.Errorf("%s.roles[%d]: %q listed twice", path, i, r))
		}
		seen[r] = true
	}
	return errs
}

func validateWindow(path string, maxDuration, timeout time.Duration) []error {
	var errs []error
	if maxDuration != 0 && (maxDuration < minAccessDuration || maxDuration > maxAccessDuration) {
		errs = append(errs, fmt.Errorf("%s.max_duration: %s out of range (want 1s to %s)", path, maxDuration, maxAccessDuration))
	}
	if timeout != 0 && (timeout < time.Second || timeout > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("%s.timeout: %s out of range (want 1s to 24h)", path, timeout))
	}
	return errs
}

// CheckAccessRoles reports roles a connection offers that the global block does
// not define.
func CheckAccessRoles(global *AccessConfig, conns map[string]ConnectionConfig) error {
	var errs []error
	for _, name := range sortedConns(conns) {
		c := conns[name]
		if c.Access == nil {
			continue
		}
		for i, r := range c.Access.Roles {
			if _, ok := global.Roles[r]; !ok {
				errs = append(errs, fmt.Errorf("connections[%s].approvals.access.roles[%d]: unknown role %q (define it under approvals.access.roles)", name, i, r))
			}
		}
	}
	return errors.Join(errs...)
}

// accessSettings are the effective access rules on one connection.
type accessSettings struct {
	Enabled      bool
	MaxDuration  time.Duration
	Timeout      time.Duration
	LiftCritical bool
	Custom       bool
	Roles        map[string]RoleConfig // those offered here
}

func resolveAccess(g *AccessConfig, conn *ConnectionConfig) accessSettings {
	s := accessSettings{Enabled: !g.Disabled, MaxDuration: g.MaxDuration, Timeout: g.Timeout,
		LiftCritical: g.LiftCritical, Custom: g.Custom == nil || *g.Custom, Roles: g.Roles}
	if conn != nil && conn.Access != nil {
		a := conn.Access
		if a.Disabled != nil {
			s.Enabled = !*a.Disabled
		}
		if a.MaxDuration > 0 {
			s.MaxDuration = a.MaxDuration
		}
		if a.LiftCritical != nil {
			s.LiftCritical = *a.LiftCritical
		}
		if a.Custom != nil {
			s.Custom = *a.Custom
		}
		if a.Roles != nil {
			s.Roles = map[string]RoleConfig{}
			for _, r := range a.Roles {
				if rc, ok := g.Roles[r]; ok {
					s.Roles[r] = rc
				}
			}
		}
	}
	if s.MaxDuration <= 0 {
		s.MaxDuration = DefaultAccessMaxDuration
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultAccessTimeout
	}
	return s
}

// PreviewConfig tunes blast-radius previews of commands held for review
// (`approvals.preview:`, and per connection).
//
//	preview:
//	  enabled: true       # default
//	  timeout: 3s         # bounds the whole preview; the request waits no longer
//	  exact_count: false  # also count affected rows exactly (a read-only query)
type PreviewConfig struct {
	Enabled    *bool         `yaml:"enabled"`
	Timeout    time.Duration `yaml:"timeout"`
	ExactCount *bool         `yaml:"exact_count"`
}

// DefaultPreviewTimeout bounds a preview when the configuration does not.
const DefaultPreviewTimeout = 3 * time.Second

func (c *PreviewConfig) validate(path string) []error {
	if c.Timeout != 0 && (c.Timeout < 100*time.Millisecond || c.Timeout > time.Minute) {
		return []error{fmt.Errorf("%s.timeout: %s out of range (want 100ms to 1m)", path, c.Timeout)}
	}
	return nil
}

// previewSettings are the effective preview rules on one connection.
type previewSettings struct {
	Enabled    bool
	Timeout    time.Duration
	ExactCount bool
}

func resolvePreview(g *PreviewConfig, conn *ConnectionConfig) previewSettings {
	s := previewSettings{Enabled: true, Timeout: DefaultPreviewTimeout}
	for _, c := range []*PreviewConfig{g, connPreview(conn)} {
		if c == nil {
			continue
		}
		if c.Enabled != nil {
			s.Enabled = *c.Enabled
		}
		if c.Timeout > 0 {
			s.Timeout = c.Timeout
		}
		if c.ExactCount != nil {
			s.ExactCount = *c.ExactCount
		}
	}
	return s
}

func connPreview(c *ConnectionConfig) *PreviewConfig {
	if c == nil {
		return nil
	}
	return c.Preview
}

func sortedRoles(m map[string]RoleConfig) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedConns(m map[string]ConnectionConfig) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return slices.Sorted(slices.Values(keys))
}
