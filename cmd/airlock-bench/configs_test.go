package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols/postgres"
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
			pg := postgres.New()
			cfg, err := config.Parse(y, func(string) (string, bool) { return "", false }, pg)
			if err != nil {
				t.Fatalf("config rejected:\n%s\n%v", y, err)
			}
			if pg.Settings().Mode != want {
				t.Errorf("postgres.mode = %q, want %q", pg.Settings().Mode, want)
			}
			if pg.Settings().Pool.IdleTimeout != upstreamIdleSecs*time.Second {
				t.Errorf("postgres.pool.idle_timeout = %v, want %ds", pg.Settings().Pool.IdleTimeout, upstreamIdleSecs)
			}
			if len(cfg.Connections) != 1 || cfg.Connections[0].Name != benchConnection || cfg.Connections[0].DecodedUpstream().(*postgres.Upstream).TLS.Mode != "disable" {
				t.Errorf("connection = %+v", cfg.Connections)
			}
			if cfg.Listen["postgres"] != "127.0.0.1:15432" || cfg.Listen["admin"] != "127.0.0.1:19090" {
				t.Errorf("listen = %+v: Airlock must listen on loopback only", cfg.Listen)
			}
		})
	}
}

// testFull is the full configuration with every probed section's richest
// shape (the top-level policy once).
func testFull() airlockConfig {
	c := withMode(testConfig(), modeInspect)
	c.Mode, c.PGMode = modeFull, ""
	c.Data = probeData{RecordingDir: "/tmp/x/recordings/airlock-full", KeyEnv: recordingKeyEnv}
	seen := map[string]bool{}
	for _, p := range fullSections {
		if seen[p.Name] {
			continue // the first accepted placement wins, as in probeFull
		}
		seen[p.Name] = true
		c = c.with(section{Name: p.Name, Level: p.Level, Shape: p.Shapes[0]})
	}
	return c
}

// loaded renders c and loads it with the real configuration loader.
func loaded(t *testing.T, c airlockConfig) (*loadedConfig, []byte) {
	t.Helper()
	t.Setenv(recordingKeyEnv, strings.Repeat("k", 64))
	y, err := c.render()
	if err != nil {
		t.Fatal(err)
	}
	pg := postgres.New()
	cfg, err := config.Parse(y, func(string) (string, bool) { return "", false }, pg)
	if err != nil {
		t.Fatalf("config rejected:\n%s\n%v", y, err)
	}
	return &loadedConfig{Config: cfg, Postgres: pg.Settings()}, y
}

// loadedConfig is a configuration as the gateway reads it, with the
// PostgreSQL engine's section.
type loadedConfig struct {
	*config.Config
	Postgres postgres.Settings
}

// TestSectionsPlacement checks that probed sections land where they belong.
func TestSectionsPlacement(t *testing.T) {
	c := testFull().with(section{Name: "policy", Level: connLevel, Shape: "policy: {}"})
	y, err := c.render()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Recording   map[string]any   `yaml:"recording"`
		Classifier  map[string]any   `yaml:"classifier"`
		Policy      map[string]any   `yaml:"policy"`
		Connections []map[string]any `yaml:"connections"`
	}
	if err := yaml.Unmarshal(y, &doc); err != nil {
		t.Fatalf("rendered YAML does not parse:\n%s\n%v", y, err)
	}
	if doc.Recording["dir"] != "/tmp/x/recordings/airlock-full" || doc.Recording["hmac_key_env"] != recordingKeyEnv {
		t.Errorf("recording = %v", doc.Recording)
	}
	if doc.Policy == nil || doc.Classifier == nil {
		t.Errorf("top-level policy or classifier missing:\n%s", y)
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

// TestFullAndAblationsLoad loads the full configuration and each ablation
// with the real loader and checks that an ablation differs from full in
// its one feature only.
func TestFullAndAblationsLoad(t *testing.T) {
	full := testFull()
	fc, _ := loaded(t, full)
	if fc.Postgres.Mode != "inspect" || fc.Recording.Disabled || fc.Recording.HMACKeyEnv != recordingKeyEnv {
		t.Fatalf("full: mode %q, recording %+v", fc.Postgres.Mode, fc.Recording)
	}
	if len(fc.ConnectionMasking(&fc.Connections[0]).Detect) != 2 {
		t.Fatalf("full masks %+v", fc.ConnectionMasking(&fc.Connections[0]))
	}
	tests := []struct {
		target string
		check  func(t *testing.T, c *loadedConfig)
	}{
		{targetNoMask, func(t *testing.T, c *loadedConfig) {
			if m := c.ConnectionMasking(&c.Connections[0]); len(m.Detect) != 0 || len(m.Columns) != 0 {
				t.Errorf("nomask still masks: %+v", m)
			}
			if c.Recording.Disabled || c.Recording.Dir != "/tmp/x/recordings/airlock-full" || c.Recording.HMACKeyEnv != recordingKeyEnv {
				t.Errorf("nomask must record as full does: %+v", c.Recording)
			}
		}},
		{targetNoRec, func(t *testing.T, c *loadedConfig) {
			if !c.Recording.Disabled || c.Recording.HMACKeyEnv != "" {
				t.Errorf("norec recording = %+v, want disabled", c.Recording)
			}
			if m := c.ConnectionMasking(&c.Connections[0]); len(m.Detect) != 2 {
				t.Errorf("norec must mask as full does: %+v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			a, ok := ablationFor(tc.target)
			if !ok {
				t.Fatalf("no ablation for %s", tc.target)
			}
			c, err := a.derive(full)
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := describeTarget(tc.target); c.Mode != targetModes[tc.target] || !ok || d == "" {
				t.Errorf("mode %q of %s has no description", c.Mode, tc.target)
			}
			ac, y := loaded(t, c)
			if ac.Postgres.Mode != "inspect" || ac.Classifier != fc.Classifier || len(ac.Connections) != 1 {
				t.Errorf("ablation changed more than its feature:\n%s", y)
			}
			tc.check(t, ac)
			if len(full.Sections) != 4 {
				t.Errorf("derive changed full's sections: %v", full.Sections)
			}
		})
	}
}

func TestAblationNeedsTheSection(t *testing.T) {
	full, _ := testFull().without("masking")
	a, _ := ablationFor(targetNoMask)
	if _, err := a.derive(full); !errors.Is(err, errNotInFull) {
		t.Fatalf("deriving nomask from a full without masking: %v, want errNotInFull", err)
	}
}

// TestEveryAirlockTargetIsDescribed keeps the report's targets table whole.
func TestEveryAirlockTargetIsDescribed(t *testing.T) {
	for _, name := range allTargets {
		if name == targetDirect || name == targetPgbouncer {
			continue
		}
		if d, ok := describeTarget(name); !ok || d == "" {
			t.Errorf("target %s has no description", name)
		}
	}
}

func TestWithDoesNotShareSections(t *testing.T) {
	base := testConfig().with(section{Name: "a", Shape: "a: 1"})
	x := base.with(section{Name: "b", Shape: "b: 2"})
	y := base.with(section{Name: "c", Shape: "c: 3"})
	if len(x.Sections) != 2 || x.Sections[1].Name != "b" || y.Sections[1].Name != "c" {
		t.Fatalf("with must copy: %v %v", x.Sections, y.Sections)
	}
	z, ok := x.without("a")
	if !ok || len(z.Sections) != 1 || len(x.Sections) != 2 {
		t.Fatalf("without must copy: %v %v", z.Sections, x.Sections)
	}
	if _, ok := x.without("nope"); ok {
		t.Fatal("without reports a section that is not there")
	}
}

func TestPgbouncerConfig(t *testing.T) {
	ini, err := pgbouncerConfig{DB: "airlock_bench", PGHost: "127.0.0.1", PGPort: 5432, Port: 16432, Dir: "/tmp/p", PoolSize: 32, MaxClients: 200}.render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"airlock_bench = host=127.0.0.1 port=5432 dbname=airlock_bench user=postgres\n",
		"airlock_bench_tx = host=127.0.0.1 port=5432 dbname=airlock_bench user=postgres pool_mode=transaction",
		"listen_addr = 127.0.0.1\n", "listen_port = 16432\n", "pool_mode = session\n",
		"default_pool_size = 32\n", "max_client_conn = 200\n", "auth_file = /tmp/p/userlist.txt\n",
		"server_tls_sslmode = disable\n", "unix_socket_dir =\n", "server_idle_timeout = 5\n",
	} {
		if !strings.Contains(string(ini), want) {
			t.Errorf("pgbouncer.ini lacks %q:\n%s", want, ini)
		}
	}
}

func TestPgbouncerConfigSocket(t *testing.T) {
	ini, err := pgbouncerConfig{DB: "airlock_bench", PGHost: "/var/run/postgresql", PGPort: 5432, Port: 16432, Dir: "/tmp/p", PoolSize: 32, MaxClients: 200}.render()
	if err != nil {
		t.Fatal(err)
	}
	if want := "airlock_bench = host=/var/run/postgresql port=5432 dbname=airlock_bench user=postgres\n"; !strings.Contains(string(ini), want) {
		t.Errorf("pgbouncer.ini lacks %q:\n%s", want, ini)
	}
}

func TestUpstreamChoice(t *testing.T) {
	b := &bench{opt: options{pgAddr: "127.0.0.1:5432"}}
	if b.upstreamAddr() != "127.0.0.1:5432" || b.upstreamHost() != "127.0.0.1" || !strings.Contains(b.upstreamDesc(), "over TCP at 127.0.0.1:5432") {
		t.Errorf("tcp: %q %q %q", b.upstreamAddr(), b.upstreamHost(), b.upstreamDesc())
	}
	b.opt.socketDir = "/var/run/postgresql"
	if b.upstreamAddr() != "/var/run/postgresql/.s.PGSQL.5432" || b.upstreamHost() != "/var/run/postgresql" || !strings.Contains(b.upstreamDesc(), "Unix-domain socket in /var/run/postgresql") {
		t.Errorf("socket: %q %q %q", b.upstreamAddr(), b.upstreamHost(), b.upstreamDesc())
	}
	if _, err := parseFlags([]string{"-upstream-socket", "run/postgresql"}, io.Discard); err == nil {
		t.Error("a relative socket directory was accepted")
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

// TestVariantConfigsLoad checks the quickstart and runtime targets'
// configurations against the real loader: each changes only what its
// description says.
func TestVariantConfigsLoad(t *testing.T) {
	// The quickstart starts from the relay's base, as the harness's does,
	// and must leave its postgres.mode.
	_, quick := quickstartSet(withMode(testConfig(), modeRelay), probeData{RecordingDir: "/tmp/x/recordings/q", KeyEnv: recordingKeyEnv, StorePath: "/tmp/x/stores/q.db"})
	cfgs := targetConfigs{base: testConfig(), full: testFull(), quick: quick}
	tests := []struct {
		target string
		mode   string
		awake  bool
		env    []string
		check  func(t *testing.T, c *loadedConfig)
	}{
		{targetQuickstart, "inspect", true, nil, func(t *testing.T, c *loadedConfig) {
			if m := c.ConnectionMasking(&c.Connections[0]); len(m.Detect) != 3 || len(m.Columns) != 2 {
				t.Errorf("quickstart masking = %+v, want airlock.yaml's three detectors and two column rules", m)
			}
			if c.Recording.Dir != "/tmp/x/recordings/q" || c.Recording.HMACKeyEnv != recordingKeyEnv || c.Approvals.Mode != "hold" {
				t.Errorf("quickstart recording %+v, approvals %+v", c.Recording, c.Approvals)
			}
		}},
		{targetQuickstartNoMask, "inspect", true, nil, func(t *testing.T, c *loadedConfig) {
			if m := c.ConnectionMasking(&c.Connections[0]); len(m.Detect) != 0 || len(m.Columns) != 0 {
				t.Errorf("quickstart-nomask still masks: %+v", m)
			}
			if c.Recording.Dir == "" {
				t.Error("quickstart-nomask must record as the quickstart does")
			}
		}},
		{targetRelayNoAwake, "relay", false, nil, nil},
		{targetRelayGMP1, "relay", false, []string{gmp1}, nil},
		{targetRelayGMP1Awake, "relay", true, []string{gmp1}, nil},
		{targetFullNoAwake, "inspect", false, nil, func(t *testing.T, c *loadedConfig) {
			if len(c.ConnectionMasking(&c.Connections[0]).Detect) != 2 || c.Recording.Disabled {
				t.Error("full-noawake must mask and record as airlock-full does")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			cfg, why := cfgs.of(tc.target)
			if why != "" {
				t.Fatal(why)
			}
			c, y := loaded(t, cfg)
			if c.Postgres.Mode != tc.mode || c.Runtime.KeepsAwake() != tc.awake || !slices.Equal(cfg.Env, tc.env) {
				t.Errorf("mode %q, keep_awake %v, env %v; want %q, %v, %v\n%s", c.Postgres.Mode, c.Runtime.KeepsAwake(), cfg.Env, tc.mode, tc.awake, tc.env, y)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
	if _, why := (targetConfigs{quickWhy: "rejected"}).of(targetQuickstartNoMask); why != "rejected" {
		t.Errorf("a quickstart the build rejects: %q", why)
	}
}
