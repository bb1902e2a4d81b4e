package main

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/httpproxy"
	"github.com/airlock-gw/airlock/protocols/mysql"
	"github.com/airlock-gw/airlock/protocols/redis"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

func TestParseSuites(t *testing.T) {
	all, err := parseSuites("")
	if err != nil || strings.Join(all, ",") != "postgres,mysql,redis,http" {
		t.Fatalf("default = %v, %v", all, err)
	}
	got, err := parseSuites(" HTTP, mysql ")
	if err != nil || strings.Join(got, ",") != "mysql,http" {
		t.Fatalf("run order and case: %v, %v", got, err)
	}
	for _, bad := range []string{"mongo", "mysql,mysql", "mysql,"} {
		if _, err := parseSuites(bad); err == nil {
			t.Errorf("parseSuites(%q) accepted", bad)
		}
	}
}

func TestParseFlagsSuites(t *testing.T) {
	o, err := parseFlags([]string{"-suites", "redis", "-redis", "127.0.0.1:6380"}, &strings.Builder{})
	if err != nil || len(o.suites) != 1 || o.suites[0] != suiteRedis || o.redisAddr != "127.0.0.1:6380" || o.redisRequests != 100000 {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = parseFlags([]string{"-quick"}, &strings.Builder{})
	if err != nil || len(o.suites) != 4 || o.redisRequests != 20000 {
		t.Fatalf("quick: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-suites", "nope"}, {"-mysql", "localhost"}, {"-redis-requests", "10"}} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

func TestParseSysbench(t *testing.T) {
	out, err := os.ReadFile("testdata/sysbench-point-select.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseSysbench(out)
	if err != nil {
		t.Fatal(err)
	}
	// 10 events at 0.100 ms, 80 at 0.200, 9 at 0.500, 1 at 3.000: the
	// 50th is in the 0.200 bucket, the 99th in the 0.500 one.
	if r.Ops != 100 || r.PerSec != 19.97 || r.P50us != 200 || r.P99us != 500 {
		t.Fatalf("%+v", r)
	}
	if _, err := parseSysbench([]byte("FATAL: Thread initialization failed!\n")); err == nil {
		t.Error("no transaction count accepted")
	}
	broken := strings.Replace(string(out), "ignored errors:                      0", "ignored errors:                      7", 1)
	if _, err := parseSysbench([]byte(broken)); err == nil || !strings.Contains(err.Error(), "ignored 7 errors") {
		t.Errorf("ignored errors: %v", err)
	}
}

func TestParseRedisCSV(t *testing.T) {
	out := []byte("WARNING: Could not fetch server CONFIG\n" +
		`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"` + "\n" +
		`"SET","24096.39","1.974","0.264","1.071","3.447","9.383","16.447"` + "\n")
	r, err := parseRedisCSV(out)
	if err != nil || r.PerSec != 24096.39 || math.Abs(r.P50us-1071) > 1e-6 || math.Abs(r.P99us-9383) > 1e-6 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"", "Error: NOAUTH\n", `"test","rps"` + "\n"} {
		if _, err := parseRedisCSV([]byte(bad)); err == nil {
			t.Errorf("parseRedisCSV(%q) accepted", bad)
		}
	}
}

func TestAggregateProto(t *testing.T) {
	nan := math.NaN()
	ws := []protoWorkload{{Key: "w", Desc: "d"}}
	targets := []*protoTarget{{name: targetDirect}, {name: protoRelay}}
	samples := []ProtoSample{
		{Workload: "w", Target: targetDirect, Round: 1, PerSec: 1000, P50us: 100, P99us: 1000, CPUus: nan},
		{Workload: "w", Target: protoRelay, Round: 1, PerSec: 800, P50us: 150, P99us: 1200, CPUus: 20},
		{Workload: "w", Target: targetDirect, Round: 2, PerSec: 2000, P50us: 100, P99us: 1000, CPUus: nan},
		{Workload: "w", Target: protoRelay, Round: 2, PerSec: 1000, P50us: 250, P99us: 3000, CPUus: 30},
		{Workload: "w", Target: protoRelay, Round: 3, Err: "refused"},
	}
	res := aggregateProto(samples, ws, targets)
	if len(res) != 1 || len(res[0].Cells) != 2 {
		t.Fatalf("%+v", res)
	}
	d, r := res[0].Cells[0], res[0].Cells[1]
	if d.VsDirect != 1 || d.Runs != 2 || !math.IsNaN(d.CPUus) {
		t.Errorf("direct = %+v", d)
	}
	// Per-round ratios 0.8 and 0.5: the median is 0.65, not 1800/3000.
	if math.Abs(r.VsDirect-0.65) > 1e-9 || r.P50Ratio != 2 || r.P99Rat != 2.1 || r.CPUus != 25 || r.Runs != 3 || r.Failed != 1 || r.Err != "refused" {
		t.Errorf("relay = %+v", r)
	}
}

// TestProtoConfigsLoad checks the protocol suites' Airlock configurations
// against the real configuration loader and the engines.
func TestProtoConfigsLoad(t *testing.T) {
	t.Setenv(recordingKeyEnv, strings.Repeat("k", 64))
	my, rd, hp := mysql.New(), redis.New(), httpproxy.New()
	for _, tc := range []struct {
		listener, mode, conn string
		full                 bool
		eng                  engine.Engine
		check                func() string
	}{
		{"mysql", "relay", "- name: m\n  protocol: mysql\n  upstream: {address: \"127.0.0.1:3306\", database: d, user: root, password: \"\"}\n  allow: [bench]", false, my,
			func() string { return my.Settings().Mode }},
		{"mysql", "", "- name: m\n  protocol: mysql\n  upstream: {address: \"127.0.0.1:3306\", database: d, user: root, password: \"\"}\n  allow: [bench]", true, my,
			func() string { return my.Settings().Mode }},
		{"redis", "decode", "- name: r\n  protocol: redis\n  upstream: {address: \"127.0.0.1:6379\", database: 9}\n  allow: [bench]", false, rd,
			func() string { return rd.Settings().Mode }},
		{"redis", "", "- name: r\n  protocol: redis\n  upstream: {address: \"127.0.0.1:6379\", database: 9}\n  allow: [bench]", true, rd,
			func() string { return rd.Settings().Mode }},
		{"http", "", "- name: api\n  protocol: http\n  upstream: {url: \"http://127.0.0.1:8080\"}\n  allow: [bench]", true, hp,
			func() string { return hp.Settings().Mode }},
		{"http", "decode", "- name: api\n  protocol: http\n  upstream: {url: \"http://127.0.0.1:8080\"}\n  allow: [bench]", false, hp,
			func() string { return hp.Settings().Mode }},
	} {
		c := protoAirlock{Name: protoFull, Listener: tc.listener, Port: 1, AdminPort: 2, Identity: benchIdentity,
			TokenHash: strings.Repeat("ab", 32), Mode: tc.mode, Connection: tc.conn}
		if tc.full {
			c.Top = []string{"recording: {dir: /tmp/x, hmac_key_env: " + recordingKeyEnv + "}", "policy: {rules: {admin.config: deny}}"}
			c.Connection += "\n  masking: {detect: [{entity: email, strategy: redact}]}"
		}
		y, err := c.render()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(y, func(string) (string, bool) { return "", false }, tc.eng)
		if err != nil {
			t.Fatalf("%s config rejected:\n%s\n%v", tc.listener, y, err)
		}
		want := tc.mode
		if want == "" {
			want = "inspect"
		}
		if got := tc.check(); got != want {
			t.Errorf("%s.mode = %q, want %q", tc.listener, got, want)
		}
		if cfg.Listen[tc.listener] != "127.0.0.1:1" || cfg.Listen["admin"] != "127.0.0.1:2" || len(cfg.Connections) != 1 {
			t.Errorf("%s: listen %v, %d connections", tc.listener, cfg.Listen, len(cfg.Connections))
		}
	}
}

func TestRelayPeerConfigs(t *testing.T) {
	h := haproxyConfig(4000, "127.0.0.1:3306", 500)
	for _, want := range []string{"mode tcp", "bind 127.0.0.1:4000", "server s1 127.0.0.1:3306", "maxconn 500"} {
		if !strings.Contains(h, want) {
			t.Errorf("haproxy config lacks %q:\n%s", want, h)
		}
	}
	n := nutcrackerConfig(4001, "127.0.0.1:6379", 9)
	for _, want := range []string{"listen: 127.0.0.1:4001", "redis: true", "redis_db: 9", "- 127.0.0.1:6379:1"} {
		if !strings.Contains(n, want) {
			t.Errorf("nutcracker config lacks %q:\n%s", want, n)
		}
	}
}

// TestHTTPLoad runs the load generator against the suite's upstream for a
// moment and checks what it counts; a target that answers with errors fails
// the run.
func TestHTTPLoad(t *testing.T) {
	srv := httptest.NewServer(httpUpstream())
	defer srv.Close()
	tgt := &protoTarget{name: targetDirect, host: "127.0.0.1", port: srv.Listener.Addr().(*net.TCPAddr).Port}
	r, err := httpLoad(context.Background(), tgt, "/items/<1..1000>", 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops < 10 || r.PerSec <= 0 || r.P50us <= 0 || r.P50us > r.P99us || r.Elapsed < 300*time.Millisecond {
		t.Fatalf("%+v", r)
	}
	tgt.db = "/nothing"
	if _, err := httpLoad(context.Background(), tgt, "/items/1", 2, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("a target answering 404: %v", err)
	}
}

func TestHTTPUpstream(t *testing.T) {
	srv := httptest.NewServer(httpUpstream())
	defer srv.Close()
	for path, want := range map[string]string{"/items/7": `"email":"owner7@example.com"`, "/items?limit=3": `"id":3`} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(b.String(), want) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b.String())
		}
	}
}

func TestRenderProto(t *testing.T) {
	nan := math.NaN()
	s := &ProtoSuite{Name: suiteRedis, Title: "Redis with redis-benchmark", Tool: "redis-benchmark 7",
		Targets: []ModeInfo{{Target: targetDirect, Description: "Redis itself"}, {Target: protoRelay, Description: "relay"}},
		Notes:   []string{"nutcracker not run: missing"},
		Results: []ProtoWorkloadResult{{Key: "get-c50", Desc: "GET", Cells: []ProtoCell{
			{Target: targetDirect, PerSec: 1000, P50us: 100, P99us: 900, VsDirect: 1, P50Ratio: 1, P99Rat: 1, CPUus: nan, Runs: 1},
			{Target: protoRelay, PerSec: 800, P50us: 150, P99us: 1200, VsDirect: 0.8, P50Ratio: 1.5, P99Rat: 1.3333, CPUus: 12.34, Runs: 2, Failed: 1, Err: "exit | 1"},
		}}}}
	down := &ProtoSuite{Name: suiteMySQL, Title: "MySQL", Err: "sysbench prepare failed"}
	rep := &Report{Date: "2026-01-01 00:00 UTC", Command: "go run ./cmd/airlock-bench -suites redis", Rounds: 1, Duration: "5s"}
	_, proto, err := renderAll(rep, []*ProtoSuite{s, down}, false)
	md := joinParts(reportParts{proto: proto})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Airlock benchmarks\n\n## MySQL, Redis and HTTP\n", "### Redis with redis-benchmark", "#### get-c50", "- nutcracker not run: missing",
		"| airlock-relay | 800 | 80% | 150 | 1.50× | 1200 | 1.33× | 12.3 | 2 (1) |",
		"| direct | 1000 | 100% | 100 | 1.00× | 900 | 1.00× | — | 1 (0) |",
		`- airlock-relay failed: exit \| 1`, "### MySQL", "**Not run: sysbench prepare failed**",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if _, proto, err := renderAll(rep, []*ProtoSuite{down}, false); err != nil || proto != nil {
		t.Errorf("no suite ran: the file's protocol section must be kept, got %q, %v", proto, err)
	}
	var sum strings.Builder
	if n := printProtoSummary(&sum, []*ProtoSuite{s, down}); n != 2 {
		t.Errorf("failed runs counted %d, want 2 (one run and one suite)", n)
	}
}

// TestMySQLConnectWorkload runs the connect-heavy load against the local
// MariaDB for a moment.
func TestMySQLConnectWorkload(t *testing.T) {
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	host, port, _ := net.SplitHostPort(testenv.MariaDBAddr)
	p, _ := strconv.Atoi(port)
	tgt := &protoTarget{name: targetDirect, host: host, port: p, user: "root"}
	r, err := mysqlConnectWorkload().run(context.Background(), tgt, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops < 1 || r.P50us <= 0 || r.P50us > r.P99us {
		t.Fatalf("%+v", r)
	}
	tgt.password = "wrong"
	if _, err := mysqlConnectWorkload().run(context.Background(), tgt, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("a refused login: %v", err)
	}
}

func TestRecordingNote(t *testing.T) {
	dir := t.TempDir()
	suite := &ProtoSuite{Samples: []ProtoSample{{Target: protoFull, Ops: 300}, {Target: protoFull, Ops: 200}, {Target: targetDirect, Ops: 900}}}
	if got := recordingNote(suite, dir); !strings.Contains(got, "no recording file") {
		t.Errorf("empty dir: %s", got)
	}
	for _, f := range []string{"a.alrec", "b.alrec"} {
		if err := os.WriteFile(dir+"/"+f, make([]byte, 1<<19), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := recordingNote(suite, dir); got != "airlock-full: 2 recording files, 1.0 MiB written during the run, for 500 operations." {
		t.Errorf("note = %q", got)
	}
}

func TestNeedTools(t *testing.T) {
	if err := needTools("go", "airlock-no-such-tool|go"); err != nil {
		t.Fatal(err)
	}
	err := needTools("go", "airlock-no-such-a|airlock-no-such-b")
	if err == nil || err.Error() != "airlock-no-such-a (or airlock-no-such-b) is not installed" {
		t.Fatalf("%v", err)
	}
}
