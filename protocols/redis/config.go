package redis

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

// Settings are the engine's section of the configuration (redis:).
type Settings struct {
	// Mode is "inspect" (default: every command through the session
	// flow), "decode" (protocol-aware relay that classifies, masks and
	// records nothing and allows everything; for measurement only) or
	// "relay" (authenticate, then pass bytes untouched; for measurement
	// only).
	Mode string `yaml:"mode"`
	// MaxBulk is the longest argument a client may send, like Redis's
	// proto-max-bulk-len (default 64 MiB).
	MaxBulk protocols.ByteSize `yaml:"max_bulk"`
	// MaxCommand is the most bytes one command may take (default 128 MiB).
	// A command is held whole while it is judged, so this bounds what one
	// client can make the gateway hold.
	MaxCommand protocols.ByteSize `yaml:"max_command"`
	// MaxMaskedValue is the longest reply value masked for a caller whose
	// replies are masked (default 1 MiB): a longer one is withheld with an
	// error in its place, since masking needs the value whole. Unmasked
	// callers get values of any size, streamed.
	MaxMaskedValue protocols.ByteSize `yaml:"max_masked_value"`
	// ConnectTimeout bounds dialling and authenticating upstream (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// QueryTimeout (default 0: none) bounds how long a command may wait
	// without a word from the upstream (faults.go).
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// withDefaults fills what the section left out.
func (s Settings) withDefaults() Settings {
	if s.Mode == "" {
		s.Mode = "inspect"
	}
	if s.MaxBulk == 0 {
		s.MaxBulk = 64 << 20
	}
	if s.MaxCommand == 0 {
		s.MaxCommand = 128 << 20
	}
	if s.MaxMaskedValue == 0 {
		s.MaxMaskedValue = 1 << 20
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = 10 * time.Second
	}
	return s
}

func (s Settings) validate() error {
	var errs []error
	switch s.Mode {
	case "inspect", "decode", "relay":
	default:
		errs = append(errs, fmt.Errorf("mode: unknown mode %q (want inspect, decode or relay)", s.Mode))
	}
	if s.MaxBulk < 1<<10 {
		errs = append(errs, errors.New("max_bulk: must be at least 1KiB"))
	}
	if s.MaxCommand < s.MaxBulk {
		errs = append(errs, fmt.Errorf("max_command: must be at least max_bulk (%s)", s.MaxBulk))
	}
	if s.MaxMaskedValue < 1<<10 || s.MaxMaskedValue > 64<<20 {
		errs = append(errs, errors.New("max_masked_value: must be between 1KiB and 64MiB"))
	}
	if s.ConnectTimeout < 0 {
		errs = append(errs, errors.New("connect_timeout: must not be negative"))
	}
	if s.QueryTimeout < 0 {
		errs = append(errs, errors.New("query_timeout: must not be negative (0: none)"))
	}
	return errors.Join(errs...)
}

// Configure implements engine.Engine.
func (e *Engine) Configure(section engine.Decode) error {
	var s Settings
	if err := section(&s); err != nil {
		return err
	}
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return err
	}
	e.set = s
	return nil
}

// Settings returns the engine's settings, defaults applied.
func (e *Engine) Settings() Settings { return e.set }

// Upstream is a Redis connection's upstream block: the server, the
// credentials Airlock holds for it and the database its callers use.
type Upstream struct {
	// Address is host:port, or the absolute path of a Unix socket.
	Address string `yaml:"address"`
	// User is the ACL user (Redis 6 and later); empty is the default user.
	User     string           `yaml:"user"`
	Password protocols.Secret `yaml:"password"`
	// Database is the database number every session of the connection
	// uses (default 0).
	Database int `yaml:"database"`
	// AllowSelect lets callers SELECT (and MOVE, COPY … DB, SWAPDB to)
	// other databases; by default only Database is reachable.
	AllowSelect bool        `yaml:"allow_select"`
	TLS         UpstreamTLS `yaml:"tls"`
	// Keys describe the database's key patterns to agents (schema.go).
	Keys []Key `yaml:"keys"`
}

// UpstreamTLS says how Airlock secures its connection to the upstream.
type UpstreamTLS struct {
	// Mode is disable (default), prefer, require or verify-full. Redis has
	// no in-band TLS negotiation: prefer tries a TLS handshake and falls
	// back to a plain connection when it fails, which costs a failed
	// handshake per session against a server without TLS.
	Mode       string `yaml:"mode"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// Upstream implements engine.Engine.
func (e *Engine) Upstream(block engine.Decode) (any, error) {
	var u Upstream
	if err := block(&u); err != nil {
		return nil, err
	}
	if u.TLS.Mode == "" {
		u.TLS.Mode = "disable"
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	return &u, nil
}

func (u *Upstream) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case u.Address == "":
		add("address", "missing (write host:port, or the absolute path of a Unix socket)")
	case isUnix(u.Address):
		if !filepath.IsAbs(u.Address) {
			add("address", "%q: a Unix socket path must be absolute", u.Address)
		}
		if u.TLS.Mode == "require" || u.TLS.Mode == "verify-full" {
			add("tls.mode", "%q is impossible over a Unix socket, which carries no TLS (use disable)", u.TLS.Mode)
		}
	default:
		if _, _, err := splitHostPort(u.Address); err != nil {
			add("address", "%v", err)
		}
	}
	if u.Database < 0 {
		add("database", "%d is negative (Redis numbers databases from 0)", u.Database)
	}
	if strings.ContainsAny(u.User, " \r\n") {
		add("user", "must not contain spaces or line breaks")
	}
	switch u.TLS.Mode {
	case "disable", "prefer", "require", "verify-full":
	default:
		add("tls.mode", "unknown mode %q (want disable, prefer, require or verify-full)", u.TLS.Mode)
	}
	if u.TLS.CAFile != "" {
		if _, err := os.Stat(u.TLS.CAFile); err != nil {
			add("tls.ca_file", "%v", err)
		}
	}
	errs = append(errs, validateKeys(u.Keys)...)
	return errors.Join(errs...)
}

// isUnix reports whether an upstream address is a Unix socket path.
func isUnix(addr string) bool { return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") }

// upstreamOf is the engine's upstream block of c.
func upstreamOf(c *protocols.Connection) *Upstream {
	u, _ := c.Upstream.(*Upstream)
	if u == nil {
		return &Upstream{TLS: UpstreamTLS{Mode: "disable"}}
	}
	return u
}
