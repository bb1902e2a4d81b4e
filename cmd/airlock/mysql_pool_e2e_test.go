package main

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// pooledClient is one client session through Airlock: a database/sql
// connection of its own, closed (COM_QUIT) by end.
type pooledClient struct {
	t    *testing.T
	m    *mysqlInstance
	db   *sql.DB
	conn *sql.Conn
}

func (m *mysqlInstance) poolClient(t *testing.T, cfg *driver.Config) *pooledClient {
	t.Helper()
	c, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return &pooledClient{t: t, m: m, db: db, conn: conn}
}

// value runs a query and returns its single value ("NULL" for NULL).
func (c *pooledClient) value(query string) string {
	c.t.Helper()
	var v sql.NullString
	if err := c.conn.QueryRowContext(context.Background(), query).Scan(&v); err != nil {
		c.t.Fatalf("%s: %v", query, err)
	}
	if !v.Valid {
		return "NULL"
	}
	return v.String
}

func (c *pooledClient) exec(stmts ...string) {
	c.t.Helper()
	for _, s := range stmts {
		if _, err := c.conn.ExecContext(context.Background(), s); err != nil {
			c.t.Fatalf("%s: %v", s, err)
		}
	}
}

// quit closes the client's session with COM_QUIT.
func (c *pooledClient) quit() {
	_ = c.conn.Close()
	_ = c.db.Close()
}

// end quits and waits until the upstream session is kept.
func (c *pooledClient) end() {
	c.t.Helper()
	before := c.m.idleCount(c.t)
	c.quit()
	c.m.idleSessions(c.t, before+1)
}

var idleGaugeRE = regexp.MustCompile(`airlock_upstream_idle_sessions\{protocol="mysql"\} (\d+)`)

// idleCount is how many idle MySQL upstream sessions Airlock keeps.
func (m *mysqlInstance) idleCount(t *testing.T) int {
	t.Helper()
	got := idleGaugeRE.FindStringSubmatch(m.metrics(t))
	if got == nil {
		return 0 // not set before the first session is kept
	}
	v, _ := strconv.Atoi(got[1])
	return v
}

// idleSessions waits until Airlock keeps n idle MySQL upstream sessions.
func (m *mysqlInstance) idleSessions(t *testing.T, n int) {
	t.Helper()
	if !pollUntil(5*time.Second, func() bool { return m.idleCount(t) == n }) {
		logs := m.Logs()
		t.Fatalf("not %d idle sessions\n%s", n, logs[max(0, len(logs)-3000):])
	}
}

// threadAlive reports whether the server still has thread id.
func threadAlive(t *testing.T, admin *sql.DB, id string) bool {
	t.Helper()
	var n int
	if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestMySQLPool: a session whose client quit cleanly is reset and handed
// to the next client of the same connection, identity and flags, with
// nothing of the previous client's state left in it.
func TestMySQLPool(t *testing.T) {
	m := startMySQL(t, "policy:\n  rules: {admin.kill: allow, reach.*: allow}\n", "      allow_database_change: true\n", "")
	other := mariadbDatabase(t)
	m.exec(t, "CREATE TABLE t (id INT PRIMARY KEY)")
	admin := m.admin(t)
	cfg := m.driverConfig("dev", devToken, "mysql")

	t.Run("reused", func(t *testing.T) {
		ids := map[string]int{}
		for range 5 {
			c := m.poolClient(t, cfg)
			ids[c.value("SELECT CONNECTION_ID()")]++
			c.end()
		}
		if len(ids) != 1 {
			t.Fatalf("upstream threads %v, want one reused", ids)
		}
		if !strings.Contains(m.metrics(t), `airlock_upstream_sessions_total{connection="mysql",protocol="mysql",source="reused"} 4`) {
			t.Errorf("reuse not counted:\n%s", grepLines(m.metrics(t), "upstream_sessions"))
		}
	})

	t.Run("no state leaks", func(t *testing.T) {
		a := m.poolClient(t, cfg)
		thread := a.value("SELECT CONNECTION_ID()")
		a.exec("SET @leak = 42", "CREATE TEMPORARY TABLE tmp_leak (x INT)", "SET SESSION sql_mode = 'ANSI_QUOTES'",
			"PREPARE leak_stmt FROM 'SELECT 1'", "LOCK TABLES t WRITE", "USE "+other)
		if v := a.value("SELECT GET_LOCK('" + m.db + "_lock', 0)"); v != "1" {
			t.Fatalf("GET_LOCK: %s", v)
		}
		if _, err := a.conn.PrepareContext(context.Background(), "SELECT ?"); err != nil {
			t.Fatal(err)
		}
		// Last: a statement on a table now would open a transaction,
		// and a session left inside one is not kept.
		a.exec("SET SESSION autocommit = 0")
		a.end()
		b := m.poolClient(t, cfg)
		defer b.end()
		if got := b.value("SELECT CONNECTION_ID()"); got != thread {
			t.Fatalf("thread %s, want the kept %s", got, thread)
		}
		for q, want := range map[string]string{
			"SELECT @leak": "NULL",
			"SELECT @@session.sql_mode = @@global.sql_mode": "1",
			"SELECT @@autocommit":                           "1",
			"SELECT DATABASE()":                             m.db,
			"SELECT IS_USED_LOCK('" + m.db + "_lock')":      "NULL",
		} {
			if got := b.value(q); got != want {
				t.Errorf("%s = %s, want %s", q, got, want)
			}
		}
		if _, err := b.conn.ExecContext(context.Background(), "SELECT * FROM tmp_leak"); myCode(err) != gomysql.ER_NO_SUCH_TABLE {
			t.Errorf("the previous client's temporary table: %v", err)
		}
		if _, err := b.conn.ExecContext(context.Background(), "EXECUTE leak_stmt"); myCode(err) != gomysql.ER_UNKNOWN_STMT_HANDLER {
			t.Errorf("EXECUTE of the previous client's statement: %v", err)
		}
		// The table lock is gone: a direct session writes at once.
		if _, err := admin.Exec("SET SESSION lock_wait_timeout = 2; INSERT INTO t VALUES (1)"); err != nil {
			t.Errorf("the previous client's LOCK TABLES still holds: %v", err)
		}
	})

	t.Run("open transaction rolled back", func(t *testing.T) {
		a := m.poolClient(t, cfg)
		thread := a.value("SELECT CONNECTION_ID()")
		a.exec("BEGIN", "INSERT INTO t VALUES (99)")
		a.quit()
		if !pollUntil(5*time.Second, func() bool { return !threadAlive(t, admin, thread) }) {
			t.Fatal("a session left inside a transaction is still open")
		}
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM t WHERE id = 99").Scan(&n); err != nil || n != 0 {
			t.Fatalf("uncommitted row: %d %v", n, err)
		}
	})

	t.Run("killed while idle", func(t *testing.T) {
		a := m.poolClient(t, cfg)
		thread := a.value("SELECT CONNECTION_ID()")
		a.end()
		if _, err := admin.Exec("KILL " + thread); err != nil {
			t.Fatal(err)
		}
		if !pollUntil(5*time.Second, func() bool { return !threadAlive(t, admin, thread) }) {
			t.Fatal("KILL did not end the thread")
		}
		b := m.poolClient(t, cfg)
		defer b.end()
		if got := b.value("SELECT CONNECTION_ID()"); got == thread {
			t.Fatal("the killed session was handed out")
		}
		if v := b.value("SELECT 6 * 7"); v != "42" {
			t.Fatalf("after a killed idle session: %s", v)
		}
	})

	t.Run("different keys do not share", func(t *testing.T) {
		a := m.poolClient(t, cfg)
		thread := a.value("SELECT CONNECTION_ID()")
		a.end()
		multi := m.driverConfig("dev", devToken, "mysql")
		multi.MultiStatements = true
		found := m.driverConfig("dev", devToken, "mysql")
		found.ClientFoundRows = true
		latin := m.driverConfig("dev", devToken, "mysql")
		latin.Collation = "latin1_swedish_ci"
		agent := m.driverConfig("agent", agentToken, "mysql")
		for name, c := range map[string]*driver.Config{"multi statements": multi, "found rows": found, "collation": latin, "identity": agent} {
			b := m.poolClient(t, c)
			if got := b.value("SELECT CONNECTION_ID()"); got == thread {
				t.Errorf("%s: got the session of a client without it", name)
			}
			b.end()
		}
	})

	t.Run("kill by ids", func(t *testing.T) {
		before := m.idleCount(t)
		a := rawPoolClient(t, m)
		thread := rawValue(t, a, "SELECT CONNECTION_ID()")
		if _, err := wire.WritePacket(a.Conn, 0, []byte{gomysql.COM_QUIT}); err != nil {
			t.Fatal(err)
		}
		m.idleSessions(t, before+1)
		b := rawPoolClient(t, m)
		if got := rawValue(t, b, "SELECT CONNECTION_ID()"); got != thread {
			t.Fatalf("the kept session went to another client (thread %s, want %s)", got, thread)
		}
		killer := m.poolClient(t, cfg)
		defer killer.quit()
		// The first client's id names no session now.
		if _, err := killer.conn.ExecContext(context.Background(), fmt.Sprintf("KILL QUERY %d", a.ConnectionID)); myCode(err) != 1094 {
			t.Fatalf("KILL QUERY of the quit client: %v", err)
		}
		// KILL QUERY by the thread id reaches the second client's command.
		if _, err := wire.WritePacket(b.Conn, 0, wire.AppendQuery(nil, b.Capabilities, []byte("SELECT SLEEP(30)"))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		killer.exec("KILL QUERY " + thread)
		if v, code := rawResult(t, b); code != 1317 && v != "1" {
			t.Fatalf("killed SLEEP answered %q, error %d", v, code)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("KILL QUERY did not stop the command")
		}
		// KILL by the second client's own id ends its session, whose
		// upstream is then not kept.
		killer.exec(fmt.Sprintf("KILL %d", b.ConnectionID))
		if !pollUntil(5*time.Second, func() bool { return !threadAlive(t, admin, thread) }) {
			t.Fatal("the killed client's upstream session is still open")
		}
	})
}

// TestMySQLPoolIdleTimeout: a kept session is closed after
// mysql.pool.idle_timeout, and a pool with max_idle 0 keeps none.
func TestMySQLPoolIdleTimeout(t *testing.T) {
	m := startMySQL(t, "mysql: {pool: {idle_timeout: 1s}}\n", "", "")
	admin := m.admin(t)
	a := m.poolClient(t, m.driverConfig("dev", devToken, "mysql"))
	thread := a.value("SELECT CONNECTION_ID()")
	a.end()
	m.idleSessions(t, 0)
	if !pollUntil(5*time.Second, func() bool { return !threadAlive(t, admin, thread) }) {
		t.Fatal("the expired session's thread is still open")
	}

	off := startMySQL(t, "mysql: {pool: {max_idle: 0}}\n", "", "")
	ids := map[string]bool{}
	for range 2 {
		c := off.poolClient(t, off.driverConfig("dev", devToken, "mysql"))
		ids[c.value("SELECT CONNECTION_ID()")] = true
		c.quit()
	}
	if len(ids) != 2 {
		t.Fatalf("max_idle 0 reused a session: %v", ids)
	}
}

// rawPoolClient logs in to Airlock with the wire package, whose session
// knows the connection id Airlock gave it, with flags a driver asks for.
func rawPoolClient(t *testing.T, m *mysqlInstance) *wire.Upstream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	up, err := wire.Dial(ctx, wire.DialConfig{Address: m.addr, User: "dev", Password: devToken, Database: "mysql",
		TLS: wire.TLSConfig{Mode: "disable"}, Capabilities: gomysql.CLIENT_PROTOCOL_41 | gomysql.CLIENT_TRANSACTIONS |
			gomysql.CLIENT_MULTI_RESULTS | gomysql.CLIENT_DEPRECATE_EOF | gomysql.CLIENT_LONG_FLAG})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Conn.Close() })
	_ = up.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	return up
}

// rawValue runs a query on a raw session and returns its first value.
func rawValue(t *testing.T, up *wire.Upstream, query string) string {
	t.Helper()
	if _, err := wire.WritePacket(up.Conn, 0, wire.AppendQuery(nil, up.Capabilities, []byte(query))); err != nil {
		t.Fatal(err)
	}
	v, code := rawResult(t, up)
	if code != 0 {
		t.Fatalf("%s: error %d", query, code)
	}
	return v
}

// rawResult reads a text result set's first value, or an error's code.
func rawResult(t *testing.T, up *wire.Upstream) (string, uint16) {
	t.Helper()
	p, err := wire.ReadPacket(up.Conn, 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	if wire.IsERR(p.Payload) {
		return "", errCode(p)
	}
	n, err := wire.ParseColumnCount(p.Payload)
	if err != nil {
		t.Fatalf("column count: %v", err)
	}
	for range n {
		if _, err := wire.ReadPacket(up.Conn, 1<<24); err != nil {
			t.Fatal(err)
		}
	}
	value := ""
	for first := true; ; first = false {
		p, err := wire.ReadPacket(up.Conn, 1<<24)
		if err != nil {
			t.Fatal(err)
		}
		if wire.IsERR(p.Payload) {
			return "", errCode(p)
		}
		if end, _, _ := wire.ResultEnd(p.Payload, up.Capabilities); end {
			return value, 0
		}
		if first && len(p.Payload) > 0 && p.Payload[0] < 251 {
			value = string(p.Payload[1 : 1+int(p.Payload[0])])
		}
	}
}
