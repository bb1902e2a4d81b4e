package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// buildFlags are the flags the test binary of Airlock is built with; the
// race build adds -race so the subprocess is checked too.
var buildFlags []string

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// airlockBin builds the airlock binary once per test run.
func airlockBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airlock-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "airlock")
		args := append([]string{"build", "-o", binPath}, buildFlags...)
		args = append(args, ".")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// instance is a running Airlock process.
type instance struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	pgAddr  string
	admin   string
	addrs   map[string]string // listener name -> bound address
	logMu   sync.Mutex
	logs    bytes.Buffer
	waitErr chan error
	stopped sync.Once
}

const devToken = "dev-token"
const devTokenHash = "c91cbbedf8c712e8e2b7517ddeca8fe4fde839ebd8339e0b2001363002b37712"

// baseConfig is a configuration in front of database db; extra is appended
// at the top level and conns inside the connection entry.
func baseConfig(db, extra, conn string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  admin: 127.0.0.1:0
log:
  level: debug
  format: text
identities:
  - name: dev
    groups: [developers]
    token_sha256: %s
  - name: agent
    groups: [agents]
    token_sha256: %s
connections:
  - name: main
    protocol: postgres
    upstream:
      address: %s
      database: %s
      user: postgres
      password: ${TEST_UPSTREAM_PASSWORD}
      tls: {mode: disable}
    allow: [dev, agent]
%s
%s
`, devTokenHash, identity.HashToken("agent-token"), testenv.PostgresAddr, db, conn, extra)
}

const upstreamSecret = "upstream-Secret-9f81c2"

var listeningRE = regexp.MustCompile(`msg=listening listener=(\w+) addr=([0-9.:]+)`)

// startAirlock runs the binary on cfg and waits until it listens.
func startAirlock(t *testing.T, cfg string, env ...string) *instance {
	t.Helper()
	bin := airlockBin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, dir: dir, waitErr: make(chan error, 1), addrs: map[string]string{}}
	want := openedListeners(t, cfg)
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TEST_UPSTREAM_PASSWORD="+upstreamSecret)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.cmd = cmd
	addrs := make(chan [2]string, 4)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			in.logMu.Lock()
			in.logs.WriteString(line + "\n")
			in.logMu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				addrs <- [2]string{m[1], m[2]}
			}
		}
	}()
	go func() { in.waitErr <- cmd.Wait() }()
	t.Cleanup(in.stop)
	deadline := time.After(60 * time.Second)
	for len(want) > 0 {
		select {
		case a := <-addrs:
			in.addrs[a[0]] = a[1]
			delete(want, a[0])
			if a[0] == "postgres" {
				in.pgAddr = a[1]
			} else if a[0] == "admin" {
				in.admin = a[1]
			}
		case err := <-in.waitErr:
			t.Fatalf("airlock exited: %v\n%s", err, in.Logs())
		case <-deadline:
			t.Fatalf("airlock did not start\n%s", in.Logs())
		}
	}
	return in
}

// openedListeners are the listeners a configuration opens: admin and http
// when set, and each protocol's listener when a connection uses that
// protocol (postgres when a connection names none).
func openedListeners(t *testing.T, cfg string) map[string]bool {
	t.Helper()
	var c struct {
		Listen      map[string]string `yaml:"listen"`
		Connections []struct {
			Protocol string `yaml:"protocol"`
		} `yaml:"connections"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatalf("test config: %v", err)
	}
	used := map[string]bool{"admin": true, "http": true}
	for _, cn := range c.Connections {
		used[cmp.Or(cn.Protocol, "postgres")] = true
	}
	want := map[string]bool{}
	for name, addr := range c.Listen {
		if addr != "" && used[name] {
			want[name] = true
		}
	}
	return want
}

// addr is the bound address of a listener ("postgres", "redis", "admin").
func (in *instance) addr(name string) string { return in.addrs[name] }

func (in *instance) stop() { in.stopped.Do(in.doStop) }

func (in *instance) doStop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 3*time.Second {
			in.t.Logf("airlock took %v to stop", d)
		}
	}()
	select {
	case <-in.waitErr:
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		in.t.Errorf("airlock did not stop on SIGTERM\n%s", in.Logs())
	}
	if strings.Contains(in.Logs(), "DATA RACE") {
		in.t.Errorf("the race detector fired in airlock:\n%s", in.Logs())
	}
}

// Logs returns everything the process logged so far.
func (in *instance) Logs() string {
	in.logMu.Lock()
	defer in.logMu.Unlock()
	return in.logs.String()
}

// dsn is a libpq connection string through Airlock.
func (in *instance) dsn(user, token, conn, extra string) string {
	host, port, _ := net.SplitHostPort(in.pgAddr)
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s %s", host, port, user, token, conn, extra)
}

func (in *instance) url(user, token, conn, query string) string {
	u := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, token, in.pgAddr, conn)
	if query != "" {
		u += "&" + query
	}
	return u
}

// metrics fetches /metrics from the admin listener.
func (in *instance) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// peakRSS reads the process's high-water resident set size in KiB.
func (in *instance) peakRSS(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// psql runs the real psql binary through Airlock with the given arguments.
func psql(t *testing.T, dsn string, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"-X", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", dsn}, args...)
	cmd := exec.CommandContext(ctx, "psql", all...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func needPsql(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("psql"); err != nil {
		if testenv.InCI() {
			t.Fatal("psql is not installed")
		}
		t.Skip("psql is not installed")
	}
}
