package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/identity/sso"
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
	// SSO signs people in with their company's identity providers and
	// issues short-lived credentials (airlock login); absent: off.
	SSO *sso.Config `yaml:"sso"`
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
	// Engines holds each protocol engine's own section (postgres: …), by
	// protocol name, for the engine to decode.
	Engines map[string]yaml.Node `yaml:",inline"`

	// AuthThrottle slows down failed authentications (throttle.go).
	AuthThrottle AuthThrottle `yaml:"auth_throttle"`

	// Handshake bounds clients that have connected but not yet
	// authenticated, on every listener.
	Handshake Handshake `yaml:"handshake"`
	// Shutdown, Readiness and Reload tune the process's lifecycle
	// (lifecycle.go).
	Shutdown  Shutdown  `yaml:"shutdown"`
	Readiness Readiness `yaml:"readiness"`
	Reload    Reload    `yaml:"reload"`
	// Limits caps the sessions run at once (limits.go).
	Limits Limits `yaml:"limits"`

	// keyOptional is set by LoadForTools: the recording key's variable may
	// be unset.
	keyOptional bool
}

// Handshake bounds clients between connecting and authenticating, so that
// silent connections cannot exhaust the gateway's file descriptors.
type Handshake struct {
	// Timeout (default 10s) is how long a client may take to authenticate.
	Timeout time.Duration `yaml:"timeout"`
	// MaxPending caps the clients authenticating at once (default: a
	// quarter of the process's open-file limit); past it the oldest is
	// dropped to make room.
	MaxPending int `yaml:"max_pending"`
}

// Listen maps each listener to its address: "admin" (metrics, health,
// approvals), "http" (the agent query API and MCP endpoint) and one per
// protocol engine ("postgres"); an empty address is not opened.
type Listen map[string]string

// ServerTLS is the certificate Airlock presents to clients on every
// listener. Without files a self-signed certificate is generated once and
// kept in Dir, so that it survives restarts (clients may pin it).
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Hosts are the names and addresses a generated certificate covers.
	Hosts []string `yaml:"hosts"`
	// Dir keeps the generated certificate and its key (default ./data/tls).
	Dir string `yaml:"dir"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Debug holds switches for investigating Airlock itself.
type Debug struct {
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener when it listens on loopback only.
	Pprof bool `yaml:"pprof"`
	// PprofAnyAddress serves it also when the admin listener listens on
	// another address, where anyone who reaches it could profile Airlock.
	PprofAnyAddress bool `yaml:"pprof_any_address"`
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

// Connection is a named route to one upstream.
type Connection struct {
	Name     string `yaml:"name"`
	Protocol string `yaml:"protocol"`
	// Description says what the connection is for (shown to agents).
	Description string `yaml:"description"`
	// Upstream is decoded and checked by the protocol's engine: where the
	// service is and the credentials Airlock holds for it.
	Upstream yaml.Node `yaml:"upstream"`
	// DefaultIdentity names the caller of a login that gives a secret but
	// no name (a Redis AUTH with only a token).
	DefaultIdentity string `yaml:"default_identity"`
	// Allow lists who may use the connection: identity names,
	// "group:NAME" entries, or "*" for every authenticated caller.
	Allow []string `yaml:"allow"`
	// Policy overrides the global policy for this connection.
	Policy *policy.Config `yaml:"policy"`
	// Masking replaces the global masking block for this connection.
	Masking *masking.Config `yaml:"masking"`
	// Approvals overrides the global approvals block for this connection.
	Approvals *approvals.ConnectionConfig `yaml:"approvals"`
	// MaxSessions caps the connection's sessions at once, each holding one
	// upstream session; left out, PostgreSQL and MySQL connections take
	// session.DefaultMaxSessions and others none; 0 is no cap.
	MaxSessions *int `yaml:"max_sessions"`

	// upstream is the engine's decoded Upstream.
	upstream any
}

// Load reads, expands, decodes and validates a configuration file. The
// engines decode and check their own sections and their connections'
// upstream blocks; a connection whose protocol no engine serves is an
// error.
func Load(path string, engines ...engine.Engine) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, os.LookupEnv, engines...)
}

// Parse is Load on bytes with an injected environment.
func Parse(data []byte, getenv func(string) (string, bool), engines ...engine.Engine) (*Config, error) {
	return parse(data, getenv, parseOptions{}, engines...)
}

func parse(data []byte, getenv func(string) (string, bool), opts parseOptions, engines ...engine.Engine) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("config is empty")
	}
	checker := keyChecker{}
	for _, e := range engines {
		checker[string(e.Protocol())] = e
	}
	var errs []error
	checker.check(&root, configType, "", &errs, nil)
	expandNode(&root, "", getenv, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var c Config
	if err := root.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	c.applyDefaults()
	c.keyOptional = opts.keyOptional
	if err := c.validate(engines); err != nil {
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
	c.Store = c.Store.WithDefaults()
	if c.TLS.Dir == "" {
		c.TLS.Dir = DefaultTLSDir
	}
	if c.Handshake.Timeout == 0 {
		c.Handshake.Timeout = 10 * time.Second
	}
	c.Shutdown.applyDefaults()
	c.Readiness.applyDefaults()
	if admin := c.Listen["admin"]; c.Approvals.AdminURL == "" && admin != "" {
		host, port, err := net.SplitHostPort(admin)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			c.Approvals.AdminURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	for i := range c.Connections {
		if cn := &c.Connections[i]; cn.Protocol == "" {
			cn.Protocol = string(protocols.Postgres)
		}
	}
}

// DefaultTLSDir is where a generated server certificate is kept.
const DefaultTLSDir = "data/tls"

// knownProtocols are the protocols Airlock has a name for, served or not.
var knownProtocols = []protocols.Protocol{protocols.Postgres, protocols.MySQL, protocols.Redis, protocols.HTTP}

// validate reports every problem in the configuration with its path.
func (c *Config) validate(engines []engine.Engine) error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	byName := map[string]engine.Engine{}
	var names []string
	for _, e := range engines {
		byName[string(e.Protocol())] = e
		names = append(names, string(e.Protocol()))
	}
	errs = append(errs, c.validateListen(byName)...)
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
	if c.Handshake.Timeout < 0 {
		add("handshake.timeout", "must not be negative")
	}
	if c.Handshake.MaxPending < 0 {
		add("handshake.max_pending", "must not be negative (0 sizes it from the open-file limit)")
	}
	errs = append(errs, c.validateLifecycle()...)
	errs = append(errs, c.Limits.validate()...)
	for _, e := range engines {
		name := string(e.Protocol())
		node, ok := c.Engines[name]
		errs = append(errs, prefixed(name, e.Configure(decoder(&node, ok)))...)
	}
	if err := c.Config.Validate(""); err != nil {
		errs = append(errs, err)
	}
	if c.SSO != nil {
		if err := c.SSO.Validate("sso"); err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range []struct {
		path string
		v    interface{ Validate(string) error }
	}{{"store", &c.Store}, {"approvals", &c.Approvals}, {"classifier", &c.Classifier}, {"policy", &c.Policy},
		{"masking", &c.Masking}, {"recording", c.recordingToCheck()}} {
		if err := v.v.Validate(v.path); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]int{}
	for i := range c.Connections {
		errs = append(errs, c.Connections[i].validate(fmt.Sprintf("connections[%d]", i), seen, i, byName, names)...)
		errs = append(errs, c.checkAccessRoles(i)...)
	}
	if len(c.Connections) == 0 {
		add("connections", "no connection configured")
	}
	return errors.Join(errs...)
}

// checkAccessRoles reports the access roles connection i offers that
// approvals.access does not define.
func (c *Config) checkAccessRoles(i int) []error {
	cn := &c.Connections[i]
	if cn.Approvals == nil || cn.Approvals.Access == nil {
		return nil
	}
	var errs []error
	for j, r := range cn.Approvals.Access.Roles {
		if _, ok := c.Approvals.Access.Roles[r]; !ok {
			errs = append(errs, fmt.Errorf("connections[%d].approvals.access.roles[%d]: unknown role %q (define it under approvals.access.roles)", i, j, r))
		}
	}
	return errs
}

// validateListen checks the listeners: admin and one per engine.
func (c *Config) validateListen(engines map[string]engine.Engine) []error {
	var errs []error
	keys := make([]string, 0, len(c.Listen))
	for k := range c.Listen {
		keys = append(keys, k)
	}
	// The engines' listeners in a stable order, then the admin listener.
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "admin") != (keys[j] == "admin") {
			return keys[j] == "admin"
		}
		return keys[i] < keys[j]
	})
	open := 0
	for _, k := range keys {
		addr := c.Listen[k]
		if k != "admin" && k != "http" && engines[k] == nil {
			errs = append(errs, fmt.Errorf("listen.%s: unknown listener (want admin, http or a protocol: %s)", k, strings.Join(slices.Sorted(maps.Keys(engines)), ", ")))
			continue
		}
		if addr == "" {
			continue
		}
		open++
		if msg := checkHostPort(addr); msg != "" {
			errs = append(errs, fmt.Errorf("listen.%s: %s", k, msg))
		}
	}
	if open == 0 {
		errs = append(errs, errors.New("listen: no listener configured (set listen.postgres and listen.admin)"))
	}
	return errs
}

// decoder decodes node strictly into v; an absent block leaves v alone.
func decoder(node *yaml.Node, present bool) engine.Decode {
	return func(v any) error {
		if !present || node.Kind == 0 {
			return nil
		}
		var errs []error
		checkKnown(node, reflect.TypeOf(v), "", &errs)
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if err := node.Decode(v); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		return nil
	}
}

// prefixed splits an engine's joined errors and puts path before each.
func prefixed(path string, err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixed(path, e)...)
		}
		return out
	}
	return []error{fmt.Errorf("%s.%w", path, err)}
}

func (cn *Connection) validate(path string, names map[string]int, i int, engines map[string]engine.Engine, served []string) []error {
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
	errs = append(errs, cn.validateMaxSessions(path)...)
	e := engines[cn.Protocol]
	switch {
	case e != nil:
		up, err := e.Upstream(decoder(&cn.Upstream, true))
		if err != nil {
			errs = append(errs, prefixed(path+".upstream", err)...)
		}
		cn.upstream = up
	case slices.Contains(knownProtocols, protocols.Protocol(cn.Protocol)):
		add("protocol", "%q connections are not served yet (only %s)", cn.Protocol, strings.Join(served, ", "))
	default:
		add("protocol", "unknown protocol %q (want %s)", cn.Protocol, strings.Join(served, ", "))
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

// DecodedUpstream is the upstream block as the connection's engine decoded
// it (nil when it could not).
func (cn *Connection) DecodedUpstream() any { return cn.upstream }

// ProtocolConnection converts a configured connection into the engines'
// form, with the upstream its engine decoded; the policy and masking are
// attached by the caller.
func (cn *Connection) ProtocolConnection() *protocols.Connection {
	return &protocols.Connection{
		Name:            cn.Name,
		Protocol:        protocols.Protocol(cn.Protocol),
		Description:     cn.Description,
		Allow:           protocols.Principals(cn.Allow),
		DefaultIdentity: cn.DefaultIdentity,
		Upstream:        cn.upstream,
		MaxSessions:     cn.sessionCap(),
	}
}
