package mysql

import (
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols"
)

// decodeYAML is the engine's Decode over a YAML text.
func decodeYAML(text string) func(v any) error {
	return func(v any) error { return yaml.Unmarshal([]byte(text), v) }
}

func TestUpstreamBlock(t *testing.T) {
	e := New()
	for _, tc := range []struct {
		name, yaml string
		errs       []string
	}{
		{"minimal", "address: 127.0.0.1:3306\ndatabase: test\nuser: root\n", nil},
		{"socket", "address: /run/mysqld/mysqld.sock\ndatabase: test\nuser: root\n", nil},
		{"missing", "tls: {mode: bogus}\n", []string{"address: missing", "database: missing", "user: missing", `tls.mode: unknown mode "bogus"`}},
		{"no port", "address: localhost\ndatabase: d\nuser: u\n", []string{"address:"}},
		{"tls on a socket", "address: /tmp/s.sock\ndatabase: d\nuser: u\ntls: {mode: require}\n", []string{"impossible over a Unix socket"}},
		{"missing key file", "address: h:1\ndatabase: d\nuser: u\nserver_public_key: /nonexistent.pem\n", []string{"server_public_key:"}},
		{"scope list", "address: h:1\ndatabase: d\nuser: u\nallow_database_change: [reports, '']\n", []string{"allow_database_change[1]: empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Upstream(decodeYAML(tc.yaml))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestDatabaseScope(t *testing.T) {
	for _, tc := range []struct {
		yaml  string
		allow map[string]bool
	}{
		{"allow_database_change: false", map[string]bool{"test": true, "other": false}},
		{"", map[string]bool{"test": true, "other": false}},
		{"allow_database_change: true", map[string]bool{"test": true, "other": true}},
		{"allow_database_change: [reports]", map[string]bool{"test": true, "reports": true, "other": false}},
	} {
		v, err := New().Upstream(decodeYAML("address: h:1\ndatabase: test\nuser: u\n" + tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		u := v.(*Upstream)
		for db, want := range tc.allow {
			if got := u.AllowDatabaseChange.allows(db, u.Database); got != want {
				t.Errorf("%q: allows(%s) = %v, want %v", tc.yaml, db, got, want)
			}
		}
	}
	if _, err := New().Upstream(decodeYAML("address: h:1\ndatabase: test\nuser: u\nallow_database_change: {a: b}\n")); err == nil {
		t.Error("a mapping for allow_database_change was accepted")
	}
}

func TestSettings(t *testing.T) {
	e := New()
	if err := e.Configure(decodeYAML("max_packet_size: 16MiB\nserver_version: 8.0.36-airlock\n")); err != nil {
		t.Fatal(err)
	}
	if e.set.MaxPacketSize != 16<<20 || e.set.ServerVersion != "8.0.36-airlock" || e.set.ConnectTimeout == 0 {
		t.Fatalf("settings %+v", e.set)
	}
	if err := e.Configure(decodeYAML("max_packet_size: 10\n")); err == nil || !strings.Contains(err.Error(), "max_packet_size") {
		t.Fatalf("a tiny max_packet_size: %v", err)
	}
	if e.set.Mode != "inspect" {
		t.Fatalf("default mode %q", e.set.Mode)
	}
	if err := e.Configure(decodeYAML("mode: relay\n")); err != nil || e.set.Mode != "relay" {
		t.Fatalf("mode relay: %q, %v", e.set.Mode, err)
	}
	if err := e.Configure(decodeYAML("mode: passthrough\n")); err == nil || !strings.Contains(err.Error(), `unknown mode "passthrough"`) {
		t.Fatalf("an unknown mode: %v", err)
	}
}

// TestDialConfigHoldsTheSecret: the upstream password reaches the dial
// configuration and nothing that prints.
func TestDialConfigHoldsTheSecret(t *testing.T) {
	u := &Upstream{Address: "/run/mysqld.sock", Database: "d", User: "u", Password: "s3cret-pw"}
	c := &protocols.Connection{Name: "m", Upstream: u}
	cfg := dialConfig(c, 0, 0, nil)
	if cfg.Password != "s3cret-pw" || cfg.Network != "unix" {
		t.Fatalf("dial config %+v", cfg.Network)
	}
	if s := u.Password.String(); strings.Contains(s, "s3cret") {
		t.Fatal("the password prints")
	}
}

func TestPoolSettings(t *testing.T) {
	e := New()
	if err := e.Configure(decodeYAML("")); err != nil {
		t.Fatal(err)
	}
	if e.set.Pool.maxIdle() != DefaultPoolMaxIdle || e.set.Pool.IdleTimeout != 60*time.Second {
		t.Fatalf("pool defaults %d %v", e.set.Pool.maxIdle(), e.set.Pool.IdleTimeout)
	}
	if err := e.Configure(decodeYAML("pool: {max_idle: 0}\n")); err != nil || e.set.Pool.maxIdle() != 0 {
		t.Fatalf("max_idle 0: %d, %v", e.set.Pool.maxIdle(), err)
	}
	err := e.Configure(decodeYAML("pool: {max_idle: -1, idle_timeout: -1s}\n"))
	for _, want := range []string{"pool.max_idle: must not be negative", "pool.idle_timeout: must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestPoolKey: sessions are shared only within one connection, reload,
// identity, program name, collation and set of flags, and not at all for
// flags the reset undoes.
func TestPoolKey(t *testing.T) {
	e := New()
	e.pool = newUpstreamPool(4, time.Minute, func(int) {})
	defer e.pool.close()
	c := &protocols.Connection{Name: "m"}
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_DEPRECATE_EOF)
	attrs := map[string]string{"airlock_identity": "dev"}
	base := e.poolKey(c, caps, 45, attrs)
	if base == "" || base != e.poolKey(c, caps, 45, map[string]string{"airlock_identity": "dev", "_pid": "9"}) {
		t.Fatalf("key %q not stable", base)
	}
	for name, key := range map[string]string{
		"connection":   e.poolKey(&protocols.Connection{Name: "n"}, caps, 45, attrs),
		"flags":        e.poolKey(c, caps|mysql.CLIENT_MULTI_STATEMENTS, 45, attrs),
		"collation":    e.poolKey(c, caps, 33, attrs),
		"identity":     e.poolKey(c, caps, 45, map[string]string{"airlock_identity": "ops"}),
		"program name": e.poolKey(c, caps, 45, map[string]string{"airlock_identity": "dev", "program_name": "x"}),
	} {
		if key == base {
			t.Errorf("%s: same key", name)
		}
	}
	if k := e.poolKey(c, caps|mysql.CLIENT_INTERACTIVE, 45, attrs); k != "" {
		t.Errorf("an interactive session is kept under %q", k)
	}
	e.reloads.Add(1)
	if e.poolKey(c, caps, 45, attrs) == base {
		t.Error("a reload keeps the key")
	}
	e.noReset.Store("m@1", true)
	if k := e.poolKey(c, caps, 45, attrs); k != "" {
		t.Errorf("a connection whose server refused the reset is kept under %q", k)
	}
}
