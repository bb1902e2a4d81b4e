package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/postgres"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
	"github.com/airlock-gw/airlock/sqlrisk"
)

// Config is the whole of airlock.yaml.
type Config struct {
	Listen          Listen    `yaml:"listen"`
	TLS             ServerTLS `yaml:"tls"`
	Log             Log       `yaml:"log"`
	Debug           Debug     `yaml:"debug"`
	Runtime         Runtime   `yaml:"runtime"`
	identity.Config `yaml:",inline"`
	Postgres        PostgresOptions `yaml:"postgres"`
	// Store holds approval requests and the session index: SQLite by
	// default, PostgreSQL when several replicas share them.
	Store     sqldb.Config     `yaml:"store"`
	Approvals approvals.Config `yaml:"approvals"`
	// Classifier tunes sqlrisk (its decision cache).
	Classifier sqlrisk.Config `yaml:"classifier"`
	// Policy maps risks and rules to allow, review or deny for every
	// connection; each connection may override it.
	Policy policy.Config `yaml:"policy"`
	// Recording writes one tamper-evident file per session in inspect mode
	// (default directory ./data/recordings) unless disabled is set.
	Recording recording.Config `yaml:"recording"`
	// Masking is the default masking of connections without their own.
	Masking     masking.Config `yaml:"masking"`
	Connections []Connection   `yaml:"connections"`
}

// Listen holds the listener addresses; an empty one is not opened.
type Listen struct {
	Postgres string `yaml:"postgres"`
	Admin    string `yaml:"admin"`
}

// ServerTLS is the certificate Airlock presents to clients. Without files a
// self-signed certificate is generated at start and logged by fingerprint.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Hosts are the names and addresses a generated certificate covers.
	Hosts []string `yaml:"hosts"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Debug holds switches for investigating Airlock itself.
type Debug struct {
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin listener.
	Pprof bool `yaml:"pprof"`
}

// Runtime tunes how the Go runtime schedules Airlock's work.
type Runtime struct {
	// KeepAwake (default true) keeps the Go scheduler's monitor thread out
	// of its deep sleep while Airlock serves, which halves the CPU spent per
	// transaction at low concurrency (see cmd/airlock/awake_linux.go). It
	// costs one extra P and a wake every few milliseconds.
	KeepAwake *bool `yaml:"keep_awake"`
}

// KeepsAwake reports whether the scheduler keeper runs.
func (r Runtime) KeepsAwake() bool { return r.KeepAwake == nil || *r.KeepAwake }

// PostgresOptions tune the Postgres engine.
type PostgresOptions struct {
	// Mode is "inspect" (default: every command through the pipeline),
	// "decode" (protocol-aware relay that classifies nothing and allows
	// everything; for measurement only) or "relay" (authenticate, then pass
	// frames untouched; for measurement only).
	Mode           string        `yaml:"mode"`
	MaxMessageSize ByteSize      `yaml:"max_message_size"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// Pool keeps upstream sessions that clients ended cleanly, reset with
	// DISCARD ALL, for the next client with the same connection and
	// startup parameters.
	Pool PoolOptions `yaml:"pool"`
}

// PoolOptions bound upstream session reuse.
type PoolOptions struct {
	// MaxIdle is how many idle upstream sessions are kept in all; nil means
	// the default (DefaultPoolMaxIdle), 0 turns reuse off.
	MaxIdle *int `yaml:"max_idle"`
	// IdleTimeout is how long an idle session is kept (default 60s).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// DefaultPoolMaxIdle is postgres.pool.max_idle when the file leaves it out.
const DefaultPoolMaxIdle = 16

// MaxIdleSessions is MaxIdle with its default applied.
func (p PoolOptions) MaxIdleSessions() int {
	if p.MaxIdle == nil {
		return DefaultPoolMaxIdle
	}
	return *p.MaxIdle
}

// Connection is a named route to one upstream.
type Connection struct {
	Name     string   `yaml:"name"`
	Protocol string   `yaml:"protocol"`
	Upstream Upstream `yaml:"upstream"`
	// Allow lists who may use the connection: identity names,
	// "group:NAME" entries, or "*" for every authenticated caller.
	Allow []string `yaml:"allow"`
	// Policy overrides the global policy for this connection.
	Policy *policy.Config `yaml:"policy"`
	// Masking replaces the global masking block for this connection.
	Masking *masking.Config `yaml:"masking"`
	// Approvals overrides the global approvals block for this connection.
	Approvals *approvals.ConnectionConfig `yaml:"approvals"`
}

// Upstream is the service and the credentials Airlock holds for it.
type Upstream struct {
	Address  string      `yaml:"address"`
	Database string      `yaml:"database"`
	User     string      `yaml:"user"`
	Password string      `yaml:"password"`
	TLS      UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS says how Airlock secures its connection to the upstream.
type UpstreamTLS struct {
	Mode       string `yaml:"mode"` // disable, prefer (default), require, verify-full
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// ByteSize is a size in bytes written as 64MiB, 512KB or a plain number.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize parses "64MiB", "10GB", "512k" or "1024".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (write e.g. 64MiB, 10GB or 1048576)", s)
	}
	return ByteSize(n * mult), nil
}

// Load reads, expands, decodes and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, os.LookupEnv)
}

// Parse is Load on bytes with an injected environment.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("config is empty")
	}
	var errs []error
	checkKnown(&root, reflect.TypeFor[Config](), "", &errs)
	expandNode(&root, "", getenv, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var c Config
	if err := root.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Recording.Dir == "" {
		c.Recording.Dir = recording.DefaultDir
	}
	c.Recording = c.Recording.WithDefaults()
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Store.Driver == "sqlite" && c.Store.DSN == "" {
		c.Store.DSN = protocols.Secret(sqldb.DefaultSQLitePath)
	}
	if c.Approvals.AdminURL == "" && c.Listen.Admin != "" {
		host, port, err := net.SplitHostPort(c.Listen.Admin)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			c.Approvals.AdminURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	if c.Postgres.Mode == "" {
		c.Postgres.Mode = "inspect"
	}
	if c.Postgres.MaxMessageSize == 0 {
		c.Postgres.MaxMessageSize = 64 << 20
	}
	if c.Postgres.ConnectTimeout == 0 {
		c.Postgres.ConnectTimeout = 10 * time.Second
	}
	if c.Postgres.StartupTimeout == 0 {
		c.Postgres.StartupTimeout = 30 * time.Second
	}
	if c.Postgres.Pool.IdleTimeout == 0 {
		c.Postgres.Pool.IdleTimeout = 60 * time.Second
	}
	for i := range c.Connections {
		cn := &c.Connections[i]
		if cn.Protocol == "" {
			cn.Protocol = string(protocols.Postgres)
		}
		if cn.Upstream.TLS.Mode == "" {
			cn.Upstream.TLS.Mode = "prefer"
		}
	}
}

// Validate reports every problem in the configuration with its path.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.Listen.Postgres == "" && c.Listen.Admin == "" {
		add("listen", "no listener configured (set listen.postgres and listen.admin)")
	}
	for _, l := range []struct{ name, addr string }{{"listen.postgres", c.Listen.Postgres}, {"listen.admin", c.Listen.Admin}} {
		if l.addr != "" {
			if msg := checkHostPort(l.addr); msg != "" {
				add(l.name, "%s", msg)
			}
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file go together: set both or neither")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	switch c.Postgres.Mode {
	case "inspect", "decode", "relay":
	default:
		add("postgres.mode", "unknown mode %q (want inspect, decode or relay)", c.Postgres.Mode)
	}
	if c.Postgres.MaxMessageSize < 1<<10 {
		add("postgres.max_message_size", "must be at least 1KiB")
	}
	if p := c.Postgres.Pool.MaxIdle; p != nil && *p < 0 {
		add("postgres.pool.max_idle", "must not be negative (0 turns reuse off)")
	}
	if c.Postgres.Pool.IdleTimeout < 0 {
		add("postgres.pool.idle_timeout", "must not be negative")
	}
	if err := c.Config.Validate(""); err != nil {
		errs = append(errs, err)
	}
	if err := c.Store.Validate("store"); err != nil {
		errs = append(errs, err)
	}
	if err := c.Approvals.Validate("approvals"); err != nil {
		errs = append(errs, err)
	}
	if err := c.Classifier.Validate("classifier"); err != nil {
		errs = append(errs, err)
	}
	if err := c.Policy.Validate("policy"); err != nil {
		errs = append(errs, err)
	}
	if err := c.Masking.Validate("masking"); err != nil {
		errs = append(errs, err)
	}
	if err := c.Recording.Validate("recording"); err != nil {
		errs = append(errs, err)
	}
	names := map[string]int{}
	for i := range c.Connections {
		errs = append(errs, c.Connections[i].validate(fmt.Sprintf("connections[%d]", i), names, i)...)
	}
	if len(c.Connections) == 0 {
		add("connections", "no connection configured")
	}
	return errors.Join(errs...)
}

func (cn *Connection) validate(path string, names map[string]int, i int) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, fmt.Sprintf(format, args...)))
	}
	switch {
	case cn.Name == "":
		add("name", "missing")
	case !validConnName(cn.Name):
		add("name", "%q may contain only letters, digits, '_', '-' and '.'", cn.Name)
	default:
		if j, dup := names[cn.Name]; dup {
			add("name", "%q is already used by connections[%d]", cn.Name, j)
		}
		names[cn.Name] = i
	}
	switch protocols.Protocol(cn.Protocol) {
	case protocols.Postgres:
	case protocols.MySQL, protocols.Redis, protocols.HTTP:
		add("protocol", "%q connections are not served yet (only postgres)", cn.Protocol)
	default:
		add("protocol", "unknown protocol %q (want postgres)", cn.Protocol)
	}
	if cn.Upstream.Address == "" {
		add("upstream.address", "missing (write host:port, or the absolute path of the socket directory)")
	} else if _, _, err := postgres.SplitUpstreamAddress(cn.Upstream.Address); err != nil {
		add("upstream.address", "%v", err)
	} else if postgres.IsUnixAddress(cn.Upstream.Address) {
		// libpq quietly ignores sslmode on a Unix socket; a gateway that was
		// asked to require TLS says so instead of running without it.
		switch cn.Upstream.TLS.Mode {
		case "require", "verify-full":
			add("upstream.tls.mode", "%q is impossible over a Unix socket, which carries no TLS (use disable or prefer)", cn.Upstream.TLS.Mode)
		}
	}
	if cn.Upstream.Database == "" {
		add("upstream.database", "missing")
	}
	if cn.Upstream.User == "" {
		add("upstream.user", "missing")
	}
	switch cn.Upstream.TLS.Mode {
	case "disable", "prefer", "require", "verify-full":
	default:
		add("upstream.tls.mode", "unknown mode %q (want disable, prefer, require or verify-full)", cn.Upstream.TLS.Mode)
	}
	if cn.Upstream.TLS.CAFile != "" {
		if _, err := os.Stat(cn.Upstream.TLS.CAFile); err != nil {
			add("upstream.tls.ca_file", "%v", err)
		}
	}
	if cn.Masking != nil {
		if err := cn.Masking.Validate(path + ".masking"); err != nil {
			errs = append(errs, err)
		}
	}
	if cn.Policy != nil {
		if err := cn.Policy.Validate(path + ".policy"); err != nil {
			errs = append(errs, err)
		}
	}
	if cn.Approvals != nil {
		if err := cn.Approvals.Validate(path + ".approvals"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(cn.Allow) == 0 {
		add("allow", "empty: nobody could use this connection (list identities, \"group:NAME\" or \"*\")")
	}
	for j, a := range cn.Allow {
		if a == "" || a == "group:" {
			add(fmt.Sprintf("allow[%d]", j), "empty entry")
		}
	}
	return errs
}

func validConnName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return len(s) <= 63
}

// checkHostPort checks a listener's host:port; the host may be empty to
// listen on every interface.
func checkHostPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !strings.Contains(addr, ":") {
			return fmt.Sprintf("missing port in %q (write host:port)", addr)
		}
		return fmt.Sprintf("invalid address %q: %v", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Sprintf("invalid port %q", port)
	}
	return ""
}

// ConnectionPolicy compiles the global policy with the connection's own.
func (c *Config) ConnectionPolicy(cn *Connection) (*policy.Policy, error) {
	var own policy.Config
	if cn.Policy != nil {
		own = *cn.Policy
	}
	return policy.New(c.Policy, own)
}

// ConnectionMasking returns the masking block that applies to cn: its own,
// or the global default.
func (c *Config) ConnectionMasking(cn *Connection) masking.Config {
	if cn.Masking != nil {
		return *cn.Masking
	}
	return c.Masking
}

// Connection returns the connection named name, or nil.
func (c *Config) Connection(name string) *Connection {
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i]
		}
	}
	return nil
}

// ProtocolConnection converts a configured connection into the engine's
// form; the policy and masking are attached by the caller.
func (cn *Connection) ProtocolConnection() *protocols.Connection {
	return &protocols.Connection{
		Name:     cn.Name,
		Protocol: protocols.Protocol(cn.Protocol),
		Allow:    protocols.Principals(cn.Allow),
		Upstream: protocols.Upstream{
			Address:  cn.Upstream.Address,
			Database: cn.Upstream.Database,
			User:     cn.Upstream.User,
			Password: protocols.Secret(cn.Upstream.Password),
			TLS: protocols.UpstreamTLS{
				Mode: cn.Upstream.TLS.Mode, CAFile: cn.Upstream.TLS.CAFile, ServerName: cn.Upstream.TLS.ServerName,
			},
		},
	}
}
