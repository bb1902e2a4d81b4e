package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/recording"
)

// soakParams size a soak run: SOAK_SESSIONS concurrent client sessions for
// SOAK_DURATION, each pausing SOAK_THINK between commands. The defaults
// are the short form that runs with the test suite; `make soak` sets the
// full form.
type soakParams struct {
	sessions int
	duration time.Duration
	think    time.Duration
}

func soakParamsFromEnv(t *testing.T) soakParams {
	t.Helper()
	p := soakParams{sessions: 100, duration: 10 * time.Second, think: 200 * time.Millisecond}
	if v := os.Getenv("SOAK_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("SOAK_SESSIONS=%q: want a number of at least 10", v)
		}
		p.sessions = n
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"SOAK_DURATION", &p.duration}, {"SOAK_THINK", &p.think}} {
		if v := os.Getenv(d.env); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil || dur < 0 {
				t.Fatalf("%s=%q: want a duration such as 10m", d.env, v)
			}
			*d.to = dur
		}
	}
	return p
}

// soakPlan divides the sessions among the engines. PostgreSQL (100
// connections by default) and MariaDB (151) are shared with everything else
// on the server, so their sessions are capped and the rest are Redis
// sessions, half of them busy and half idle, which Redis (10,000 clients)
// holds easily. Agent workers call the HTTP query API one request (one
// session) at a time.
type soakPlan struct {
	postgres, mysql, agent, redis, idle int
}

func planSoak(n int) soakPlan {
	p := soakPlan{postgres: min(n/10, 30), mysql: min(n/10, 40), agent: min(n/10, 40)}
	rest := n - p.postgres - p.mysql - p.agent
	p.redis = rest / 2
	p.idle = rest - p.redis
	return p
}

func (p soakPlan) String() string {
	return fmt.Sprintf("postgres %d, mysql %d, agent API %d, redis %d busy + %d idle",
		p.postgres, p.mysql, p.agent, p.redis, p.idle)
}

// soakConfig fronts PostgreSQL database pgDB, MariaDB database myDB and
// the Redis test database for the wire listeners and the agent API. Reach
// beyond the database and Redis administration are denied (the refusals);
// DELETE goes to review, held until the reviewer dev decides.
func soakConfig(pgDB, myDB string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  mysql: 127.0.0.1:0
  redis: 127.0.0.1:0
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: info
  format: text
debug:
  pprof: true
postgres:
  pool: {idle_timeout: 3s}
mysql:
  pool: {idle_timeout: 3s}
readiness:
  upstreams: false
identities:
  - name: dev
    groups: [developers]
    token_sha256: %[1]s
  - name: agent
    groups: [agents]
    token_sha256: %[2]s
policy:
  rules:
    reach.*: deny
    admin.*: deny
    write.delete: review
approvals:
  mode: hold
  timeout: 1m
  reviewers: [dev]
connections:
  - name: pg
    protocol: postgres
    upstream: {address: "%[3]s", database: %[4]s, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: [agent]
  - name: my
    protocol: mysql
    upstream: {address: "%[5]s", database: %[6]s, user: root, password: "", tls: {mode: disable}}
    allow: [agent]
  - name: rd
    protocol: redis
    upstream: {address: "%[7]s", database: %[8]d, tls: {mode: disable}}
    allow: [agent]
`, devTokenHash, identity.HashToken(agentToken), testenv.PostgresAddr, pgDB, testenv.MariaDBAddr, myDB,
		testenv.RedisAddr, testDB)
}

// procSample is what the soak watches of the Airlock process.
type procSample struct {
	goroutines int
	fds        int
	rssKiB     int
	// heapKiB is the live heap right after a collection.
	heapKiB int
}

func (s procSample) String() string {
	return fmt.Sprintf("goroutines %d, open files %d, RSS %.1f MiB, live heap %.1f MiB", s.goroutines, s.fds,
		float64(s.rssKiB)/1024, float64(s.heapKiB)/1024)
}

// sample reads the process's goroutines (from pprof on the admin
// listener), open file descriptors and resident set size.
func sample(t *testing.T, in *instance) procSample {
	t.Helper()
	pid := in.cmd.Process.Pid
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fds := 0
	for _, e := range ents {
		// The SQLite store's pool keeps up to its limit of connections
		// (and their WAL files) open, however many sessions ran.
		if target, _ := os.Readlink(filepath.Join(dir, e.Name())); !strings.Contains(target, "/data/airlock.db") {
			fds++
		}
	}
	return procSample{goroutines: goroutines(t, in), fds: fds, rssKiB: statusKiB(t, pid, "VmRSS:"),
		heapKiB: liveHeapKiB(t, in)}
}

// liveHeapKiB has the process collect its garbage (pprof's heap profile
// with gc=1) and reads go_memstats_heap_alloc_bytes: the bytes of live
// objects, which unlike the heap's spans in use do not count
// fragmentation.
func liveHeapKiB(t *testing.T, in *instance) int {
	t.Helper()
	// Twice: what sync.Pools hold survives one collection.
	for range 2 {
		resp, err := http.Get("http://" + in.admin + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, line := range strings.Split(in.metrics(t), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_memstats_heap_alloc_bytes: %q", v)
			}
			return int(f / 1024)
		}
	}
	t.Fatal("no go_memstats_heap_alloc_bytes in /metrics")
	return 0
}

// raceBuild reports whether Airlock runs with the race detector, whose
// shadow memory is never given back: RSS is then only reported.
func raceBuild() bool { return slices.Contains(buildFlags, "-race") }

// goroutines is the total of /debug/pprof/goroutine?debug=1.
func goroutines(t *testing.T, in *instance) int {
	t.Helper()
	resp, err := http.Get("http://" + in.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	var n int
	if _, serr := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil || serr != nil {
		t.Fatalf("goroutine profile: %q: %v %v", line, err, serr)
	}
	return n
}

// openFiles lists what the process's descriptors point at.
func openFiles(in *instance) string {
	dir := fmt.Sprintf("/proc/%d/fd", in.cmd.Process.Pid)
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "  %s -> %s\n", e.Name(), target)
	}
	return b.String()
}

// saveHeapProfile keeps the process's heap profile in the temporary
// directory, for `go tool pprof`, and returns its path.
func saveHeapProfile(in *instance) string {
	resp, err := http.Get("http://" + in.admin + "/debug/pprof/heap")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp("", "airlock-soak-heap-*.pb.gz")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
	return f.Name()
}

// goroutineDump is the grouped goroutine listing, for a failure message.
func goroutineDump(in *instance) string {
	resp, err := http.Get("http://" + in.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// statusKiB reads a KiB field (VmRSS:, VmHWM:) of /proc/PID/status.
func statusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			var kb int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field)), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// latencies collects command durations by engine.
type latencies struct {
	mu  sync.Mutex
	all map[string][]time.Duration
}

func (l *latencies) add(engine string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.all == nil {
		l.all = map[string][]time.Duration{}
	}
	l.all[engine] = append(l.all[engine], d)
}

// report prints p50 and p99 per engine.
func (l *latencies) report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(l.all))
	for n := range l.all {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ds := slices.Clone(l.all[n])
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		fmt.Fprintf(&b, "  %-9s %8d commands  p50 %9v  p99 %9v\n", n, len(ds),
			q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond))
	}
	return b.String()
}

// verifyRecordings verifies every recording in the instance's directory
// with the recording package (the same check as `airlock verify`), and a
// few of them with the CLI too; it returns how many there are.
func verifyRecordings(t *testing.T, in *instance) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(in.dir, "data", "recordings", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings: %v", err)
	}
	bad := 0
	for _, f := range files {
		rep, err := recording.VerifyFile(f, nil)
		if err != nil || !rep.OK() {
			if bad++; bad <= 5 {
				t.Errorf("recording %s does not verify: %v %s", filepath.Base(f), err, rep)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d recordings do not verify", bad, len(files))
	}
	for _, f := range files[:min(3, len(files))] {
		if out, code := airlockCmd(t, in, "verify", f); code != 0 {
			t.Errorf("airlock verify %s: exit %d\n%s", f, code, out)
		}
	}
	return len(files)
}
