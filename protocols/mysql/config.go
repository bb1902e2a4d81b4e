package mysql

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// Settings are the engine's section of the configuration (mysql:).
type Settings struct {
	// Mode is "inspect" (default: every command through the session
	// flow), "decode" (protocol-aware relay that classifies, masks and
	// records nothing and allows everything; for measurement only) or
	// "relay" (authenticate, then pass bytes untouched; for measurement
	// only).
	Mode string `yaml:"mode"`
	// MaxPacketSize bounds one packet's payload in either direction, as
	// the server's max_allowed_packet does (default 64 MiB). A client
	// packet over it is refused with error 1153 and the session ends.
	MaxPacketSize protocols.ByteSize `yaml:"max_packet_size"`
	// ConnectTimeout bounds dialling and authenticating upstream (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// QueryTimeout (default 0: none) bounds how long a command may wait
	// without a word from the upstream (faults.go).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// HandshakeTimeout bounds a client's handshake (default 30s); the
	// gateway's handshake timeout may end it sooner.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ServerVersion is the version clients see in the greeting; empty
	// takes the upstream's own (clients and ORMs pick features by it).
	ServerVersion string `yaml:"server_version"`
	// Pool keeps upstream sessions that clients ended cleanly, reset with
	// COM_RESET_CONNECTION, for the next client of the same connection,
	// identity and negotiated flags (pool.go).
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

// DefaultPoolMaxIdle is mysql.pool.max_idle when the file leaves it out.
const DefaultPoolMaxIdle = 16

// maxIdle is MaxIdle with its default applied.
func (p PoolSettings) maxIdle() int {
	if p.MaxIdle == nil {
		return DefaultPoolMaxIdle
	}
	return *p.MaxIdle
}

func (s Settings) withDefaults() Settings {
	if s.Mode == "" {
		s.Mode = "inspect"
	}
	if s.MaxPacketSize == 0 {
		s.MaxPacketSize = 64 << 20
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = 10 * time.Second
	}
	if s.HandshakeTimeout == 0 {
		s.HandshakeTimeout = 30 * time.Second
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
	if s.MaxPacketSize < 1<<10 || s.MaxPacketSize > 1<<30 {
		errs = append(errs, errors.New("max_packet_size: must be between 1KiB and 1GiB"))
	}
	if s.ConnectTimeout < 0 {
		errs = append(errs, errors.New("connect_timeout: must not be negative"))
	}
	if s.QueryTimeout < 0 {
		errs = append(errs, errors.New("query_timeout: must not be negative (0: none)"))
	}
	if s.HandshakeTimeout < 0 {
		errs = append(errs, errors.New("handshake_timeout: must not be negative"))
	}
	if p := s.Pool.MaxIdle; p != nil && *p < 0 {
		errs = append(errs, errors.New("pool.max_idle: must not be negative (0 turns reuse off)"))
	}
	if s.Pool.IdleTimeout < 0 {
		errs = append(errs, errors.New("pool.idle_timeout: must not be negative"))
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

// Upstream is a MySQL connection's upstream block: the server and the
// credentials Airlock holds for it.
type Upstream struct {
	// Address is host:port, or the absolute path of a Unix socket.
	Address  string           `yaml:"address"`
	Database string           `yaml:"database"`
	User     string           `yaml:"user"`
	Password protocols.Secret `yaml:"password"`
	TLS      UpstreamTLS      `yaml:"tls"`
	// ServerPublicKey is a PEM file with the server's RSA public key, used
	// to send the password for caching_sha2_password or sha256_password
	// without TLS; without it the key is fetched from the server.
	ServerPublicKey string `yaml:"server_public_key"`
	// AllowDatabaseChange says which databases a caller may switch to with
	// USE or COM_INIT_DB: false (default) only Database, true any, or a
	// list of names (Database is always allowed).
	AllowDatabaseChange DatabaseScope `yaml:"allow_database_change"`

	publicKey *rsa.PublicKey
}

// UpstreamTLS says how Airlock secures its connection to the upstream.
type UpstreamTLS struct {
	// Mode is disable, prefer (default), require or verify-full.
	Mode       string `yaml:"mode"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// DatabaseScope is allow_database_change: a boolean, or a list of
// databases.
type DatabaseScope struct {
	Any   bool
	Names []string
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *DatabaseScope) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		d.Any = false
		return n.Decode(&d.Names)
	}
	if err := n.Decode(&d.Any); err != nil {
		return errors.New("want true, false or a list of database names")
	}
	return nil
}

// allows reports whether a caller may switch to db; current is the
// connection's own database.
func (d DatabaseScope) allows(db, current string) bool {
	return d.Any || db == current || slices.Contains(d.Names, db)
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
	switch {
	case u.Address == "":
		add("address", "missing (write host:port, or the absolute path of a Unix socket)")
	case u.Address[0] == '/':
		switch u.TLS.Mode {
		case "require", "verify-full":
			add("tls.mode", "%q is impossible over a Unix socket, which carries no TLS (use disable or prefer)", u.TLS.Mode)
		}
	default:
		if _, _, err := net.SplitHostPort(u.Address); err != nil {
			add("address", "%v (write host:port)", err)
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
	if u.ServerPublicKey != "" {
		key, err := readPublicKey(u.ServerPublicKey)
		if err != nil {
			add("server_public_key", "%v", err)
		}
		u.publicKey = key
	}
	for i, n := range u.AllowDatabaseChange.Names {
		if n == "" {
			add(fmt.Sprintf("allow_database_change[%d]", i), "empty database name")
		}
	}
	return errors.Join(errs...)
}

func readPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block in the file")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA public key")
	}
	return rk, nil
}

// upstreamOf is the engine's upstream block of c.
func upstreamOf(c *protocols.Connection) *Upstream {
	u, _ := c.Upstream.(*Upstream)
	if u == nil {
		return &Upstream{}
	}
	return u
}

// dialConfig is how to log in to c's upstream with the relayed flags caps
// (0: all Airlock relays, to learn what the upstream offers).
func dialConfig(c *protocols.Connection, caps uint32, charset uint8, attrs map[string]string) wire.DialConfig {
	u := upstreamOf(c)
	cfg := wire.DialConfig{
		Address: u.Address, User: u.User, Password: u.Password.Reveal(), Database: u.Database,
		TLS:          wire.TLSConfig{Mode: u.TLS.Mode, CAFile: u.TLS.CAFile, ServerName: u.TLS.ServerName},
		Capabilities: caps, Charset: charset, Attributes: attrs, ServerPublicKey: u.publicKey,
	}
	if u.Address != "" && u.Address[0] == '/' {
		cfg.Network = "unix"
	}
	return cfg
}
