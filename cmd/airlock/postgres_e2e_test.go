package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func pgxConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestPsqlLikeDirect runs one psql script directly and through Airlock and
// expects the same output.
func TestPsqlLikeDirect(t *testing.T) {
	needPsql(t)
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	script := `
CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL, born date, tags text[], doc jsonb);
INSERT INTO people (name, born, tags, doc) VALUES
  ('Ada', '1815-12-10', '{math,engines}', '{"k": [1,2,{"x":null}]}'),
  ('Grace', '1906-12-09', NULL, '{}');
SELECT * FROM people ORDER BY id;
\d people
BEGIN;
UPDATE people SET name = 'Ada L.' WHERE id = 1;
SAVEPOINT s1;
SELECT 1/0;
ROLLBACK TO s1;
COMMIT;
SELECT name FROM people ORDER BY id;
SELECT count(*) FROM generate_series(1, 1000);
\echo done
`
	host, port, _ := net.SplitHostPort(testenv.PostgresAddr)
	direct := fmt.Sprintf("host=%s port=%s user=postgres dbname=%s", host, port, db)
	// Each run gets a fresh table: drop it directly between runs (through
	// Airlock a DROP TABLE waits for approval).
	run := func(dsn string) string {
		out, _ := psql(t, dsn, script, "-v", "ON_ERROR_STOP=0")
		if _, err := psql(t, direct, "", "-c", "DROP TABLE people"); err != nil {
			t.Fatalf("drop: %v", err)
		}
		return out
	}
	want := run(direct)
	got := run(in.dsn("dev", devToken, "main", "sslmode=disable"))
	if got != want {
		t.Fatalf("psql through Airlock differs from direct.\n--- direct\n%s\n--- airlock\n%s", want, got)
	}
	if !strings.Contains(got, "division by zero") || !strings.Contains(got, "Ada L.") {
		t.Fatalf("unexpected output:\n%s", got)
	}
}

func TestPsqlCopyBothWays(t *testing.T) {
	needPsql(t)
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	dsn := in.dsn("dev", devToken, "main", "sslmode=require")
	dir := t.TempDir()
	src := filepath.Join(dir, "in.csv")
	var b strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&b, "%d,name %d,\"quoted, \"\"text\"\" %d\"\n", i, i, i)
	}
	if err := os.WriteFile(src, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := psql(t, dsn, "", "-c", "CREATE TABLE c (id int, name text, note text)"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out, err := psql(t, dsn, "", "-c", `\copy c FROM '`+src+`' WITH (FORMAT csv)`)
	if err != nil || !strings.Contains(out, "COPY 5000") {
		t.Fatalf("copy in: %v: %s", err, out)
	}
	dst := filepath.Join(dir, "out.csv")
	out, err = psql(t, dsn, "", "-c", `\copy (SELECT * FROM c ORDER BY id) TO '`+dst+`' WITH (FORMAT csv)`)
	if err != nil || !strings.Contains(out, "COPY 5000") {
		t.Fatalf("copy out: %v: %s", err, out)
	}
	got, _ := os.ReadFile(dst)
	if string(got) != b.String() {
		t.Fatalf("copied data differs (%d vs %d bytes)", len(got), b.Len())
	}
	// A failing COPY IN leaves the session usable.
	bad := filepath.Join(dir, "bad.csv")
	_ = os.WriteFile(bad, []byte("1,a,b\nnot-a-number,b,c\n"), 0o600)
	out, err = psql(t, dsn, "", "-v", "ON_ERROR_STOP=0", "-c", `\copy c FROM '`+bad+`' WITH (FORMAT csv)`, "-c", "SELECT count(*) FROM c")
	if !strings.Contains(out, "invalid input syntax") || !strings.Contains(out, "5000") {
		t.Fatalf("failed copy: %v: %s", err, out)
	}
}

func TestPsqlCancel(t *testing.T) {
	needPsql(t)
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	cmd := exec.Command("psql", "-X", in.dsn("dev", devToken, "main", "sslmode=disable"), "-c", "SELECT pg_sleep(60)")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("psql did not return after cancel: %s", out.String())
	}
	if !strings.Contains(out.String(), "canceling statement due to user request") {
		t.Fatalf("cancel not delivered: %s", out.String())
	}
	t.Logf("cancel took %v", time.Since(start))
}

func TestPgxPreparedBatchNotify(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := c.Exec(ctx, "CREATE TABLE kv (k text PRIMARY KEY, v int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "ins", "INSERT INTO kv VALUES ($1, $2)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := c.Exec(ctx, "ins", fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
	}
	b := &pgx.Batch{}
	for i := 0; i < 20; i++ {
		b.Queue("SELECT v FROM kv WHERE k = $1", fmt.Sprint("k", i))
	}
	br := c.SendBatch(ctx, b)
	for i := 0; i < 20; i++ {
		var v int
		if err := br.QueryRow().Scan(&v); err != nil || v != i {
			t.Fatalf("batch %d: %v %d", i, err, v)
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	// Binary results, several types.
	var (
		n  int64
		f  float64
		ts time.Time
		ar []string
	)
	if err := c.QueryRow(ctx, "SELECT 9007199254740993::int8, 1.5::float8, now(), ARRAY['a','b']").Scan(&n, &f, &ts, &ar); err != nil {
		t.Fatal(err)
	}
	if n != 9007199254740993 || f != 1.5 || len(ar) != 2 {
		t.Fatalf("binary values: %d %v %v", n, f, ar)
	}
	// LISTEN on one session, NOTIFY from another.
	l := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := l.Exec(ctx, "LISTEN airlock_test"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SELECT pg_notify('airlock_test', 'payload 1')"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nt, err := l.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if nt.Channel != "airlock_test" || nt.Payload != "payload 1" {
		t.Fatalf("notification %+v", nt)
	}
	// A session's own notification carries the process id it was given.
	if _, err := l.Exec(ctx, "NOTIFY airlock_test, 'self'"); err != nil {
		t.Fatal(err)
	}
	nt, err = l.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if nt.PID != l.PgConn().PID() {
		t.Fatalf("own notification pid %d, session pid %d", nt.PID, l.PgConn().PID())
	}
}

func TestMillionRowsBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a million rows")
	}
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	before := in.peakRSS(t)
	rows, err := c.Query(ctx, "SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g")
	if err != nil {
		t.Fatal(err)
	}
	var count, sum int64
	for rows.Next() {
		var g int64
		var s string
		if err := rows.Scan(&g, &s); err != nil {
			t.Fatal(err)
		}
		count++
		sum += g
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != 1000000 || sum != 500000500000 {
		t.Fatalf("got %d rows, sum %d", count, sum)
	}
	after := in.peakRSS(t)
	// About 120 MB crossed the gateway; its peak resident memory may grow
	// by buffers, not by the result.
	t.Logf("airlock peak RSS %d KiB before, %d KiB after streaming ~120 MB", before, after)
	if after-before > 48*1024 {
		t.Fatalf("peak RSS grew by %d KiB while streaming: results are being buffered", after-before)
	}
}

func TestTLSRequired(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	c := pgxConnect(t, strings.Replace(in.url("dev", devToken, "main", ""), "sslmode=disable", "sslmode=require", 1))
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is not TLS: %T", c.PgConn().Conn())
	}
	var v int
	if err := c.QueryRow(context.Background(), "SELECT 42").Scan(&v); err != nil || v != 42 {
		t.Fatal(err)
	}
}

// rawStartup writes a startup message by hand.
func rawStartup(params ...string) []byte {
	body := []byte{0, 3, 0, 0}
	for _, p := range params {
		body = append(body, p...)
		body = append(body, 0)
	}
	body = append(body, 0)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	return append(out, body...)
}

// readError reads server messages until an ErrorResponse and returns its
// SQLSTATE, or "" when the server closed first.
func readError(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return ""
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return ""
		}
		if hdr[0] == 'E' {
			for _, f := range strings.Split(string(body), "\x00") {
				if strings.HasPrefix(f, "C") {
					return f[1:]
				}
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "postgres: {max_message_size: 1MiB}", ""))
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", in.pgAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	login := func(t *testing.T) net.Conn {
		c := dial(t)
		c.Write(rawStartup("user", "dev", "database", "main"))
		// AuthenticationCleartextPassword
		hdr := make([]byte, 9)
		io.ReadFull(c, hdr)
		pw := append([]byte("p"), binary.BigEndian.AppendUint32(nil, uint32(4+len(devToken)+1))...)
		pw = append(append(pw, devToken...), 0)
		c.Write(pw)
		// Read until ReadyForQuery.
		for {
			h := make([]byte, 5)
			if _, err := io.ReadFull(c, h); err != nil {
				t.Fatalf("login: %v", err)
			}
			b := make([]byte, binary.BigEndian.Uint32(h[1:])-4)
			io.ReadFull(c, b)
			if h[0] == 'Z' {
				return c
			}
			if h[0] == 'E' {
				t.Fatalf("login refused: %q", b)
			}
		}
	}
	t.Run("garbage startup", func(t *testing.T) {
		c := dial(t)
		c.Write([]byte{0, 0, 0, 9, 1, 2, 3, 4, 5})
		if code := readError(t, c); code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("huge startup length", func(t *testing.T) {
		c := dial(t)
		c.Write([]byte{0x7f, 0, 0, 0, 0, 3, 0, 0})
		if code := readError(t, c); code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("unknown message after login", func(t *testing.T) {
		c := login(t)
		c.Write([]byte{'~', 0, 0, 0, 4})
		if code := readError(t, c); code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("bad length after login", func(t *testing.T) {
		c := login(t)
		c.Write([]byte{'Q', 0, 0, 0, 2})
		if code := readError(t, c); code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("oversized message", func(t *testing.T) {
		c := login(t)
		c.Write([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
		if code := readError(t, c); code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("truncated query", func(t *testing.T) {
		c := login(t)
		c.Write([]byte{'Q', 0, 0, 0, 9, 'S', 'E', 'L', 'E', 'C'})
		c.(*net.TCPConn).CloseWrite()
		if code := readError(t, c); code != "" && code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("query without terminator", func(t *testing.T) {
		c := login(t)
		c.Write([]byte{'Q', 0, 0, 0, 8, 'S', 'E', 'L', 'E'})
		if code := readError(t, c); code != "08P01" {
			t.Fatalf("code %q", code)
		}
	})
	// Airlock itself is unharmed: a normal session still works.
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	var v int
	if err := c.QueryRow(context.Background(), "SELECT 7").Scan(&v); err != nil || v != 7 {
		t.Fatal(err)
	}
}

func TestAuthErrorsThroughBinary(t *testing.T) {
	db := testenv.PostgresDB(t)
	down := `  - name: down
    protocol: postgres
    upstream: {address: "127.0.0.1:1", database: x, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: ["*"]
  - name: devonly
    protocol: postgres
    upstream: {address: "` + testenv.PostgresAddr + `", database: ` + db + `, user: postgres, tls: {mode: disable}}
    allow: [dev]`
	in := startAirlock(t, baseConfig(db, "", down))
	ctx := context.Background()
	for _, tc := range []struct{ name, url, code string }{
		{"wrong token", in.url("dev", "wrong", "main", ""), "28P01"},
		{"unknown identity", in.url("eve", devToken, "main", ""), "28P01"},
		{"unknown connection", in.url("dev", devToken, "nope", ""), "28000"},
		{"forbidden connection", in.url("agent", "agent-token", "devonly", ""), "28000"},
		{"upstream down", in.url("dev", devToken, "down", ""), "08001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgconn.Connect(ctx, tc.url)
			if got := pgCode(err); got != tc.code {
				t.Fatalf("code %q want %q: %v", got, tc.code, err)
			}
			if strings.Contains(err.Error(), upstreamSecret) {
				t.Fatal("error carries the upstream password")
			}
		})
	}
	m := in.metrics(t)
	for _, want := range []string{`airlock_auth_failures_total{protocol="postgres",reason="token"} 2`,
		`airlock_auth_failures_total{protocol="postgres",reason="connection"} 2`,
		`airlock_upstream_errors_total{connection="down",protocol="postgres"} 1`,
		`airlock_connections_total{connection="",outcome="rejected",protocol="postgres"} 4`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func pgxConnectErr(url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err == nil {
		c.Close(ctx)
	}
	return c, err
}
