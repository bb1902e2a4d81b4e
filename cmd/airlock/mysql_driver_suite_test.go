package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// driverSuiteModule is the driver whose own tests TestMySQLDriverSuite
// runs, at the version go.mod requires.
const driverSuiteModule = "github.com/go-sql-driver/mysql"

// driverSuiteSkipped are the driver's tests left out of both runs, with
// the reason.
var driverSuiteSkipped = map[string]string{
	"TestConnectorReturnsTimeout": "it needs no server: it dials 1.1.1.1:1234 expecting a timeout, and where " +
		"a proxy accepts every outbound connection the dial succeeds and the test dereferences a nil logger, " +
		"a panic that ends the whole run",
}

// driverSuiteDifference is what a test that passes directly may do
// through Airlock instead, and why.
type driverSuiteDifference struct {
	outcome string // "skip" or "fail"
	output  string // a line of the test's output that shows the difference
	reason  string
}

// cancelKilled explains the tests that cancel a running INSERT and count
// its rows afterwards.
const cancelKilled = "Airlock kills a command upstream when its client goes away (a cancelled context), " +
	"where the server alone runs it to its end: the cancelled INSERT leaves no row, and the test, whose " +
	"TODO says it should not, skips with a warning"

// driverSuiteExceptions are the tests that may pass directly and not
// through Airlock; a name covers its subtests. No test of this version
// checks the upstream's user name (the suite's user appears only in its
// DSNs), the one difference the issue expects; the others are behaviours
// docs/mysql.md describes.
var driverSuiteExceptions = map[string]driverSuiteDifference{
	"TestContextCancelExec/default":      {"skip", "expected val to be 1, got 0", cancelKilled},
	"TestContextCancelQuery/default":     {"skip", "expected val to be 1, got 0", cancelKilled},
	"TestContextCancelStmtExec/default":  {"skip", "expected val to be 1, got 0", cancelKilled},
	"TestContextCancelStmtQuery/default": {"skip", "expected val to be 1, got 0", cancelKilled},
}

// TestMySQLDriverSuite runs go-sql-driver/mysql's own test suite twice,
// directly on a database of the local MariaDB and through Airlock in
// front of that same database, and expects every test that passes
// directly to pass through Airlock, except driverSuiteExceptions. The
// connection is named after the database, so that the suite's DATABASE()
// checks hold on both runs; its policy allows every risk and the file
// reads of LOAD DATA LOCAL, masking is off and every row is recorded.
//
// The two runs take half a minute to a minute and a half on two cores,
// two to three minutes with -race, so the test runs only when
// AIRLOCK_DRIVER_SUITE is set: make driver-suite.
func TestMySQLDriverSuite(t *testing.T) {
	if os.Getenv("AIRLOCK_DRIVER_SUITE") == "" {
		t.Skip("the driver's own suite runs with AIRLOCK_DRIVER_SUITE=1 (make driver-suite)")
	}
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	dir, bin := buildDriverSuite(t)
	db := mariadbDatabase(t)

	start := time.Now()
	direct := runDriverSuite(t, dir, bin, driverSuiteEnv{user: "root", addr: testenv.MariaDBAddr, database: db})
	t.Logf("direct: %v, %s", time.Since(start).Round(time.Millisecond), direct.summary())
	if direct.outcome["TestCRUD"] != "pass" {
		t.Fatalf("the driver's TestCRUD did not pass directly: the direct run is broken\n%s%s",
			direct.outputOf(""), direct.outputOf("TestCRUD"))
	}

	m := startDriverSuiteAirlock(t, db)
	start = time.Now()
	through := runDriverSuite(t, dir, bin, driverSuiteEnv{user: "dev", pass: devToken, addr: m.addr, database: db})
	t.Logf("through Airlock: %v, %s", time.Since(start).Round(time.Millisecond), through.summary())

	for _, name := range direct.names() {
		if direct.outcome[name] != "pass" || through.outcome[name] == "pass" {
			continue
		}
		got, ran := through.outcome[name]
		switch diff, ok := driverSuiteException(name); {
		case !ran:
			t.Errorf("%s passed directly and has no result through Airlock: the run ended before it\n%s", name, through.outputOf(""))
		case ok && got == diff.outcome && strings.Contains(through.outputOf(name), diff.output):
			t.Logf("%s: %s through Airlock, as expected: %s", name, got, diff.reason)
		default:
			t.Errorf("%s passed directly and is %s through Airlock:\n%s", name, got, through.outputOf(name))
		}
	}
	for _, name := range through.names() {
		if through.outcome[name] == "pass" && direct.outcome[name] != "pass" {
			t.Logf("%s passes through Airlock only (%s directly)", name, cmp.Or(direct.outcome[name], "not run"))
		}
	}
	m.stop()
	logs := m.Logs()
	if errs := grepLines(logs, "level=ERROR"); errs != "" {
		t.Errorf("Airlock logged errors:\n%s", errs)
	}
	t.Logf("sessions ended: %s", endReasons(logs))
	if t.Failed() {
		t.Logf("Airlock's log:\n%s", lastLines(logs, 200))
	}
	verifyLargestRecordings(t, m, 3)
}

var endReasonRE = regexp.MustCompile(`msg="session ended" .*reason="([^"]*)"`)

// endReasons counts the sessions in logs by the reason they ended.
func endReasons(logs string) string {
	counts := map[string]int{}
	for _, m := range endReasonRE.FindAllStringSubmatch(logs, -1) {
		counts[m[1]]++
	}
	var out []string
	for reason, n := range counts {
		out = append(out, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// driverSuiteException returns the difference allowed for name or a test
// it is a subtest of.
func driverSuiteException(name string) (driverSuiteDifference, bool) {
	for {
		if diff, ok := driverSuiteExceptions[name]; ok {
			return diff, true
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return driverSuiteDifference{}, false
		}
		name = name[:i]
	}
}

// verifyLargestRecordings checks that the sessions were recorded, and that
// the n largest recordings (LOAD DATA, long data, many rows) verify.
func verifyLargestRecordings(t *testing.T, m *mysqlInstance, n int) {
	t.Helper()
	files := recordings(t, m.instance)
	if len(files) == 0 {
		t.Fatal("the driver's sessions left no recording")
	}
	size := func(f string) int64 {
		fi, err := os.Stat(f)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	slices.SortFunc(files, func(a, b string) int { return cmp.Compare(size(b), size(a)) })
	for _, f := range files[:min(n, len(files))] {
		if out, code := airlockCmd(t, m.instance, "verify", f); code != 0 || !strings.Contains(out, "intact") {
			t.Errorf("verify %s (exit %d): %s", filepath.Base(f), code, out)
		}
	}
}

// buildDriverSuite copies the driver's module from the module cache, where
// it is read-only, into a temporary directory and compiles its tests once.
// It returns the directory (the tests' working directory) and the test
// binary.
func buildDriverSuite(t *testing.T) (string, string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", driverSuiteModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", driverSuiteModule, err)
	}
	src := strings.TrimSpace(string(out))
	if src == "" {
		t.Fatalf("%s is not in the module cache: run go mod download", driverSuiteModule)
	}
	dir := filepath.Join(t.TempDir(), "driver")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	bin := filepath.Join(t.TempDir(), "driver.test")
	cmd := exec.Command("go", "test", "-c", "-o", bin, ".")
	cmd.Dir = dir
	// Offline: the driver's dependencies are Airlock's too, so the module
	// cache has them.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c in %s: %v\n%s", dir, err, out)
	}
	return dir, bin
}

// driverSuiteEnv is where a run of the suite connects: the MYSQL_TEST_*
// variables its tests read.
type driverSuiteEnv struct {
	user, pass, addr, database string
}

func (e driverSuiteEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MYSQL_TEST_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"MYSQL_TEST_USER="+e.user,
		"MYSQL_TEST_PASS="+e.pass,
		"MYSQL_TEST_PROT=tcp",
		"MYSQL_TEST_ADDR="+e.addr,
		"MYSQL_TEST_DBNAME="+e.database,
		"MYSQL_TEST_CONCURRENT=1",
	)
}

// driverSuiteRun is one run's outcome per test ("pass", "fail", "skip")
// and each test's output.
type driverSuiteRun struct {
	outcome map[string]string
	output  map[string]*strings.Builder
}

// runDriverSuite runs the compiled suite once with env and reads its
// test2json events. The suite's own exit status is not looked at: the
// outcomes are what the caller compares.
func runDriverSuite(t *testing.T, dir, bin string, env driverSuiteEnv) *driverSuiteRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var skip []string
	for name := range driverSuiteSkipped {
		skip = append(skip, "^"+name+"$")
	}
	sort.Strings(skip)
	cmd := exec.CommandContext(ctx, "go", "tool", "test2json", "-t", bin,
		"-test.v=test2json", "-test.count=1", "-test.timeout=5m", "-test.skip="+strings.Join(skip, "|"))
	cmd.Dir = dir
	cmd.Env = env.environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("the driver's suite did not finish: %v\n%s", ctx.Err(), stderr.String())
	}
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("run the driver's suite: %v", err)
	}
	run := &driverSuiteRun{outcome: map[string]string{}, output: map[string]*strings.Builder{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Action, Test, Output string
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("test2json: %v: %q", err, sc.Text())
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			if ev.Test != "" {
				run.outcome[ev.Test] = ev.Action
			}
		case "output":
			b := run.output[ev.Test]
			if b == nil {
				b = &strings.Builder{}
				run.output[ev.Test] = b
			}
			b.WriteString(ev.Output)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("test2json: %v", err)
	}
	return run
}

func (r *driverSuiteRun) names() []string {
	names := make([]string, 0, len(r.outcome))
	for name := range r.outcome {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (r *driverSuiteRun) count(outcome string) int {
	n := 0
	for _, o := range r.outcome {
		if o == outcome {
			n++
		}
	}
	return n
}

func (r *driverSuiteRun) summary() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", r.count("pass"), r.count("fail"), r.count("skip"))
}

// outputOf is a test's output; "" names the output outside any test.
func (r *driverSuiteRun) outputOf(name string) string {
	if b := r.output[name]; b != nil {
		return b.String()
	}
	return ""
}

// startDriverSuiteAirlock runs Airlock with a MySQL connection named
// database, on that database of the local MariaDB, that holds nothing for
// approval: every risk is allowed, and LOAD DATA LOCAL's reach.file.
func startDriverSuiteAirlock(t *testing.T, database string) *mysqlInstance {
	t.Helper()
	conn := fmt.Sprintf(`
  - name: %s
    protocol: mysql
    upstream:
      address: %s
      database: %s
      user: root
      password: ""
      tls: {mode: prefer}
    allow: [dev]
    policy:
      risks: {low: allow, medium: allow, high: allow}
      rules: {reach.file: allow}
`, database, testenv.MariaDBAddr, database)
	cfg := baseConfig("postgres", "recording:\n  rows: all\n  parameters: true\n", conn)
	cfg = strings.Replace(cfg, "listen:\n  postgres: 127.0.0.1:0\n", "listen:\n  postgres: 127.0.0.1:0\n  mysql: 127.0.0.1:0\n", 1)
	// A thousand sessions: their starts and ends are enough to read.
	cfg = strings.Replace(cfg, "  level: debug\n", "  level: info\n", 1)
	in := startAirlock(t, cfg)
	m := &mysqlInstance{instance: in, addr: in.addr("mysql"), db: database}
	if m.addr == "" {
		t.Fatalf("no MySQL listener\n%s", in.Logs())
	}
	return m
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
