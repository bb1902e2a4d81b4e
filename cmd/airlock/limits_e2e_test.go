package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// limitsConfig serves one connection of each protocol, each capped at two
// sessions (the HTTP one at one), and every identity at three sessions.
func limitsConfig(pgDB, myDB, api string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  mysql: 127.0.0.1:0
  redis: 127.0.0.1:0
  http: 127.0.0.1:0
  admin: 127.0.0.1:0
log:
  level: debug
identities:
  - name: dev
    groups: [developers]
    token_sha256: %[1]s
  - name: agent
    groups: [agents]
    token_sha256: %[2]s
limits:
  per_identity: 3
http:
  session_idle: 500ms
connections:
  - name: pg
    protocol: postgres
    upstream: {address: %[3]s, database: %[4]s, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: [dev, agent]
    max_sessions: 2
  - name: pg_default
    protocol: postgres
    upstream: {address: %[3]s, database: %[4]s, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: [dev]
  - name: pg_down
    protocol: postgres
    upstream: {address: "127.0.0.1:1", database: nope, user: postgres, tls: {mode: disable}}
    allow: [dev]
    max_sessions: 1
  - name: my
    protocol: mysql
    upstream: {address: %[5]s, database: %[6]s, user: root, password: "", tls: {mode: disable}}
    allow: [dev, agent]
    max_sessions: 2
  - name: my_default
    protocol: mysql
    upstream: {address: %[5]s, database: %[6]s, user: root, password: "", tls: {mode: disable}}
    allow: [dev]
  - name: kv
    protocol: redis
    upstream: {address: %[7]s, database: %[8]d}
    allow: [dev, agent]
    max_sessions: 2
  - name: api
    protocol: http
    upstream: {url: "http://%[9]s"}
    allow: [dev, agent]
    max_sessions: 1
`, devTokenHash, identity.HashToken(agentToken), testenv.PostgresAddr, pgDB, testenv.MariaDBAddr, myDB,
		testenv.RedisAddr, testDB, api)
}

// blockingAPI is an HTTP upstream whose /slow requests wait for release.
type blockingAPI struct {
	*standIn
	arrived chan struct{}
	release chan struct{}
}

func newBlockingAPI(t *testing.T) *blockingAPI {
	b := &blockingAPI{arrived: make(chan struct{}, 8), release: make(chan struct{})}
	b.standIn = serveStandIn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			b.arrived <- struct{}{}
			<-b.release
		}
		_, _ = io.WriteString(w, "ok\n")
	}))
	return b
}

// TestLimitsPerEngine fills each connection's cap and checks that the next
// client gets its protocol's own "too many connections" error, that a
// client gets in again once one has left, and that every slot is given
// back at the end.
func TestLimitsPerEngine(t *testing.T) {
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	api := newBlockingAPI(t)
	in := startAirlock(t, limitsConfig(testenv.PostgresDB(t), mariadbDatabase(t), api.addr))

	// Each part ends once every session it opened has given its slot back:
	// a client's close reaches Airlock a moment after the client returns.
	for _, part := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"postgres", func(t *testing.T) { limitsPostgres(t, in) }},
		{"mysql", func(t *testing.T) { limitsMySQL(t, in) }},
		{"redis", func(t *testing.T) { limitsRedis(t, in) }},
		{"http", func(t *testing.T) { limitsHTTP(t, in, api) }},
		{"agent", func(t *testing.T) { limitsAgent(t, in) }},
	} {
		t.Run(part.name, part.run)
		if !pollUntil(5*time.Second, func() bool {
			m := in.metrics(t)
			return activeSessions(m) == 0 && strings.Contains(m, "\nairlock_session_slots 0\n")
		}) {
			t.Fatalf("sessions still hold slots after every %s client left:\n%s", part.name, grepLines(in.metrics(t), "session"))
		}
	}
	// The slots are free: the next clients fill a cap again, and /metrics
	// counted the refusals.
	a, b := pgxConnect(t, in.url("dev", devToken, "pg", "")), pgxConnect(t, in.url("agent", agentToken, "pg", ""))
	a.Close(context.Background())
	b.Close(context.Background())
	m := in.metrics(t)
	for _, series := range []string{
		`airlock_connections_total{connection="pg",outcome="limited",protocol="postgres"}`,
		`airlock_sessions_limited_total{limit="connection",protocol="postgres"}`,
		`airlock_sessions_limited_total{limit="connection",protocol="mysql"}`,
		`airlock_sessions_limited_total{limit="identity",protocol="mysql"}`,
		`airlock_sessions_limited_total{limit="connection",protocol="redis"}`,
		`airlock_sessions_limited_total{limit="connection",protocol="http"}`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` [1-9]`).MatchString(m) {
			t.Errorf("/metrics did not count %s:\n%s", series, grepLines(m, "limited"))
		}
	}
}

func limitsPostgres(t *testing.T, in *instance) {
	ctx := context.Background()
	first := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	second := pgxConnect(t, in.url("agent", agentToken, "pg", ""))
	_, err := pgxConnectErr(in.url("dev", devToken, "pg", ""))
	var pge *pgconn.PgError
	if !errors.As(err, &pge) || pge.Code != "53300" || pge.Message != `too many connections for database "pg"` {
		t.Fatalf("third client: %v, want 53300 too many connections for database", err)
	}
	// The DBA still logs in directly, as the superuser, while Airlock's
	// clients are at their cap.
	dba, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", testenv.PostgresAddr))
	if err != nil {
		t.Fatalf("the DBA could not log in while Airlock is at its cap: %v", err)
	}
	var super bool
	if err := dba.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Fatalf("the DBA's session is not a superuser's: %v %v", super, err)
	}
	// A connection without max_sessions reads the server's slots for
	// ordinary clients at its first login and caps itself below them.
	var slots int
	if err := dba.QueryRow(ctx, serverSlotsSQL).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	pgxConnect(t, in.url("dev", devToken, "pg_default", "")).Close(ctx)
	want := fmt.Sprintf(`msg="session cap from the upstream's connection slots" protocol=postgres connection=pg_default slots=%d cap=%d`,
		slots, min(slots-16, 64))
	if !pollUntil(5*time.Second, func() bool { return strings.Contains(in.Logs(), want) }) {
		t.Errorf("the log lacks %s:\n%s", want, grepLines(in.Logs(), "session cap"))
	}
	dba.Close(ctx)
	first.Close(ctx)
	// The slot is given back once Airlock has seen the client leave.
	if !pollUntil(5*time.Second, func() bool {
		_, err := pgxConnectErr(in.url("dev", devToken, "pg", ""))
		return err == nil
	}) {
		t.Fatal("no client got in after one left")
	}
	second.Close(ctx)
	// A session whose upstream cannot be reached gives its slot back: the
	// next client of a connection capped at one gets the same upstream
	// error, not 53300.
	for i := range 3 {
		_, err := pgxConnectErr(in.url("dev", devToken, "pg_down", ""))
		if !errors.As(err, &pge) || pge.Code == "53300" {
			t.Fatalf("client %d of a connection whose upstream is down: %v", i, err)
		}
	}
}

func limitsMySQL(t *testing.T, in *instance) {
	ctx := context.Background()
	connect := func(user, token string, conn ...string) (driver.Conn, error) {
		cfg := mysqldriver.NewConfig()
		cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", in.addr("mysql"), user, token, "my"
		if len(conn) > 0 {
			cfg.DBName = conn[0]
		}
		cfg.Timeout = 10 * time.Second
		c, err := mysqldriver.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c.Connect(ctx)
	}
	must := func(c driver.Conn, err error) driver.Conn {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := must(connect("dev", devToken)), must(connect("agent", agentToken))
	_, err := connect("dev", devToken)
	if code := myCode(err); code != 1040 || !strings.Contains(err.Error(), "08004") {
		t.Fatalf("third client: %v, want ERROR 1040 (08004)", err)
	}
	// dev at its own cap of three: the identity's limit, 1203 (42000).
	p1 := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	p2 := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	_, err = connect("dev", devToken)
	if code := myCode(err); code != 1203 || !strings.Contains(err.Error(), "42000") {
		t.Fatalf("dev past its cap: %v, want ERROR 1203 (42000)", err)
	}
	p1.Close(ctx)
	p2.Close(ctx)
	// A connection without max_sessions reads the server's max_connections
	// at its first login and caps itself one below, less the pool's idle sessions.
	var slots int
	if err := mariadbAdmin(t, "").QueryRow("SELECT @@max_connections").Scan(&slots); err != nil {
		t.Fatal(err)
	}
	c, err := connect("dev", devToken, "my_default")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := fmt.Sprintf(`msg="session cap from the upstream's connection slots" protocol=mysql connection=my_default slots=%d cap=%d`,
		slots, min(slots-1-16, 64))
	if !pollUntil(5*time.Second, func() bool { return strings.Contains(in.Logs(), want) }) {
		t.Errorf("the log lacks %s:\n%s", want, grepLines(in.Logs(), "session cap"))
	}
	a.Close()
	if !pollUntil(5*time.Second, func() bool {
		c, err := connect("dev", devToken)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("no client got in after one left")
	}
	b.Close()
}

func limitsRedis(t *testing.T, in *instance) {
	auth := func(user, token string) (*redisConn, string) {
		c := dialRaw(t, in.addr("redis"))
		c.send("AUTH", user+"@kv", token)
		return c, c.read()
	}
	a, r1 := auth("dev", devToken)
	b, r2 := auth("agent", agentToken)
	if r1 != "+OK" || r2 != "+OK" {
		t.Fatalf("AUTH: %s %s", r1, r2)
	}
	// Proving the identity again inside a session takes no slot.
	if r := b.do("AUTH", "agent@kv", agentToken); r != "+OK" {
		t.Fatalf("AUTH again at the cap: %s", r)
	}
	c, r3 := auth("dev", devToken)
	if r3 != "-ERR max number of clients reached" {
		t.Fatalf("third client: %s", r3)
	}
	c.expectClosed()
	a.conn.Close()
	if !pollUntil(5*time.Second, func() bool {
		d, r := auth("dev", devToken)
		d.conn.Close()
		return r == "+OK"
	}) {
		t.Fatal("no client got in after one left")
	}
	b.conn.Close()
}

func limitsHTTP(t *testing.T, in *instance, api *blockingAPI) {
	base := "http://" + in.addr("http")
	get := func(path, token string) *http.Response {
		req, _ := http.NewRequest("GET", base+"/proxy/api"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp := get("/slow", devToken)
		resp.Body.Close()
	}()
	<-api.arrived
	resp := get("/fast", agentToken)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(resp.Header.Get("Content-Type"), "problem+json") || !strings.Contains(string(body), "too-many-sessions") {
		t.Fatalf("second request at the cap: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	close(api.release)
	wg.Wait()
	// The first request's session is kept idle; it gives its slot up to a
	// caller of another identity.
	if !pollUntil(5*time.Second, func() bool {
		resp := get("/fast", agentToken)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatal("no request got in after the first one ended")
	}
}

// limitsAgent checks the agent query API's answers: 503 when the
// connection is at its cap, 429 when the caller's identity is at its own.
func limitsAgent(t *testing.T, in *instance) {
	a := &agentInstance{instance: in, base: "http://" + in.addr("http")}
	p1 := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	p2 := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	r := a.do(t, queryCall("pg", "SELECT 1"))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "too-many-sessions") {
		t.Fatalf("query at the connection's cap: %d %v %s", r.status, r.header, r.body)
	}
	cs := a.mcpConnect(t, agentToken, "2025-11-25", nil)
	res, _ := callTool(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT 1"})
	if text := resultText(res); !res.IsError || !strings.Contains(text, "connection limit of 2 sessions is reached") {
		t.Fatalf("MCP query at the connection's cap: error %v: %s", res.IsError, text)
	}
	_ = cs.Close()
	kv := dialRaw(t, in.addr("redis"))
	if got := kv.do("AUTH", "dev@kv", devToken); got != "+OK" {
		t.Fatalf("AUTH: %s", got)
	}
	c := queryCall("my", "SELECT 1")
	c.token = devToken
	r = a.do(t, c)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "too-many-sessions-for-identity") {
		t.Fatalf("query past the identity's cap: %d %v %s", r.status, r.header, r.body)
	}
	kv.conn.Close()
	p1.Close(context.Background())
	p2.Close(context.Background())
	if !pollUntil(5*time.Second, func() bool { return a.do(t, queryCall("pg", "SELECT 1")).status == http.StatusOK }) {
		t.Fatal("no query got in after the sessions left")
	}
}

// serverSlotsSQL reads the connection slots PostgreSQL leaves to clients
// that are not superusers.
const serverSlotsSQL = `SELECT current_setting('max_connections')::int
	- current_setting('superuser_reserved_connections')::int
	- coalesce(current_setting('reserved_connections', true)::int, 0)`

var activeRE = regexp.MustCompile(`(?m)^airlock_active_sessions\{[^}]*\} (\S+)$`)

// activeSessions sums airlock_active_sessions over its series.
func activeSessions(metrics string) int {
	n := 0
	for _, m := range activeRE.FindAllStringSubmatch(metrics, -1) {
		var v int
		fmt.Sscan(m[1], &v)
		n += v
	}
	return n
}
