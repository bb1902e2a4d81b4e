package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// The lifecycle and fault tests drive the real binary through signals,
// reloads and failing stand-ins for its upstreams (a proxy they can cut or
// stall, servers that answer with a chosen refusal), in front of the
// machine's real servers, which they never restart.

const opsToken = "ops-token-7c1f"

// lifeConfig is a configuration with every wire listener, the admin
// listener, the identities dev, agent and ops (a reloader), and conns (YAML
// list entries); extra is added at the top level.
func lifeConfig(extra, conns string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  mysql: 127.0.0.1:0
  redis: 127.0.0.1:0
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
  - name: ops
    groups: [ops]
    token_sha256: %s
reload:
  allow: [group:ops]
%s
connections:
%s
`, devTokenHash, identity.HashToken("agent-token"), identity.HashToken(opsToken), extra, conns)
}

// pgEntry is a PostgreSQL connection entry on addr's database db.
func pgEntry(name, addr, db string) string {
	return fmt.Sprintf(`  - name: %s
    protocol: postgres
    upstream: {address: "%s", database: %s, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: [dev, agent]
`, name, addr, db)
}

// myEntry is a MySQL connection entry on addr's database db.
func myEntry(name, addr, db, user, password string) string {
	return fmt.Sprintf(`  - name: %s
    protocol: mysql
    upstream: {address: "%s", database: %s, user: %s, password: "%s", tls: {mode: disable}}
    allow: [dev, agent]
`, name, addr, db, user, password)
}

// rdEntry is a Redis connection entry on addr.
func rdEntry(name, addr, user, password string) string {
	auth := ""
	if password != "" {
		auth = fmt.Sprintf(", user: %s, password: \"%s\"", user, password)
	}
	return fmt.Sprintf(`  - name: %s
    protocol: redis
    upstream: {address: "%s", database: %d%s, tls: {mode: disable}}
    allow: [dev, agent]
`, name, addr, testDB, auth)
}

// terminate sends SIGTERM and waits for the process to exit; it returns
// the exit code and how long the drain took.
func (in *instance) terminate(t *testing.T, within time.Duration) (code int, took time.Duration) {
	t.Helper()
	start := time.Now()
	in.signal(t, syscall.SIGTERM)
	return in.exited(t, start, within)
}

func (in *instance) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// exited waits for the process to exit, at most within after start.
func (in *instance) exited(t *testing.T, start time.Time, within time.Duration) (code int, took time.Duration) {
	t.Helper()
	in.stopped.Do(func() {}) // the cleanup finds it stopped
	select {
	case err := <-in.waitErr:
		took = time.Since(start)
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatal(err)
		}
	case <-time.After(within):
		_ = in.cmd.Process.Kill()
		t.Fatalf("airlock did not exit within %v\n%s", within, in.Logs())
	}
	if strings.Contains(in.Logs(), "DATA RACE") {
		t.Errorf("the race detector fired in airlock:\n%s", in.Logs())
	}
	return code, took
}

// waitLog waits until the log has s.
func (in *instance) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	if !pollUntil(within, func() bool { return strings.Contains(in.Logs(), s) }) {
		t.Fatalf("no %q in the log\n%s", s, in.Logs())
	}
}

// readyz asks the admin listener's /readyz, with query.
func readyz(t *testing.T, in *instance, query string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + in.admin + "/readyz" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readyReportOf is /readyz?format=json, decoded.
func readyReportOf(t *testing.T, in *instance, query string) (int, readyReport) {
	t.Helper()
	code, body := readyz(t, in, "?format=json"+query)
	var rep readyReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	return code, rep
}

// connectionCheck returns the readiness check of connection name.
func (r readyReport) connection(name string) check {
	for _, c := range r.Connections {
		if c.Name == name {
			return c
		}
	}
	return check{}
}

// rewriteConfig replaces the instance's configuration file.
func (in *instance) rewriteConfig(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(in.dir, "airlock.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// proxy is a TCP proxy in front of a real server that a test can cut
// (every connection closed, as a restarting server does) or stall (new
// connections accepted and never answered, as a hung server does).
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]bool
	stalled bool
	down    bool
	frozen  atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		stalled, down := p.stalled, p.down
		p.conns[c] = true
		p.mu.Unlock()
		switch {
		case down:
			_ = c.Close()
		case stalled:
			// Accepted, never answered: a hung server.
		default:
			go p.pipe(c)
		}
	}
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	go func() { p.pump(up, c); _ = up.Close() }()
	p.pump(c, up)
	_ = c.Close()
}

// pump copies src to dst, holding what it read while the proxy is frozen.
func (p *proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze stops every connection through the proxy from carrying data, as
// a server that hangs does, until thawed.
func (p *proxy) freeze(on bool) { p.frozen.Store(on) }

// cut closes every connection through the proxy; with down set, new ones
// are refused too, until up.
func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *proxy) stall(on bool) {
	p.mu.Lock()
	p.stalled = on
	p.mu.Unlock()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut(true)
}

// fakeServer accepts connections on a loopback port and hands each to
// serve: a stand-in for an upstream that answers with a chosen refusal.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedPort is a loopback address nothing listens on. The port stays
// bound, without listening, until the test ends: a port merely closed
// could be taken by another test's listener, or by a dial to it from an
// ephemeral port equal to its own, which TCP connects to itself (the
// client then reads its own request back as the server's answer).
func closedPort(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// recordingIDs are the session ids of the instance's recordings.
func recordingIDs(t *testing.T, in *instance) []string {
	t.Helper()
	var ids []string
	for _, f := range recordings(t, in) {
		ids = append(ids, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)))
	}
	return ids
}

// verifyAll checks that every recording of the instance verifies, and
// returns their replays, concatenated.
func verifyAll(t *testing.T, in *instance) string {
	t.Helper()
	var all strings.Builder
	ids := recordingIDs(t, in)
	if len(ids) == 0 {
		t.Fatal("no recording")
	}
	for _, id := range ids {
		if out, code := airlockCmd(t, in, "verify", id); code != 0 {
			t.Errorf("recording %s does not verify (%d):\n%s", id, code, out)
		}
		out, _ := airlockCmd(t, in, "replay", id)
		all.WriteString(out)
	}
	return all.String()
}

// pgActivity counts the upstream's sessions running a query with text.
func pgActivity(t *testing.T, text string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testenv.PostgresURL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	err = c.QueryRow(ctx,
		"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%'||$1||'%' AND pid <> pg_backend_pid()", text).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
