package mysql

import (
	"strings"
	"testing"

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
