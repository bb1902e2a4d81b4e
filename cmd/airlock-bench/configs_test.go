package main

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
)

func testConfig() airlockConfig {
	return airlockConfig{Port: 15432, AdminPort: 19090, Identity: benchIdentity,
		TokenHash: strings.Repeat("ab", 32), Connection: benchConnection, Upstream: "127.0.0.1:5432", Database: "airlock_bench"}
}

// TestModeConfigsLoad checks the relay and inspect templates against the
// real configuration loader, so a format change fails here first.
func TestModeConfigsLoad(t *testing.T) {
	for mode, want := range map[string]string{modeRelay: "relay", modeInspect: "decode"} {
		t.Run(mode, func(t *testing.T) {
			y, err := withMode(testConfig(), mode).render()
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(y, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("config rejected:\n%s\n%v", y, err)
			}
			if cfg.Postgres.Mode != want {
				t.Errorf("postgres.mode = %q, want %q", cfg.Postgres.Mode, want)
			}
			if len(cfg.Connections) != 1 || cfg.Connections[0].Name != benchConnection || cfg.Connections[0].Upstream.TLS.Mode != "disable" {
				t.Errorf("connection = %+v", cfg.Connections)
			}
			if cfg.Listen.Postgres != "127.0.0.1:15432" || cfg.Listen.Admin != "127.0.0.1:19090" {
				t.Errorf("listen = %+v: Airlock must listen on loopback only", cfg.Listen)
			}
		})
	}
}

// TestSectionsPlacement checks that probed sections land where they belong.
func TestSectionsPlacement(t *testing.T) {
	d := probeData{RecordingDir: "/tmp/x/recordings", KeyEnv: recordingKeyEnv}
	c := withMode(testConfig(), modeInspect)
	for _, p := range fullSections {
		s, err := renderShape(p.Shapes[0], d)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name == "policy" && p.Level == topLevel {
			continue // the same key cannot appear twice at the top level
		}
		c = c.with(p.Level, s)
	}
	c = c.with(topLevel, "policy: {}")
	y, err := c.render()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Recording   map[string]any   `yaml:"recording"`
		Policy      map[string]any   `yaml:"policy"`
		Connections []map[string]any `yaml:"connections"`
	}
	if err := yaml.Unmarshal(y, &doc); err != nil {
		t.Fatalf("rendered YAML does not parse:\n%s\n%v", y, err)
	}
	if doc.Recording["dir"] != "/tmp/x/recordings" || doc.Recording["hmac_key_env"] != recordingKeyEnv {
		t.Errorf("recording = %v", doc.Recording)
	}
	if doc.Policy == nil {
		t.Error("top-level policy missing")
	}
	if len(doc.Connections) != 1 {
		t.Fatalf("connections = %v", doc.Connections)
	}
	conn := doc.Connections[0]
	m, ok := conn["masking"].(map[string]any)
	if !ok || len(m["detect"].([]any)) != 2 {
		t.Errorf("connection masking = %v", conn["masking"])
	}
	if _, ok := conn["policy"]; !ok {
		t.Error("connection policy missing")
	}
	if conn["name"] != benchConnection {
		t.Errorf("connection name = %v", conn["name"])
	}
}

func TestWithDoesNotShareSections(t *testing.T) {
	base := testConfig().with(topLevel, "a: 1")
	x := base.with(topLevel, "b: 2")
	y := base.with(topLevel, "c: 3")
	if len(x.Top) != 2 || x.Top[1] != "b: 2" || y.Top[1] != "c: 3" {
		t.Fatalf("with must copy: %v %v", x.Top, y.Top)
	}
}

func TestPgbouncerConfig(t *testing.T) {
	ini, err := pgbouncerConfig{DB: "airlock_bench", PGPort: 5432, Port: 16432, Dir: "/tmp/p", PoolSize: 32, MaxClients: 200}.render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"airlock_bench = host=127.0.0.1 port=5432 dbname=airlock_bench user=postgres\n",
		"airlock_bench_tx = host=127.0.0.1 port=5432 dbname=airlock_bench user=postgres pool_mode=transaction",
		"listen_addr = 127.0.0.1\n", "listen_port = 16432\n", "pool_mode = session\n",
		"default_pool_size = 32\n", "max_client_conn = 200\n", "auth_file = /tmp/p/userlist.txt\n",
		"server_tls_sslmode = disable\n", "unix_socket_dir =\n",
	} {
		if !strings.Contains(string(ini), want) {
			t.Errorf("pgbouncer.ini lacks %q:\n%s", want, ini)
		}
	}
}

func TestIndent(t *testing.T) {
	if got := indent(2, "a:\n  b: 1\n\nc: 2\n"); got != "  a:\n    b: 1\n\n  c: 2" {
		t.Fatalf("indent = %q", got)
	}
}

func TestRejectionReason(t *testing.T) {
	err := func(s string) error { return &wrapped{s} }
	tests := []struct{ in, want string }{
		{errInvalidConfig.Error() + ": config: invalid configuration:\n  recording: unknown key (line 11)", "recording: unknown key (line 11)"},
		{errInvalidConfig.Error() + ": something odd", "something odd"},
	}
	for _, tc := range tests {
		if got := rejectionReason(err(tc.in)); got != tc.want {
			t.Errorf("rejectionReason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type wrapped struct{ s string }

func (w *wrapped) Error() string { return w.s }
