package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestMySQLMariaDBClient runs one script with the real mariadb client,
// directly and through Airlock, and expects the same output; then the
// login refusals and the database scope.
func TestMySQLMariaDBClient(t *testing.T) {
	m := startMySQL(t, "", "", "")
	script := `
CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64), born DATE, score DECIMAL(6,2), doc JSON, pic BLOB);
INSERT INTO people VALUES (1, 'Ada', '1815-12-10', 99.5, '{"k": [1, 2]}', 0x00FF), (2, 'Grace', NULL, NULL, NULL, NULL);
SELECT * FROM people ORDER BY id;
SELECT 1 AS a; SELECT 2 AS b;
BEGIN; UPDATE people SET name = 'Ada L.' WHERE id = 1; SELECT 1/0; ROLLBACK;
SELECT name FROM people ORDER BY id;
SELECT * FROM no_such_table;
SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'people';
`
	run := func(direct bool) string {
		var out string
		var err error
		if direct {
			out, err = mariadbDirect(t, m.db, script)
		} else {
			out, err = m.mariadbCLI(t, "dev", devToken, "mysql", script, "--force")
		}
		if err != nil && !strings.Contains(out, "no_such_table") {
			t.Fatalf("mariadb (direct %v): %v\n%s", direct, err, out)
		}
		m.exec(t, "DROP TABLE people")
		return out
	}
	want := run(true)
	got := run(false)
	if got != want {
		t.Fatalf("mariadb through Airlock differs from direct.\n--- direct\n%s\n--- airlock\n%s", want, got)
	}
	if !strings.Contains(got, "Grace") || !strings.Contains(got, "1146") {
		t.Fatalf("unexpected output:\n%s", got)
	}

	for _, tc := range []struct {
		name, user, token, conn string
		args                    []string
		want                    string
	}{
		{"wrong token", "dev", "nope", "mysql", nil, "ERROR 1045 (28000)"},
		{"wrong token without TLS", "dev", "nope", "mysql", []string{"--skip-ssl"}, "ERROR 1045 (28000)"},
		{"unknown identity", "mallory", devToken, "mysql", nil, "ERROR 1045 (28000)"},
		{"unknown connection", "dev", devToken, "nosuch", nil, "ERROR 1049 (42000)"},
		{"no connection named", "dev", devToken, "", nil, "ERROR 1049 (42000)"},
		{"native password client is switched", "dev", devToken, "mysql", []string{"--skip-ssl", "--default-auth=mysql_native_password"}, "ok"},
		{"token without TLS", "dev", devToken, "mysql", []string{"--skip-ssl"}, "ok"},
		{"clear password over TLS", "dev", devToken, "mysql", []string{"--ssl", "--default-auth=mysql_clear_password", "--enable-cleartext-plugin"}, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := m.mariadbCLI(t, tc.user, tc.token, tc.conn, "", append(tc.args, "-N", "-e", "SELECT 'ok'")...)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("got %q, want %q", out, tc.want)
			}
			if strings.Contains(out, devToken) && tc.token != devToken || strings.Contains(out, upstreamSecret) {
				t.Fatalf("a secret in the output: %s", out)
			}
		})
	}
	out, _ := m.mariadbCLI(t, "dev", devToken, "mysql", "", "-e", "USE information_schema")
	if !strings.Contains(out, "ERROR 1044") || !strings.Contains(out, "allow_database_change") {
		t.Fatalf("USE outside the connection's scope: %s", out)
	}
	out, _ = m.mariadbCLI(t, "dev", devToken, "mysql", "", "-e", "SELECT 1; /*!40101 USE mysql */")
	if !strings.Contains(out, "ERROR 1044") {
		t.Fatalf("USE hidden in an executable comment: %s", out)
	}
	if !strings.Contains(m.metrics(t), `airlock_auth_failures_total{protocol="mysql",reason="token"}`) {
		t.Error("no mysql token failure counted")
	}
}

// mariadbDirect runs a script with the mariadb client on the upstream
// database itself.
func mariadbDirect(t *testing.T, db, script string) (string, error) {
	t.Helper()
	m := &mysqlInstance{addr: "127.0.0.1:3306"}
	if a := strings.TrimSpace(os.Getenv("AIRLOCK_TEST_MARIADB")); a != "" {
		m.addr = a
	}
	return m.mariadbCLI(t, "root", "", db, script, "--force", "--skip-ssl")
}

// TestMySQLGoDriver drives go-sql-driver/mysql through Airlock: the text
// and binary protocols, interpolated parameters, multi-statements,
// transactions, LOAD DATA LOCAL, cancellation, packets over 16 MiB and
// pool reuse.
func TestMySQLGoDriver(t *testing.T) {
	// LOAD DATA LOCAL is reach.file, which the default policy reviews.
	m := startMySQL(t, "policy:\n  rules: {reach.file: allow}\n", "", "")
	m.exec(t, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(8,2), at DATETIME(3), data LONGBLOB)")
	ctx := context.Background()
	for _, interpolate := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpolateParams=%v", interpolate), func(t *testing.T) {
			cfg := m.driverConfig("dev", devToken, "mysql")
			cfg.InterpolateParams, cfg.MultiStatements, cfg.ParseTime = interpolate, true, true
			db := openDriver(t, cfg)
			base := 0
			if interpolate {
				base = 100
			}
			at := time.Date(2024, 2, 29, 13, 14, 15, 123e6, time.UTC)
			for i := 1; i <= 3; i++ {
				if _, err := db.ExecContext(ctx, "INSERT INTO items (id, name, price, at) VALUES (?, ?, ?, ?)", base+i, fmt.Sprintf("item %d", i), 1.25*float64(i), at); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := db.QueryContext(ctx, "SELECT id, name, price, at FROM items WHERE id > ? ORDER BY id", base)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var id int
				var name string
				var price float64
				var got time.Time
				if err := rows.Scan(&id, &name, &price, &got); err != nil {
					t.Fatal(err)
				}
				n++
				if id != base+n || name != fmt.Sprintf("item %d", n) || price != 1.25*float64(n) || !got.Equal(at) {
					t.Errorf("row %d: %d %q %v %v", n, id, name, price, got)
				}
			}
			if err := rows.Err(); err != nil || n != 3 {
				t.Fatalf("rows: %v, %d", err, n)
			}
			// Multi-statements and multi-results.
			rows, err = db.QueryContext(ctx, "SELECT 1; SELECT 'two', 2")
			if err != nil {
				t.Fatal(err)
			}
			var one int
			rows.Next()
			_ = rows.Scan(&one)
			if !rows.NextResultSet() || !rows.Next() {
				t.Fatal("no second result set")
			}
			var two string
			var two2 int
			if err := rows.Scan(&two, &two2); err != nil || one != 1 || two != "two" {
				t.Fatalf("multi-results: %v %d %q", err, one, two)
			}
			rows.Close()
			// A transaction rolled back leaves nothing.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE items SET name = ? WHERE id = ?", "changed", base+1); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			var name string
			if err := db.QueryRowContext(ctx, "SELECT name FROM items WHERE id = ?", base+1).Scan(&name); err != nil || name != "item 1" {
				t.Fatalf("after rollback: %v %q", err, name)
			}
			// An upstream error is the server's, and the session goes on.
			if _, err := db.ExecContext(ctx, "INSERT INTO items (id) VALUES (?)", base+1); myCode(err) != 1062 {
				t.Fatalf("duplicate key: %v", err)
			}
		})
	}
	db := openDriver(t, m.driverConfig("dev", devToken, "mysql"))

	t.Run("load data local", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "items.csv")
		var b strings.Builder
		for i := 1000; i < 1500; i++ {
			fmt.Fprintf(&b, "%d,loaded %d\n", i, i)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		driver.RegisterLocalFile(path)
		defer driver.DeregisterLocalFile(path)
		cfg := m.driverConfig("dev", devToken, "mysql")
		cfg.AllowAllFiles = false
		ldb := openDriver(t, cfg)
		res, err := ldb.ExecContext(ctx, "LOAD DATA LOCAL INFILE '"+path+"' INTO TABLE items FIELDS TERMINATED BY ',' (id, name)")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 500 {
			t.Fatalf("loaded %d rows", n)
		}
	})

	t.Run("blob over 16 MiB", func(t *testing.T) {
		admin := m.admin(t)
		var old int64
		if err := admin.QueryRow("SELECT @@global.max_allowed_packet").Scan(&old); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec("SET GLOBAL max_allowed_packet = 67108864"); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = admin.Exec(fmt.Sprintf("SET GLOBAL max_allowed_packet = %d", old)) }()
		// A session kept from an earlier client has the max_allowed_packet
		// of its login: a program name of its own takes a new one.
		bcfg := m.driverConfig("dev", devToken, "mysql")
		bcfg.ConnectionAttributes = "program_name:blob-test"
		bdb := openDriver(t, bcfg)
		big := bytes.Repeat([]byte("0123456789abcdef"), 17<<16) // 17 MiB
		big[0], big[len(big)-1] = 'A', 'Z'
		if _, err := bdb.ExecContext(ctx, "INSERT INTO items (id, data) VALUES (?, ?)", 9000, big); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SELECT data FROM items WHERE id = 9000", "SELECT data FROM items WHERE id = ?"} {
			var got []byte
			args := []any{}
			if strings.Contains(q, "?") {
				args = append(args, 9000)
			}
			if err := bdb.QueryRowContext(ctx, q, args...).Scan(&got); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if !bytes.Equal(got, big) {
				t.Fatalf("%s: %d bytes back, want %d", q, len(got), len(big))
			}
		}
	})

	t.Run("cancellation kills the query", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		start := time.Now()
		_, err := db.ExecContext(cctx, "SELECT SLEEP(30) /* airlock-cancel-me */")
		if err == nil || time.Since(start) > 10*time.Second {
			t.Fatalf("cancelled query: %v after %v", err, time.Since(start))
		}
		admin := m.admin(t)
		gone := pollUntil(10*time.Second, func() bool {
			var n int
			_ = admin.QueryRow("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE '%airlock-cancel-me%' AND info NOT LIKE '%processlist%'").Scan(&n)
			return n == 0
		})
		if !gone {
			t.Fatal("the cancelled query still runs upstream")
		}
	})

	t.Run("pool reuse", func(t *testing.T) {
		pdb := openDriver(t, m.driverConfig("dev", devToken, "mysql"))
		pdb.SetMaxOpenConns(2)
		pdb.SetMaxIdleConns(2)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() {
				var v int
				if err := pdb.QueryRowContext(ctx, "SELECT ? + 1", i).Scan(&v); err != nil || v != i+1 {
					errs <- fmt.Errorf("query %d: %v %d", i, err, v)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if s := pdb.Stats(); s.OpenConnections > 2 {
			t.Errorf("%d connections open", s.OpenConnections)
		}
	})
}

// TestMySQLKillQuery: KILL QUERY from a second connection, by the id
// CONNECTION_ID() shows, reaches the first session's upstream through
// Airlock.
func TestMySQLKillQuery(t *testing.T) {
	m := startMySQL(t, "policy:\n  rules: {admin.kill: allow}\n", "", "")
	ctx := context.Background()
	db := openDriver(t, m.driverConfig("dev", devToken, "mysql"))
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var id uint64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := conn.ExecContext(ctx, "SELECT SLEEP(30)")
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatalf("KILL QUERY: %v", err)
	}
	select {
	case err := <-done:
		// MariaDB answers a killed SLEEP with 1 (interrupted) or error 1317.
		if err != nil && myCode(err) != 1317 {
			t.Fatalf("killed query: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("KILL QUERY did not stop the query")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v", d)
	}
	var v int
	if err := conn.QueryRowContext(ctx, "SELECT 7").Scan(&v); err != nil || v != 7 {
		t.Fatalf("session after KILL QUERY: %v", err)
	}
	if _, err := db.ExecContext(ctx, "KILL QUERY 4"); myCode(err) != 1094 {
		t.Fatalf("KILL of an id Airlock does not know: %v", err)
	}
	if _, err := db.ExecContext(ctx, "SELECT 1; KILL 4"); myCode(err) != 1235 {
		t.Fatalf("KILL inside a multi-statement: %v", err)
	}
}

// TestMySQLHoldApprove: a DROP TABLE waits silently for approval and runs
// once approved from the CLI; an agent in retry mode gets the request id at
// once; a denial names the request.
func TestMySQLHoldApprove(t *testing.T) {
	t.Parallel()
	m := startMySQL(t, fmt.Sprintf(holdConfig, "20s"), "", "")
	m.exec(t, "CREATE TABLE doomed (id INT)", "CREATE TABLE kept (id INT)")
	ctx := context.Background()
	db := openDriver(t, m.driverConfig("dev", devToken, "mysql"))
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "DROP TABLE doomed")
		done <- err
	}()
	var id string
	if !pollUntil(20*time.Second, func() bool {
		for _, l := range strings.Split(approvalsCLI(t, m.instance, "list"), "\n") {
			if strings.Contains(l, "DROP TABLE doomed") {
				id = strings.Fields(l)[0]
				return true
			}
		}
		return false
	}) {
		t.Fatal("no pending request for the DROP TABLE")
	}
	select {
	case err := <-done:
		t.Fatalf("the held command returned before approval: %v", err)
	default:
	}
	approvalsCLI(t, m.instance, "approve", id, "--reason", "planned cleanup")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("approved DROP TABLE: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the approved command did not complete")
	}
	var n int
	_ = m.admin(t).QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'doomed'", m.db).Scan(&n)
	if n != 0 {
		t.Fatal("the approved DROP TABLE did not run")
	}

	// Retry mode (the agent): refused at once, the request id in the message.
	adb := openDriver(t, m.driverConfig("agent", "agent-token", "mysql"))
	_, err := adb.ExecContext(ctx, "DROP TABLE kept")
	if myCode(err) != 1227 || !strings.Contains(err.Error(), "approval request") || !strings.Contains(err.Error(), "schema.drop") {
		t.Fatalf("retry mode: %v", err)
	}
	// Deny: the hold ends with an error naming the request.
	go func() {
		_, err := db.ExecContext(ctx, "DROP TABLE kept")
		done <- err
	}()
	if !pollUntil(20*time.Second, func() bool {
		for _, l := range strings.Split(approvalsCLI(t, m.instance, "list"), "\n") {
			if strings.Contains(l, "pending") && strings.Contains(l, "DROP TABLE kept") && strings.Contains(l, " dev ") {
				id = strings.Fields(l)[0]
				return true
			}
		}
		return false
	}) {
		t.Fatal("no pending request for the second DROP TABLE")
	}
	approvalsCLI(t, m.instance, "deny", id, "--reason", "not today")
	if err := <-done; myCode(err) != 1227 || !strings.Contains(err.Error(), id) {
		t.Fatalf("denied: %v", err)
	}
	var v int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&v); err != nil {
		t.Fatalf("session after a denial: %v", err)
	}

	// An approved COM_STMT_PREPARE covers one execution; the next is held
	// again.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prepared := make(chan *sql.Stmt, 1)
	go func() {
		st, err := conn.PrepareContext(ctx, "DELETE FROM kept WHERE id > ? OR 1 = 1")
		if err != nil {
			done <- err
			return
		}
		prepared <- st
	}()
	approveNext := func(what string) {
		t.Helper()
		if !pollUntil(20*time.Second, func() bool {
			for _, l := range strings.Split(approvalsCLI(t, m.instance, "list"), "\n") {
				if strings.Contains(l, "pending") && strings.Contains(l, "DELETE FROM kept") {
					id = strings.Fields(l)[0]
					return true
				}
			}
			return false
		}) {
			t.Fatalf("no pending request for the %s", what)
		}
		approvalsCLI(t, m.instance, "approve", id)
	}
	approveNext("prepare")
	var st *sql.Stmt
	select {
	case st = <-prepared:
	case err := <-done:
		t.Fatalf("prepare: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the approved prepare did not complete")
	}
	if _, err := st.ExecContext(ctx, 0); err != nil {
		t.Fatalf("first execution, on the approval: %v", err)
	}
	go func() {
		_, err := st.ExecContext(ctx, 0)
		done <- err
	}()
	approveNext("second execution")
	if err := <-done; err != nil {
		t.Fatalf("second execution, approved again: %v", err)
	}
	replay := ""
	m.stop()
	for _, f := range recordings(t, m.instance) {
		out, _ := airlockCmd(t, m.instance, "replay", f)
		replay += out
	}
	if n := strings.Count(replay, "execute   DELETE FROM kept WHERE id > ? OR 1 = 1"); n != 2 {
		t.Errorf("replay shows %d executions, want 2:\n%s", n, replay)
	}
}

// TestMySQLMaskingAndRecording: an e-mail is masked in text and binary
// rows, with values still valid for their types; the session's recording
// replays with each statement and each execution, and verifies.
func TestMySQLMaskingAndRecording(t *testing.T) {
	masking := `
    masking:
      detect:
        - {entity: email, strategy: partial}
      columns:
        - {table_column: "*.customers.card", strategy: "null"}`
	m := startMySQL(t, "recording:\n  rows: all\n  parameters: true\n", "", masking)
	m.exec(t, "CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(64), card BIGINT NOT NULL, note TEXT)",
		"INSERT INTO customers VALUES (1, 'alice.liddell@example.com', 4111111111111111, 'write to bob@example.net')")
	ctx := context.Background()
	db := openDriver(t, m.driverConfig("dev", devToken, "mysql"))
	for _, tc := range []struct {
		name string
		args []any
	}{{"text", nil}, {"binary", []any{1}}} {
		q := "SELECT id, email, card, note FROM customers"
		if tc.args != nil {
			q += " WHERE id = ?"
		}
		var (
			id          int
			email, note string
			card        sql.NullInt64
		)
		if err := db.QueryRowContext(ctx, q, tc.args...).Scan(&id, &email, &card, &note); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if strings.Contains(email, "alice.liddell") || !strings.HasSuffix(email, "@example.com") || strings.Contains(note, "bob@") || card.Valid {
			t.Errorf("%s protocol: not masked: %q %q %v", tc.name, email, note, card)
		}
	}
	db.Close()
	m.stop()
	files := recordings(t, m.instance)
	if len(files) == 0 {
		t.Fatal("no recording")
	}
	var replay string
	for _, f := range files {
		out, code := airlockCmd(t, m.instance, "replay", f)
		if code != 0 {
			t.Fatalf("replay exit %d:\n%s", code, out)
		}
		replay += out
		if v, code := airlockCmd(t, m.instance, "verify", f); code != 0 || !strings.Contains(v, "intact") {
			t.Fatalf("verify (%d): %s", code, v)
		}
	}
	for _, want := range []string{"(mysql)", "query     SELECT id, email, card, note FROM customers", "prepare   SELECT id, email, card, note FROM customers WHERE id = ?",
		"execute   SELECT id, email, card, note FROM customers WHERE id = ?", "a***@example.com", "b***@example.net"} {
		if !strings.Contains(replay, want) {
			t.Errorf("replay lacks %q:\n%s", want, replay)
		}
	}
	cells := map[string]bool{}
	for _, l := range strings.Split(replay, "\n") {
		for _, c := range strings.Split(l, "|") {
			cells[strings.TrimSpace(c)] = true
		}
	}
	if !cells["1"] || cells[`\x01\x00\x00\x00`] {
		t.Errorf("the binary row's id is not shown as text:\n%s", replay)
	}
	if strings.Contains(replay, "alice.liddell") || strings.Contains(replay, "4111111111111111") {
		t.Errorf("the recording holds unmasked values:\n%s", replay)
	}
}

// rawClient logs in to Airlock with the wire package's client and returns
// the session, for sending packets no driver would.
func (m *mysqlInstance) rawClient(t *testing.T) *wire.Upstream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	up, err := wire.Dial(ctx, wire.DialConfig{Address: m.addr, User: "dev", Password: devToken, Database: "mysql",
		TLS: wire.TLSConfig{Mode: "disable"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Conn.Close() })
	_ = up.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	return up
}

// roundTrip sends one command and reads one packet of its answer.
func roundTrip(t *testing.T, up *wire.Upstream, seq uint8, payload []byte) (wire.Packet, error) {
	t.Helper()
	if _, err := wire.WritePacket(up.Conn, seq, payload); err != nil {
		return wire.Packet{}, err
	}
	return wire.ReadPacket(up.Conn, 1<<24)
}

// errCode is the error code of an ERR packet, 0 for any other packet.
func errCode(p wire.Packet) uint16 {
	if e, err := wire.ParseERR(p.Payload); err == nil {
		return e.Code
	}
	return 0
}

// TestMySQLBadInput: malformed, unknown, out-of-order and oversized
// packets, a handshake that stops half-way, a replication command; each
// gets MySQL's own error or a clean close, and Airlock keeps serving.
func TestMySQLBadInput(t *testing.T) {
	m := startMySQL(t, "mysql:\n  max_packet_size: 1MiB\n", "", "")
	ping := []byte{mysql.COM_PING}
	stillServing := func(t *testing.T) {
		t.Helper()
		up := m.rawClient(t)
		if p, err := roundTrip(t, up, 0, ping); err != nil || !bytes.HasPrefix(p.Payload, []byte{0}) {
			t.Fatalf("Airlock stopped serving: %v % x", err, p.Payload)
		}
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    uint16
	}{
		{"malformed field list", []byte("\x04users"), 1835},
		{"unknown command", []byte{0x99, 1, 2}, 1047},
		{"execute of an unknown statement", []byte("\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00"), 1243},
		{"replication", []byte("\x12\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00bin.000001"), 1235},
		{"change user", []byte("\x11dev\x00\x00mysql\x00"), 1235},
		{"empty command", []byte{}, 1835},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := m.rawClient(t)
			p, err := roundTrip(t, up, 0, tc.payload)
			if err != nil || errCode(p) != tc.want {
				t.Fatalf("got %v % x, want error %d", err, p.Payload, tc.want)
			}
			if p, err := roundTrip(t, up, 0, ping); err != nil || !bytes.HasPrefix(p.Payload, []byte{0}) {
				t.Fatalf("session after the error: %v % x", err, p.Payload)
			}
		})
	}
	t.Run("reset connection forgets statements", func(t *testing.T) {
		up := m.rawClient(t)
		p, err := roundTrip(t, up, 0, append([]byte{mysql.COM_STMT_PREPARE}, "SELECT 1"...))
		if err != nil || p.Payload[0] != 0 {
			t.Fatalf("prepare: %v % x", err, p.Payload)
		}
		id := binary.LittleEndian.Uint32(p.Payload[1:])
		defs := 1 // the column definition, and its EOF without CLIENT_DEPRECATE_EOF
		if up.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
			defs++
		}
		for range defs {
			if _, err := wire.ReadPacket(up.Conn, 1<<20); err != nil {
				t.Fatal(err)
			}
		}
		if p, err := roundTrip(t, up, 0, []byte{mysql.COM_RESET_CONNECTION}); err != nil || p.Payload[0] != 0 {
			t.Fatalf("reset: %v % x", err, p.Payload)
		}
		exec := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_EXECUTE}, id)
		if p, err := roundTrip(t, up, 0, append(exec, 0, 1, 0, 0, 0)); err != nil || errCode(p) != 1243 {
			t.Fatalf("execute after reset: %v % x", err, p.Payload)
		}
	})
	t.Run("out of order", func(t *testing.T) {
		up := m.rawClient(t)
		p, err := roundTrip(t, up, 5, ping)
		if err != nil || errCode(p) != 1156 {
			t.Fatalf("got %v % x, want 1156", err, p.Payload)
		}
		if _, err := wire.ReadPacket(up.Conn, 1<<20); err == nil {
			t.Fatal("the session went on after packets out of order")
		}
		stillServing(t)
	})
	t.Run("oversized", func(t *testing.T) {
		up := m.rawClient(t)
		big := append([]byte{mysql.COM_QUERY}, bytes.Repeat([]byte("x"), 2<<20)...)
		// Airlock answers after the header, while the packet is still being
		// sent: read the answer alongside.
		go func() { _, _ = wire.WritePacket(up.Conn, 0, big) }()
		p, err := wire.ReadPacket(up.Conn, 1<<20)
		if err != nil || errCode(p) != 1153 {
			t.Fatalf("got %v % x, want 1153", err, p.Payload)
		}
		stillServing(t)
	})
	t.Run("handshake stops half-way", func(t *testing.T) {
		for _, partial := range [][]byte{nil, {0x20, 0, 0}, {0x20, 0, 0, 1, 0x0d, 0xa6}} {
			c, err := net.DialTimeout("tcp", m.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := wire.ReadPacket(c, 1<<16); err != nil {
				t.Fatalf("greeting: %v", err)
			}
			_, _ = c.Write(partial)
			c.Close()
		}
		stillServing(t)
	})
	t.Run("garbage handshake response", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", m.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := wire.ReadPacket(c, 1<<16); err != nil {
			t.Fatal(err)
		}
		if _, err := wire.WritePacket(c, 1, []byte("\xff\xff\x0f\x00garbage")); err != nil {
			t.Fatal(err)
		}
		p, err := wire.ReadPacket(c, 1<<16)
		if err != nil || errCode(p) != 1043 {
			t.Fatalf("got %v % x, want 1043", err, p.Payload)
		}
		stillServing(t)
	})
}

// TestMySQLUnsolicitedFileRequest: an upstream that asks for a client file
// the statement did not name is refused; the client gets an error, its
// file stays on its machine, and the session goes on.
func TestMySQLUnsolicitedFileRequest(t *testing.T) {
	fake := startFakeUpstream(t)
	evil := fmt.Sprintf(`  - name: evil
    protocol: mysql
    upstream: {address: %s, database: any, user: root, tls: {mode: disable}}
    allow: [dev]
    max_sessions: 4 # no login of Airlock's own to read max_connections, which the fake would also ask for a file
`, fake.addr)
	cfg := baseConfig("postgres", "policy:\n  rules: {reach.file: allow}\n", "\n"+mysqlConn(mariadbDatabase(t), "")+evil)
	cfg = strings.Replace(cfg, "listen:\n  postgres: 127.0.0.1:0\n", "listen:\n  postgres: 127.0.0.1:0\n  mysql: 127.0.0.1:0\n", 1)
	in := startAirlock(t, cfg)
	var addr string
	pollUntil(20*time.Second, func() bool {
		mm := mysqlListeningRE.FindStringSubmatch(in.Logs())
		if mm != nil {
			addr = mm[1]
		}
		return mm != nil
	})
	e := &mysqlInstance{instance: in, addr: addr}
	path := filepath.Join(t.TempDir(), "asked.csv")
	_ = os.WriteFile(path, []byte("1\n"), 0o600)
	driver.RegisterLocalFile(path)
	driver.RegisterLocalFile("/etc/hostname")
	defer driver.DeregisterLocalFile(path)
	defer driver.DeregisterLocalFile("/etc/hostname")
	db := openDriver(t, e.driverConfig("dev", devToken, "evil"))
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, q := range []string{"SELECT 1", "LOAD DATA LOCAL INFILE '" + path + "' INTO TABLE t"} {
		_, err := db.ExecContext(ctx, q)
		if myCode(err) != 1235 || !strings.Contains(err.Error(), "/etc/hostname") {
			t.Fatalf("%s: %v, want Airlock's refusal of the file request", q, err)
		}
		if got := fake.fileBytes(); got != 0 {
			t.Fatalf("the upstream received %d bytes of a file", got)
		}
	}
	if _, err := db.ExecContext(ctx, "DO 1"); err != nil {
		t.Fatalf("session after the refusal: %v", err)
	}
}

// fakeUpstream is a MySQL server that answers the first two COM_QUERYs of
// each session with a request for /etc/hostname, and every later one with
// OK.
type fakeUpstream struct {
	addr  string
	mu    sync.Mutex
	bytes int // file bytes received
}

func (f *fakeUpstream) fileBytes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}

func startFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				f.serve(c)
			})
		}
	})
	return f
}

func (f *fakeUpstream) serve(c net.Conn) {
	caps := wire.RelayCapabilities | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_SECURE_CONNECTION |
		mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_ATTRS
	g := &wire.Greeting{ServerVersion: "8.0.36-fake", ConnectionID: 9, Nonce: bytes.Repeat([]byte{'n'}, 20),
		Capabilities: caps, Charset: 45, Status: mysql.SERVER_STATUS_AUTOCOMMIT, AuthPlugin: wire.PluginNative}
	if _, err := wire.WritePacket(c, 0, wire.AppendGreeting(nil, g)); err != nil {
		return
	}
	p, err := wire.ReadPacket(c, 1<<20)
	if err != nil {
		return
	}
	resp, err := wire.ParseHandshakeResponse(p.Payload)
	if err != nil {
		return
	}
	negotiated := resp.Capabilities & caps
	ok := func(seq uint8) []byte {
		out, _ := wire.AppendPacket(nil, seq, wire.AppendOK(nil, &wire.OK{Status: mysql.SERVER_STATUS_AUTOCOMMIT}, negotiated))
		return out
	}
	if _, err := c.Write(ok(2)); err != nil {
		return
	}
	asked := 0
	for {
		p, err := wire.ReadPacket(c, 1<<24)
		if err != nil || len(p.Payload) == 0 || p.Payload[0] == mysql.COM_QUIT {
			return
		}
		if p.Payload[0] != mysql.COM_QUERY || asked == 2 {
			_, _ = c.Write(ok(1))
			continue
		}
		asked++
		req, _ := wire.AppendPacket(nil, 1, append([]byte{mysql.LocalInFile_HEADER}, "/etc/hostname"...))
		if _, err := c.Write(req); err != nil {
			return
		}
		for {
			p, err := wire.ReadPacket(c, 1<<24)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.bytes += len(p.Payload)
			f.mu.Unlock()
			if len(p.Payload) == 0 {
				_, _ = c.Write(ok(p.Seq + 1))
				break
			}
		}
	}
}

// mysql2Script connects with Node's mysql2, an independent handshake and
// codec, and prints what it read with both protocols.
const mysql2Script = `
const mysql = require('mysql2/promise');
(async () => {
  const c = await mysql.createConnection({host: process.env.HOST, port: +process.env.PORT,
    user: 'dev', password: process.env.TOKEN, database: 'mysql'});
  const [text] = await c.query("SELECT 'a@example.com' AS email, 41 + 1 AS n, CAST('2024-02-29' AS DATE) AS d");
  const [bin] = await c.execute("SELECT ? + 1 AS n, ? AS s, 'b@example.com' AS email", [41, 'x']);
  let missing = 0;
  try { await c.query('SELECT * FROM airlock_missing_table'); } catch (e) { missing = e.errno; }
  const [after] = await c.query('SELECT 7 AS seven');
  console.log(JSON.stringify({text: text[0].email + ' ' + text[0].n, bin: bin[0].n + ' ' + bin[0].s + ' ' + bin[0].email,
    missing, after: after[0].seven}));
  await c.end();
  let denied = 0;
  // A wrong token needs full authentication, which mysql2 does over TLS
  // (Airlock's certificate is self-signed here).
  try { await mysql.createConnection({host: process.env.HOST, port: +process.env.PORT, user: 'dev', password: 'wrong',
    database: 'mysql', ssl: {rejectUnauthorized: false}}); }
  catch (e) { denied = e.errno || e.message; }
  console.log(JSON.stringify({denied}));
})().catch(e => { console.error(e); process.exit(1); });
`

// TestMySQLNodeMysql2 drives Node's mysql2 through Airlock. npm installs
// it into a temporary directory.
func TestMySQLNodeMysql2(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if testenv.InCI() {
			t.Fatal("node and npm are needed for the mysql2 test")
		}
		t.Skip("node or npm is not installed")
	}
	m := startMySQL(t, "", "", "\n    masking:\n      detect:\n        - {entity: email, strategy: partial}")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", dir, "mysql2@3")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install mysql2: %v\n%s", err, out)
	}
	script := filepath.Join(dir, "check.js")
	if err := os.WriteFile(script, []byte(mysql2Script), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(m.addr)
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOST="+host, "PORT="+port, "TOKEN="+devToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := `{"text":"a***@example.com 42","bin":"42 x b***@example.com","missing":1146,"after":7}` + "\n" + `{"denied":1045}` + "\n"
	if string(out) != want {
		t.Fatalf("mysql2 printed\n%s\nwant\n%s", out, want)
	}
}
