package postgres

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

// Settings are the engine's section of the configuration (postgres:).
type Settings struct {
	// Mode is "inspect" (default: every command through the session
	// flow), "decode" (protocol-aware relay that classifies, masks and
	// records nothing and allows everything; for measurement only) or
	// "relay" (authenticate, then pass frames untouched; for measurement
	// only).
	Mode string `yaml:"mode"`
	// MaxMessageSize bounds one client message body (default 64 MiB).
	MaxMessageSize protocols.ByteSize `yaml:"max_message_size"`
	// ConnectTimeout bounds dialling and authenticating upstream (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// QueryTimeout (default 0: none) bounds how long a command may wait
	// without a word from the upstream: then it is cancelled, and if the
	// upstream stays silent as long again the session ends (a hung server).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// StartupTimeout bounds a client's startup and authentication
	// (default 30s); the gateway's handshake timeout may end it sooner.
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// Pool keeps upstream sessions that clients ended cleanly, reset with
	// DISCARD ALL, for the next client with the same connection and
	// startup parameters.
	Pool PoolSettings `yaml:"pool"`
}

// PoolSettings bound upstream session reuse.
type PoolSettings struct {
	// MaxIdle is how many idle upstream sessions are kept in all; nil means
	// the default (DefaultPoolMaxIdle), 0 turns reuse off.
	MaxIdle *int `yaml:"max_idle"`
	// IdleTimeout is how long an idle session is kept (default 60s).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// DefaultPoolMaxIdle is postgres.pool.max_idle when the file leaves it out.
const DefaultPoolMaxIdle = 16

// maxIdle is MaxIdle with its default applied.
func (p PoolSettings) maxIdle() int {
	if p.MaxIdle == nil {
		return DefaultPoolMaxIdle
	}
	return *p.MaxIdle
}

// withDefaults fills what the section left out.
func (s Settings) withDefaults() Settings {
	if s.Mode == "" {
		s.Mode = "inspect"
	}
	if s.MaxMessageSize == 0 {
		s.MaxMessageSize = 64 << 20
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = 10 * time.Second
	}
	if s.StartupTimeout == 0 {
		s.StartupTimeout = 30 * time.Second
	}
	if s.Pool.IdleTimeout == 0 {
		s.Pool.IdleTimeout = 60 * time.Second
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
	if s.MaxMessageSize < 1<<10 {
		errs = append(errs, errors.New("max_message_size: must be at least 1KiB"))
	}
	if p := s.Pool.MaxIdle; p != nil && *p < 0 {
		errs = append(errs, errors.New("pool.max_idle: must not be negative (0 turns reuse off)"))
	}
	if s.Pool.IdleTimeout < 0 {
		errs = append(errs, errors.New("pool.idle_timeout: must not be negative"))
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

// Upstream is a PostgreSQL connection's upstream block: the server and the
// credentials Airlock holds for it.
type Upstream struct {
	// Address is host:port, or the absolute path of the socket directory
	// (or of the socket file itself).
	Address  string           `yaml:"address"`
	Database string           `yaml:"database"`
	User     string           `yaml:"user"`
	Password protocols.Secret `yaml:"password"`
	TLS      UpstreamTLS      `yaml:"tls"`
}

// UpstreamTLS says how Airlock secures its connection to the upstream.
type UpstreamTLS struct {
	// Mode is disable, prefer (default), require or verify-full.
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
		u.TLS.Mode = "prefer"
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
	if u.Address == "" {
		add("address", "missing (write host:port, or the absolute path of the socket directory)")
	} else if _, _, err := SplitUpstreamAddress(u.Address); err != nil {
		add("address", "%v", err)
	} else if IsUnixAddress(u.Address) {
		// libpq quietly ignores sslmode on a Unix socket; a gateway that was
		// asked to require TLS says so instead of running without it.
		switch u.TLS.Mode {
		case "require", "verify-full":
			add("tls.mode", "%q is impossible over a Unix socket, which carries no TLS (use disable or prefer)", u.TLS.Mode)
		}
	}
	if u.Database == "" {
		add("database", "missing")
	}
	if u.User == "" {
		add("user", "missing")
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
	return errors.Join(errs...)
}

// upstreamOf is the engine's upstream block of c.
func upstreamOf(c *protocols.Connection) *Upstream {
	u, _ := c.Upstream.(*Upstream)
	if u == nil {
		return &Upstream{}
	}
	return u
}
