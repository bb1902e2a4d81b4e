package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
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
		bdb := openDriver(t, m.driverConfig("dev", devToken, "mysql"))
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
