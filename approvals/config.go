package approvals

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Defaults applied where the configuration says nothing.
const (
	DefaultMode      = ModeHold
	DefaultTimeout   = 5 * time.Minute
	DefaultValidity  = 15 * time.Minute
	DefaultRequired  = 1
	DefaultAdminURL  = "http://127.0.0.1:19090"
	DefaultRetention = 30 * 24 * time.Hour
	maxRequired      = 16
)

// Config is the global approvals block (`approvals:` in airlock.yaml). Mode,
// Timeout, Validity, Reviewers, Required, SelfApproval and Overrides are the
// defaults every connection inherits; a connection's ConnectionConfig
// overrides them. AdminURL, Replica, Retention and Webhooks are global only.
type Config struct {
	// Mode is how callers wait: hold (default) or retry.
	Mode Mode `yaml:"mode"`
	// Timeout is how long a request stays open for a decision (default 5m).
	Timeout time.Duration `yaml:"timeout"`
	// Validity is how long an approval stays usable by the retried command
	// in retry mode, counted from the decision (default 15m).
	Validity time.Duration `yaml:"validity"`
	// Reviewers may approve or deny ("name", "group:NAME" or "*").
	// Nobody can approve when the list is empty: requests then expire.
	Reviewers protocols.Principals `yaml:"reviewers"`
	// Required is the number of distinct approvals needed (default 1);
	// a single deny decides.
	Required int `yaml:"required"`
	// SelfApproval lets a reviewer approve their own command (default no).
	SelfApproval bool `yaml:"self_approval"`
	// AdminURL is the admin listener's address as reviewers reach it; it
	// appears in messages and decides whether cookies are Secure.
	AdminURL string `yaml:"admin_url"`
	// Replica names this process in a shared store; it must be stable across
	// restarts and unique among replicas (default: the host name).
	Replica string `yaml:"replica"`
	// Retention is how long resolved requests are kept (default 720h).
	Retention time.Duration `yaml:"retention"`
	// Overrides change the mode, timeout or validity for some callers; the
	// first whose principals match wins.
	Overrides []Override      `yaml:"overrides"`
	Webhooks  []WebhookConfig `yaml:"webhooks"`
	// Access configures access requests: time-bounded overlays of a
	// connection's policy for one caller (see AccessConfig).
	Access AccessConfig `yaml:"access"`
	// Preview configures blast-radius previews of held commands.
	Preview PreviewConfig `yaml:"preview"`
}

// ConnectionConfig overrides the global settings for one connection
// (`connections[i].approvals:`). Zero fields inherit the global value.
type ConnectionConfig struct {
	Mode         Mode                 `yaml:"mode"`
	Timeout      time.Duration        `yaml:"timeout"`
	Validity     time.Duration        `yaml:"validity"`
	Reviewers    protocols.Principals `yaml:"reviewers"`
	Required     int                  `yaml:"required"`
	SelfApproval *bool                `yaml:"self_approval"`
	// Overrides are consulted before the global ones.
	Overrides []Override `yaml:"overrides"`
	// Access and Preview override the global blocks' settings.
	Access  *ConnectionAccess `yaml:"access"`
	Preview *PreviewConfig    `yaml:"preview"`
}

// Override changes how some callers wait, by identity or group.
type Override struct {
	Principals protocols.Principals `yaml:"principals"`
	Mode       Mode                 `yaml:"mode"`
	Timeout    time.Duration        `yaml:"timeout"`
	Validity   time.Duration        `yaml:"validity"`
}

// Webhook payload formats.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// WebhookConfig is one receiver of request and decision events.
type WebhookConfig struct {
	// URL often embeds a credential (Slack's do): it never reaches a log.
	URL protocols.Secret `yaml:"url"`
	// Format is json (default) or slack ({"text": …}).
	Format string `yaml:"format"`
	// Secret, when set, signs each body: header X-Airlock-Signature carries
	// "sha256=" and the hex HMAC-SHA256 of the body under this key.
	Secret protocols.Secret `yaml:"secret"`
}

// Validate reports every problem in the block at path (e.g. "approvals").
func (c *Config) Validate(path string) error {
	var errs []error
	errs = append(errs, validateCommon(path, c.Mode, c.Timeout, c.Validity, c.Reviewers, c.Required)...)
	if c.AdminURL != "" {
		if err := checkHTTPURL(c.AdminURL); err != nil {
			errs = append(errs, fmt.Errorf("%s.admin_url: %w", path, err))
		}
	}
	if strings.ContainsFunc(c.Replica, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(c.Replica) > 128 {
		errs = append(errs, fmt.Errorf("%s.replica: must be at most 128 printable characters", path))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("%s.retention: must not be negative", path))
	}
	for i, o := range c.Overrides {
		errs = append(errs, o.validate(fmt.Sprintf("%s.overrides[%d]", path, i))...)
	}
	errs = append(errs, c.Access.validate(path+".access")...)
	errs = append(errs, c.Preview.validate(path+".preview")...)
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("%s.webhooks[%d]", path, i)
		if w.URL == "" {
			errs = append(errs, fmt.Errorf("%s.url: missing", p))
		} else if err := checkHTTPURL(w.URL.Reveal()); err != nil {
			// The URL is a credential: say what is wrong, never echo it.
			errs = append(errs, fmt.Errorf("%s.url: must be an absolute http or https URL", p))
		}
		switch w.Format {
		case "", FormatJSON, FormatSlack:
		default:
			errs = append(errs, fmt.Errorf("%s.format: unknown format %q (want json or slack)", p, w.Format))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem in a connection's block at path (e.g.
// "connections[2].approvals").
func (c *ConnectionConfig) Validate(path string) error {
	errs := validateCommon(path, c.Mode, c.Timeout, c.Validity, c.Reviewers, c.Required)
	for i, o := range c.Overrides {
		errs = append(errs, o.validate(fmt.Sprintf("%s.overrides[%d]", path, i))...)
	}
	if c.Access != nil {
		errs = append(errs, c.Access.validate(path+".access")...)
	}
	if c.Preview != nil {
		errs = append(errs, c.Preview.validate(path+".preview")...)
	}
	return errors.Join(errs...)
}

func (o Override) validate(path string) []error {
	var errs []error
	if len(o.Principals) == 0 {
		errs = append(errs, fmt.Errorf("%s.principals: missing (name, \"group:NAME\" or \"*\")", path))
	}
	errs = append(errs, validatePrincipals(path+".principals", o.Principals)...)
	if o.Mode == "" && o.Timeout == 0 && o.Validity == 0 {
		errs = append(errs, fmt.Errorf("%s: overrides nothing (set mode, timeout or validity)", path))
	}
	errs = append(errs, validateCommon(path, o.Mode, o.Timeout, o.Validity, nil, 0)...)
	return errs
}

func validateCommon(path string, m Mode, timeout, validity time.Duration, reviewers protocols.Principals, required int) []error {
	var errs []error
	switch m {
	case "", ModeHold, ModeRetry:
	default:
		errs = append(errs, fmt.Errorf("%s.mode: unknown mode %q (want hold or retry)", path, m))
	}
	if timeout < 0 || (timeout > 0 && timeout < time.Second) {
		errs = append(errs, fmt.Errorf("%s.timeout: %s is too short (want at least 1s)", path, timeout))
	}
	if timeout > 24*time.Hour {
		errs = append(errs, fmt.Errorf("%s.timeout: %s is too long (want at most 24h)", path, timeout))
	}
	if validity < 0 || (validity > 0 && validity < time.Second) {
		errs = append(errs, fmt.Errorf("%s.validity: %s is too short (want at least 1s)", path, validity))
	}
	if validity > 24*time.Hour {
		errs = append(errs, fmt.Errorf("%s.validity: %s is too long (want at most 24h)", path, validity))
	}
	errs = append(errs, validatePrincipals(path+".reviewers", reviewers)...)
	if required < 0 || required > maxRequired {
		errs = append(errs, fmt.Errorf("%s.required: %d out of range (want 1 to %d)", path, required, maxRequired))
	}
	return errs
}

func validatePrincipals(path string, p protocols.Principals) []error {
	var errs []error
	for i, e := range p {
		switch {
		case strings.TrimSpace(e) == "":
			errs = append(errs, fmt.Errorf("%s[%d]: empty principal", path, i))
		case e == "group:":
			errs = append(errs, fmt.Errorf("%s[%d]: missing group name after \"group:\"", path, i))
		case e != strings.TrimSpace(e):
			errs = append(errs, fmt.Errorf("%s[%d]: %q has surrounding spaces", path, i, e))
		}
	}
	return errs
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	return nil
}

// settings are the effective rules for one caller on one connection.
type settings struct {
	Mode         Mode
	Timeout      time.Duration
	Validity     time.Duration
	Reviewers    protocols.Principals
	Required     int
	SelfApproval bool
}

// resolve merges the global block, the connection's block and the first
// matching override (the connection's before the global ones). A nil id
// resolves the connection's reviewer rules only.
func resolve(g *Config, conns map[string]ConnectionConfig, connection string, id *protocols.Identity) settings {
	s := settings{
		Mode: g.Mode, Timeout: g.Timeout, Validity: g.Validity,
		Reviewers: g.Reviewers, Required: g.Required, SelfApproval: g.SelfApproval,
	}
	c, ok := conns[connection]
	if ok {
		if c.Mode != "" {
			s.Mode = c.Mode
		}
		if c.Timeout > 0 {
			s.Timeout = c.Timeout
		}
		if c.Validity > 0 {
			s.Validity = c.Validity
		}
		if c.Reviewers != nil {
			s.Reviewers = c.Reviewers
		}
		if c.Required > 0 {
			s.Required = c.Required
		}
		if c.SelfApproval != nil {
			s.SelfApproval = *c.SelfApproval
		}
	}
	if id != nil {
		overrides := append(append([]Override(nil), c.Overrides...), g.Overrides...)
		for _, o := range overrides {
			if !o.Principals.Match(*id) {
				continue
			}
			if o.Mode != "" {
				s.Mode = o.Mode
			}
			if o.Timeout > 0 {
				s.Timeout = o.Timeout
			}
			if o.Validity > 0 {
				s.Validity = o.Validity
			}
			break
		}
	}
	if s.Mode == "" {
		s.Mode = DefaultMode
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Validity <= 0 {
		s.Validity = DefaultValidity
	}
	if s.Required <= 0 {
		s.Required = DefaultRequired
	}
	return s
}
