package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/recording"
)

// TestUpstreamDownAtStart: Airlock starts with every upstream down,
// readiness names each connection that is down, and clients get their
// protocol's connection error naming the connection.
func TestUpstreamDownAtStart(t *testing.T) {
	db := testenv.PostgresDB(t)
	cfg := lifeConfig("readiness: {interval: 200ms, timeout: 2s}\n",
		pgEntry("main", testenv.PostgresAddr, db)+pgEntry("pgdown", closedPort(t), db)+
			myEntry("mydown", closedPort(t), "x", "root", "")+rdEntry("rddown", closedPort(t), "", ""))
	cfg = strings.Replace(cfg, "  admin: 127.0.0.1:0\n", "  admin: 127.0.0.1:0\n  http: 127.0.0.1:0\n", 1)
	in := startAirlock(t, cfg)
	if !pollUntil(10*time.Second, func() bool { _, r := readyReportOf(t, in, ""); return r.Checked }) {
		t.Fatal("readiness never checked")
	}
	code, rep := readyReportOf(t, in, "")
	if code != http.StatusOK || !rep.Ready {
		t.Errorf("/readyz with only upstreams down: %d %+v", code, rep)
	}
	for _, name := range []string{"pgdown", "mydown", "rddown"} {
		c := rep.connection(name)
		if c.OK || !strings.Contains(c.Problem, name) || !strings.Contains(c.Problem, "unreachable") {
			t.Errorf("readiness of %s: %+v", name, c)
		}
		if code, _ := readyz(t, in, "?connection="+name); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz?connection=%s: %d", name, code)
		}
	}
	if c := rep.connection("main"); !c.OK {
		t.Errorf("readiness of main: %+v", c)
	}
	if code, _ := readyz(t, in, "?connection=main"); code != http.StatusOK {
		t.Errorf("/readyz?connection=main: %d", code)
	}
	if code, body := readyz(t, in, "?connection=*"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection pgdown (postgres): could not connect") {
		t.Errorf("/readyz?connection=*: %d %s", code, body)
	}
	if !strings.Contains(in.metrics(t), `airlock_upstream_up{connection="pgdown",protocol="postgres"} 0`) {
		t.Error("airlock_upstream_up does not show pgdown down")
	}

	_, err := pgx.Connect(context.Background(), in.url("dev", devToken, "pgdown", ""))
	if pgCode(err) != "08001" || !strings.Contains(err.Error(), `connection "pgdown": unreachable`) {
		t.Errorf("psql to a down upstream: %v, want 08001 naming the connection", err)
	}
	my := openDriver(t, (&mysqlInstance{instance: in, addr: in.addr("mysql")}).driverConfig("dev", devToken, "mydown"))
	if err := my.Ping(); myCode(err) != 2003 || !strings.Contains(err.Error(), "mydown") {
		t.Errorf("MySQL to a down upstream: %v, want 2003 naming the connection", err)
	}
	rd := dialRaw(t, in.addr("redis"))
	if got := rd.do("AUTH", "dev@rddown", devToken); got != `-ERR could not connect to the upstream of connection "rddown": unreachable` {
		t.Errorf("Redis to a down upstream: %s", got)
	}
	ag := &agentInstance{instance: in, base: "http://" + in.addr("http")}
	r := ag.do(t, call{method: "POST", path: "/v1/connections/pgdown/query", token: devToken, contentType: "application/json", body: `{"sql":"SELECT 1"}`})
	if r.status != http.StatusBadGateway || !strings.Contains(r.body, "pgdown") || !strings.Contains(r.body, "unreachable") {
		t.Errorf("agent API to a down upstream: %d %s", r.status, r.body)
	}
	if strings.Contains(in.Logs(), upstreamSecret) {
		t.Error("the upstream password reached the log")
	}
}

// TestUpstreamRefusalsByCause: an upstream that is full, that refuses
// Airlock's own login, or that hangs reaches the client as that cause, in
// the protocol's own form, naming the connection and never the
// credential.
func TestUpstreamRefusalsByCause(t *testing.T) {
	db := testenv.PostgresDB(t)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	mdb := mariadbDatabase(t)
	ctx := context.Background()

	// PostgreSQL: a role limited to one connection (53300 past it), a
	// server that refuses the password (28P01), a hung server.
	role := testenv.Unique("airlock_full")
	admin := pgxConnect(t, testenv.PostgresURL(t, db))
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	refusing := fakeServer(t, func(c net.Conn) {
		if readStartup(c) {
			b, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: `password authentication failed for user "postgres"`}).Encode(nil)
			_, _ = c.Write(b)
		}
	})
	hung := startProxy(t, testenv.PostgresAddr)
	hung.stall(true)

	// MySQL: an account limited to one connection, the same account with
	// a wrong password, a hung server.
	user := testenv.Unique("airlock_my")
	my := mariadbAdmin(t, "")
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'right-Pass-1' WITH MAX_USER_CONNECTIONS 1", user),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", mdb, user),
	} {
		if _, err := my.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = my.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	myHung := startProxy(t, testenv.MariaDBAddr)
	myHung.stall(true)

	// Redis: a server with no client slot left, one that refuses the
	// password, a hung one.
	rdFull := fakeServer(t, func(c net.Conn) { _, _ = c.Write([]byte("-ERR max number of clients reached\r\n")) })
	rdRefusing := fakeServer(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 4096))
		_, _ = c.Write([]byte("-WRONGPASS invalid username-password pair or user is disabled.\r\n"))
	})
	rdHung := startProxy(t, testenv.RedisAddr)
	rdHung.stall(true)

	pgFull := strings.Replace(pgEntry("pgfull", testenv.PostgresAddr, db), "user: postgres", "user: "+role, 1)
	cfg := lifeConfig(`postgres: {connect_timeout: 1s, pool: {max_idle: 0}}
mysql: {connect_timeout: 1s}
redis: {connect_timeout: 1s}
readiness: {interval: 1h, timeout: 3s}
`, pgFull+pgEntry("pgrefused", refusing, db)+pgEntry("pghung", hung.addr(), db)+
		myEntry("myfull", testenv.MariaDBAddr, mdb, user, "right-Pass-1")+myEntry("myrefused", testenv.MariaDBAddr, mdb, user, "wrong-Pass-2")+
		myEntry("myhung", myHung.addr(), mdb, "root", "")+
		rdEntry("rdfull", rdFull, "", "")+rdEntry("rdrefused", rdRefusing, "default", "wrong-Pass-3")+rdEntry("rdhung", rdHung.addr(), "", ""))
	in := startAirlock(t, cfg)
	// One round of readiness checks, done before the tests take the
	// limited accounts' only slot (the checks log in too).
	if !pollUntil(10*time.Second, func() bool { _, r := readyReportOf(t, in, ""); return r.Checked }) {
		t.Fatal("readiness never checked")
	}

	t.Run("postgres", func(t *testing.T) {
		first := pgxConnect(t, in.url("dev", devToken, "pgfull", ""))
		if _, err := first.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		_, err := pgx.Connect(ctx, in.url("dev", devToken, "pgfull", ""))
		if pgCode(err) != "53300" || !strings.Contains(err.Error(), `"pgfull" has too many connections`) {
			t.Errorf("full: %v", err)
		}
		_, err = pgx.Connect(ctx, in.url("dev", devToken, "pgrefused", ""))
		if pgCode(err) != "08004" || !strings.Contains(err.Error(), `"pgrefused" refused Airlock's login`) || strings.Contains(err.Error(), upstreamSecret) {
			t.Errorf("login refused: %v", err)
		}
		start := time.Now()
		_, err = pgx.Connect(ctx, in.url("dev", devToken, "pghung", ""))
		if pgCode(err) != "08001" || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 5*time.Second {
			t.Errorf("hung (after %v): %v", time.Since(start), err)
		}
	})
	t.Run("mysql", func(t *testing.T) {
		mi := &mysqlInstance{instance: in, addr: in.addr("mysql")}
		first := openDriver(t, mi.driverConfig("dev", devToken, "myfull"))
		first.SetMaxOpenConns(1)
		if err := first.Ping(); err != nil {
			t.Fatal(err)
		}
		err := openDriver(t, mi.driverConfig("dev", devToken, "myfull")).Ping()
		if myCode(err) != 1040 || !strings.Contains(err.Error(), "too many connections") {
			t.Errorf("full: %v", err)
		}
		err = openDriver(t, mi.driverConfig("dev", devToken, "myrefused")).Ping()
		if myCode(err) != 1045 || !strings.Contains(err.Error(), "refused Airlock's login") || strings.Contains(err.Error(), "wrong-Pass-2") {
			t.Errorf("login refused: %v", err)
		}
		start := time.Now()
		err = openDriver(t, mi.driverConfig("dev", devToken, "myhung")).Ping()
		if myCode(err) != 2003 || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 5*time.Second {
			t.Errorf("hung (after %v): %v", time.Since(start), err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		for conn, want := range map[string]string{
			"rdfull":    `-ERR max number of clients reached: the upstream of connection "rdfull" has too many connections`,
			"rdrefused": `-ERR the upstream of connection "rdrefused" refused Airlock's login; the connection's credentials in Airlock's configuration need fixing`,
			"rdhung":    `-ERR could not connect to the upstream of connection "rdhung": timed out`,
		} {
			c := dialRaw(t, in.addr("redis"))
			if got := c.do("AUTH", "dev@"+conn, devToken); got != want {
				t.Errorf("%s: %s", conn, got)
			}
		}
	})
	t.Run("readiness", func(t *testing.T) {
		_, rep := readyReportOf(t, in, "")
		for name, want := range map[string]string{
			"pgrefused": "refused Airlock's login", "pghung": "timed out", "myrefused": "refused Airlock's login",
			"myhung": "timed out", "rdfull": "too many connections", "rdhung": "timed out",
		} {
			if c := rep.connection(name); c.OK || !strings.Contains(c.Problem, want) {
				t.Errorf("readiness of %s: %+v, want %q", name, c, want)
			}
		}
	})
	for _, secret := range []string{upstreamSecret, "wrong-Pass-2", "wrong-Pass-3", "right-Pass-1"} {
		if strings.Contains(in.Logs(), secret) {
			t.Errorf("a held credential reached the log")
		}
	}
}

// readStartup reads a PostgreSQL startup packet, answering an SSLRequest
// with 'N' first; it reports whether a StartupMessage came.
func readStartup(c net.Conn) bool {
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return false
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		if _, err := io.CopyN(io.Discard, c, int64(n-8)); err != nil {
			return false
		}
		if binary.BigEndian.Uint32(hdr[4:]) == 80877103 {
			_, _ = c.Write([]byte{'N'})
			continue
		}
		return true
	}
}

// TestUpstreamRestartedMidSession: an upstream that drops every
// connection (a restart) ends each open session with a clear error, idle
// kept upstream sessions are not handed out dead, the next session
// connects, and readiness follows the upstream down and up.
func TestUpstreamRestartedMidSession(t *testing.T) {
	db := testenv.PostgresDB(t)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	mdb := mariadbDatabase(t)
	pg, my, rd := startProxy(t, testenv.PostgresAddr), startProxy(t, testenv.MariaDBAddr), startProxy(t, testenv.RedisAddr)
	in := startAirlock(t, lifeConfig("readiness: {interval: 200ms, timeout: 2s}\n",
		pgEntry("pg", pg.addr(), db)+myEntry("my", my.addr(), mdb, "root", "")+rdEntry("rd", rd.addr(), "", "")))
	ctx := context.Background()

	// An idle upstream session kept for reuse, and open sessions.
	kept := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	if _, err := kept.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	kept.Close(ctx)
	pollUntil(5*time.Second, func() bool {
		return strings.Contains(in.metrics(t), `airlock_upstream_idle_sessions{protocol="postgres"} 1`)
	})
	pgc := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	mi := &mysqlInstance{instance: in, addr: in.addr("mysql")}
	myc := openDriver(t, mi.driverConfig("dev", devToken, "my"))
	myc.SetMaxOpenConns(1)
	rdc := redis.NewClient(&redis.Options{Addr: in.addr("redis"), Username: "dev", Password: devToken, Protocol: 2, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { rdc.Close() })
	for _, err := range []error{pgc.Ping(ctx), myc.Ping(), rdc.Ping(ctx).Err()} {
		if err != nil {
			t.Fatal(err)
		}
	}

	pg.cut(true)
	my.cut(true)
	rd.cut(true)
	if _, err := pgc.Exec(ctx, "SELECT 1"); err == nil || (pgCode(err) != "08006" && !strings.Contains(err.Error(), "lost the upstream")) {
		t.Errorf("PostgreSQL session whose upstream restarted: %v", err)
	}
	var n int
	if err := myc.QueryRow("SELECT 1").Scan(&n); err == nil {
		t.Error("MySQL session whose upstream restarted ran a command")
	}
	if err := rdc.Ping(ctx).Err(); err == nil {
		t.Error("Redis session whose upstream restarted ran a command")
	}
	if !pollUntil(5*time.Second, func() bool { c, _ := readyz(t, in, "?connection=pg"); return c == http.StatusServiceUnavailable }) {
		t.Error("readiness did not notice the upstream down")
	}
	pg.up()
	my.up()
	rd.up()
	if !pollUntil(5*time.Second, func() bool { c, _ := readyz(t, in, "?connection=*"); return c == http.StatusOK }) {
		_, body := readyz(t, in, "?connection=*")
		t.Errorf("readiness did not notice the upstreams back: %s", body)
	}
	next := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	if _, err := next.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the next PostgreSQL session (the kept one was dead): %v", err)
	}
	myNext := openDriver(t, mi.driverConfig("dev", devToken, "my"))
	if err := myNext.Ping(); err != nil {
		t.Errorf("the next MySQL session: %v", err)
	}
	rdNext := redis.NewClient(&redis.Options{Addr: in.addr("redis"), Username: "dev", Password: devToken, Protocol: 2})
	t.Cleanup(func() { rdNext.Close() })
	if err := rdNext.Ping(ctx).Err(); err != nil {
		t.Errorf("the next Redis session: %v", err)
	}
}

// TestClientGoneCancelsUpstreamWork: a client that disappears while its
// statement runs, or while its result streams, has the statement
// cancelled upstream; the session ends.
func TestClientGoneCancelsUpstreamWork(t *testing.T) {
	db := testenv.PostgresDB(t)
	mdb := mariadbDatabase(t)
	in := startAirlock(t, lifeConfig("", pgEntry("main", testenv.PostgresAddr, db)+myEntry("my", testenv.MariaDBAddr, mdb, "root", "")))
	ctx := context.Background()
	for _, tc := range []struct{ name, sql, marker string }{
		{"running", "SELECT pg_sleep(30) AS gone_running", "gone_running"},
		{"streaming", "SELECT g, repeat('x', 2000) AS gone_streaming FROM (SELECT generate_series(1, 50000000) AS g) s", "gone_streaming"},
	} {
		t.Run("postgres "+tc.name, func(t *testing.T) {
			pc, err := pgconn.Connect(ctx, in.url("dev", devToken, "main", ""))
			if err != nil {
				t.Fatal(err)
			}
			read := make(chan struct{})
			go func() {
				// ExecParams returns once the result begins.
				rr := pc.ExecParams(ctx, tc.sql, nil, nil, nil, nil)
				for i := 0; i < 100 && rr.NextRow(); i++ {
				}
				close(read)
				_, _ = rr.Close()
			}()
			if !pollUntil(10*time.Second, func() bool { return pgActivity(t, tc.marker) == 1 }) {
				t.Fatal("the statement did not start")
			}
			if tc.name == "streaming" {
				<-read
			}
			_ = pc.Conn().Close() // gone, without a word
			if !pollUntil(10*time.Second, func() bool { return pgActivity(t, tc.marker) == 0 }) {
				t.Errorf("the statement of a client that went away still runs upstream")
			}
		})
	}
	t.Run("mysql running", func(t *testing.T) {
		mi := &mysqlInstance{instance: in, addr: in.addr("mysql")}
		d := openDriver(t, mi.driverConfig("dev", devToken, "my"))
		qctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { _, err := d.ExecContext(qctx, "SELECT SLEEP(30) AS gone_mysql"); done <- err }()
		admin := mariadbAdmin(t, "")
		running := func() int {
			var n int
			_ = admin.QueryRow("SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(30) AS gone_mysql%'").Scan(&n)
			return n
		}
		if !pollUntil(10*time.Second, func() bool { return running() == 1 }) {
			t.Fatal("the statement did not start")
		}
		cancel() // go-sql-driver closes the connection
		<-done
		if !pollUntil(10*time.Second, func() bool { return running() == 0 }) {
			t.Error("the statement of a client that went away still runs upstream")
		}
	})
	if !pollUntil(10*time.Second, func() bool {
		return !strings.Contains(in.metrics(t), `airlock_active_sessions{connection="main",protocol="postgres"} 1`)
	}) {
		t.Error("sessions of clients that went away stay open")
	}
}

// TestSlowClientBoundedMemory: a client that reads a large result slowly
// holds Airlock's memory bounded: the result waits upstream, not in
// Airlock.
func TestSlowClientBoundedMemory(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "recording: {rows: none}\n", ""))
	ctx := context.Background()
	warm := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := warm.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	before := in.peakRSS(t)
	pc, err := pgconn.Connect(ctx, in.url("dev", devToken, "main", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	// About 1 GiB of rows, read a few at a time.
	rr := pc.ExecParams(ctx, "SELECT g, repeat('y', 4000) FROM generate_series(1, 250000) g", nil, nil, nil, nil)
	for i := 0; i < 20 && rr.NextRow(); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	grew := in.peakRSS(t) - before
	t.Logf("Airlock's peak RSS grew by %d KiB while a client read a 1 GiB result slowly", grew)
	if grew > 64<<10 {
		t.Errorf("peak RSS grew by %d KiB: the result is buffered in Airlock", grew)
	}
	_ = pc.Conn().Close()
}

// smallDisk mounts a tmpfs of size for a test's recordings, or skips when
// the test may not mount.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "recordings")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("mount a tmpfs for the recordings: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file in dir until the disk is full, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := 4096; n >= 1; n /= 2 { // the last bytes too
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// TestRecordingDiskFull: with the recording disk full, no statement runs
// unrecorded. A command whose frame finds no space is refused before it is
// forwarded, a result that outgrows the space ends its session, new
// sessions are refused and readiness says why; the recordings made so far
// verify.
func TestRecordingDiskFull(t *testing.T) {
	dir := smallDisk(t, "8m")
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf("recording: {dir: %s, rows: all}\nreadiness: {interval: 200ms}\n", dir), ""))
	createTable(t, db, "t_full")
	ctx := context.Background()
	a := pgxConnect(t, in.url("dev", devToken, "main", ""))
	b := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := a.Exec(ctx, "SELECT 'before the disk filled'"); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir)

	// A statement whose frame does not fit the space reserved is refused.
	long := "INSERT INTO t_full SELECT length('" + strings.Repeat("p", 300<<10) + "')"
	if _, err := a.Exec(ctx, long); pgCode(err) != "58030" {
		t.Errorf("a statement with no space to record it: %v, want 58030", err)
	}
	if !tableHasRows(t, db, "t_full", 0) {
		t.Fatal("a statement ran unrecorded")
	}
	// A result that outgrows the space ends its session; the statement
	// itself was recorded before it ran.
	rows, err := b.Query(ctx, "SELECT g, repeat('z', 1000) AS outgrows FROM generate_series(1, 20000) g")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
	}
	if pgCode(err) != "58030" {
		t.Errorf("a result past the space: %v, want 58030", err)
	}
	// The ended sessions gave back the space they had reserved.
	fill(t, dir)
	if !pollUntil(5*time.Second, func() bool { c, _ := readyz(t, in, ""); return c == http.StatusServiceUnavailable }) {
		t.Error("readiness did not notice the full disk")
	}
	if _, body := readyz(t, in, ""); !strings.Contains(body, "disk is full") {
		t.Errorf("/readyz: %s", body)
	}
	if _, err := pgx.Connect(ctx, in.url("dev", devToken, "main", "")); pgCode(err) != "58030" {
		t.Errorf("a new session on a full disk: %v, want 58030", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !pollUntil(5*time.Second, func() bool { c, _ := readyz(t, in, ""); return c == http.StatusOK }) {
		t.Error("readiness did not recover")
	}
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := c.Exec(ctx, "SELECT 'after'"); err != nil {
		t.Errorf("a session after space came back: %v", err)
	}
	c.Close(ctx)
	in.stop()
	replay := verifyAllIn(t, in, dir)
	for _, want := range []string{"before the disk filled", "outgrows", "after"} {
		if !strings.Contains(replay, want) {
			t.Errorf("the recordings lack %q", want)
		}
	}
	if strings.Contains(replay, "INSERT INTO t_full") {
		t.Error("the refused statement is in a recording")
	}
}

// TestRecordingReadOnly: recordings on a file system turned read-only
// refuse new sessions, and readiness says why.
func TestRecordingReadOnly(t *testing.T) {
	dir := smallDisk(t, "8m")
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf("recording: {dir: %s}\nreadiness: {interval: 200ms}\n", dir), ""))
	ctx := context.Background()
	if !pollUntil(10*time.Second, func() bool { c, _ := readyz(t, in, ""); return c == http.StatusOK }) {
		t.Fatal("never ready")
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	if !pollUntil(5*time.Second, func() bool { c, _ := readyz(t, in, ""); return c == http.StatusServiceUnavailable }) {
		t.Error("readiness did not notice the read-only file system")
	}
	if _, body := readyz(t, in, ""); !strings.Contains(body, "read-only") {
		t.Errorf("/readyz: %s", body)
	}
	if _, err := pgx.Connect(ctx, in.url("dev", devToken, "main", "")); pgCode(err) != "58030" {
		t.Errorf("a new session: %v, want 58030", err)
	}
	if out, err := exec.Command("mount", "-o", "remount,rw", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-write: %v: %s", err, out)
	}
	if !pollUntil(5*time.Second, func() bool { c, _ := readyz(t, in, ""); return c == http.StatusOK }) {
		t.Error("readiness did not recover")
	}
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("a session after the file system came back: %v", err)
	}
}

// verifyAllIn is verifyAll for recordings in dir.
func verifyAllIn(t *testing.T, in *instance, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"+recording.FileExt))
	if len(files) == 0 {
		t.Fatal("no recording")
	}
	var all strings.Builder
	for _, f := range files {
		if out, code := airlockCmd(t, in, "verify", f); code != 0 {
			t.Errorf("%s does not verify (%d):\n%s", f, code, out)
		}
		out, _ := airlockCmd(t, in, "replay", f)
		all.WriteString(out)
	}
	return all.String()
}

// TestStoreUnavailable: with the shared store down (a PostgreSQL store
// behind a proxy that is cut), commands that need an approval are refused,
// never run, readiness says the store is unavailable, and all recovers
// with the store.
func TestStoreUnavailable(t *testing.T) {
	db := testenv.PostgresDB(t)
	storeDB := testenv.PostgresDB(t)
	p := startProxy(t, testenv.PostgresAddr)
	extra := fmt.Sprintf(holdConfig, "5m") + fmt.Sprintf("store: {driver: postgres, dsn: \"postgres://postgres@%s/%s?sslmode=disable\"}\nreadiness: {interval: 200ms, timeout: 1s}\n", p.addr(), storeDB)
	in := startAirlock(t, baseConfig(db, extra, ""))
	createTable(t, db, "t_store")
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if !pollUntil(10*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusOK }) {
		t.Fatal("never ready")
	}
	p.cut(true)
	if !pollUntil(10*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusServiceUnavailable }) {
		t.Error("readiness did not notice the store down")
	}
	if _, body := readyz(t, in, ""); !strings.Contains(body, "store is unavailable") {
		t.Errorf("/readyz: %s", body)
	}
	_, err := c.Exec(ctx, "DROP TABLE t_store")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "approval store is unavailable") {
		t.Errorf("a command needing approval with the store down: %v", err)
	}
	if !tableExists(t, db, "t_store") {
		t.Fatal("the command ran without an approval")
	}
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("an open session's next command with the store down: %v", err)
	}
	nc, err := pgx.Connect(ctx, in.url("dev", devToken, "main", ""))
	if err == nil {
		_, err = nc.Exec(ctx, "SELECT 1")
		nc.Close(ctx)
	}
	// The session index lives in the store: a session it cannot register
	// is refused, as one that cannot be recorded is.
	if pgCode(err) != "58030" {
		t.Errorf("a new session with the store down: %v, want 58030", err)
	}
	p.up()
	if !pollUntil(10*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusOK }) {
		_, body := readyz(t, in, "")
		t.Errorf("readiness did not recover: %s", body)
	}
	n := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := n.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("a session after the store came back: %v", err)
	}
}

// TestStoreLockedSQLite: an SQLite store whose write lock another process
// holds makes readiness say so.
func TestStoreLockedSQLite(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "readiness: {interval: 200ms, timeout: 1s}\n", ""))
	if !pollUntil(10*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusOK }) {
		t.Fatal("never ready")
	}
	lock, err := sql.Open("sqlite", filepath.Join(in.dir, "data", "airlock.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	if !pollUntil(15*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusServiceUnavailable }) {
		t.Error("readiness did not notice the locked store")
	}
	if _, body := readyz(t, in, ""); !strings.Contains(body, "locked") {
		t.Errorf("/readyz: %s", body)
	}
	_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
	conn.Close()
	if !pollUntil(15*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusOK }) {
		t.Error("readiness did not recover")
	}
}

// TestUpstreamHungMidSession: an upstream that stops answering in the
// middle of a session has its command cancelled at the query timeout, and
// the session ended with an error naming the timeout when it stays silent.
func TestUpstreamHungMidSession(t *testing.T) {
	db := testenv.PostgresDB(t)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	mdb := mariadbDatabase(t)
	pg, my, rd := startProxy(t, testenv.PostgresAddr), startProxy(t, testenv.MariaDBAddr), startProxy(t, testenv.RedisAddr)
	in := startAirlock(t, lifeConfig(`postgres: {query_timeout: 500ms, connect_timeout: 1s}
mysql: {query_timeout: 500ms, connect_timeout: 1s}
redis: {query_timeout: 500ms, connect_timeout: 1s}
`, pgEntry("pg", pg.addr(), db)+myEntry("my", my.addr(), mdb, "root", "")+rdEntry("rd", rd.addr(), "", "")))
	ctx := context.Background()
	pgc := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	myc := openDriver(t, (&mysqlInstance{instance: in, addr: in.addr("mysql")}).driverConfig("dev", devToken, "my"))
	myc.SetMaxOpenConns(1)
	rdc := dialRaw(t, in.addr("redis"))
	if got := rdc.do("AUTH", "dev@rd", devToken); got != "+OK" {
		t.Fatal(got)
	}
	if err := errors.Join(pgc.Ping(ctx), myc.Ping()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proxy{pg, my, rd} {
		p.freeze(true)
	}
	start := time.Now()
	_, err := pgc.Exec(ctx, "SELECT 1")
	if pgCode(err) != "08006" || !strings.Contains(err.Error(), "did not answer within postgres.query_timeout") {
		t.Errorf("PostgreSQL with a hung upstream (after %v): %v", time.Since(start), err)
	}
	var n int
	err = myc.QueryRow("SELECT 1").Scan(&n)
	if myCode(err) != 2013 || !strings.Contains(err.Error(), "mysql.query_timeout") {
		t.Errorf("MySQL with a hung upstream: %v", err)
	}
	if got := rdc.do("GET", "k"); !strings.Contains(got, "did not answer within redis.query_timeout") {
		t.Errorf("Redis with a hung upstream: %s", got)
	}
	took := time.Since(start)
	t.Logf("three hung upstreams noticed in %v (query_timeout 500ms)", took)
	if took > 10*time.Second {
		t.Errorf("the hung upstreams took %v to be noticed", took)
	}
}
