package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Wide-row table: 100 rows of 4 columns per query, with e-mail addresses
// and card-number-like values so that masking has work to do.
const (
	wideTable = "bench_wide"
	wideRows  = 10000
	widePage  = 100
)

// findTools locates pgbench and pgbouncer, installing pgbouncer from the
// distribution's package when it is missing (the harness must work from a
// clean checkout).
func (b *bench) findTools(ctx context.Context) error {
	var err error
	if b.pgbenchBin, err = exec.LookPath("pgbench"); err != nil {
		return errors.New("pgbench not found: it ships with the PostgreSQL server packages (Debian: postgresql-15)")
	}
	if b.pgbouncerBin, err = lookPath("pgbouncer", "/usr/sbin/pgbouncer"); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("pgbouncer not found; install it (Debian: apt-get install pgbouncer) or run the harness as root to let it install it")
	}
	b.log.Info("pgbouncer not found: installing the distribution package")
	install := func() error {
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "pgbouncer")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := runCmd(ctx, cmd)
		if err != nil {
			return fmt.Errorf("apt-get install pgbouncer: %w\n%s", err, tail(out, 1500))
		}
		return nil
	}
	if err := install(); err != nil {
		upd := exec.Command("apt-get", "update")
		upd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, uerr := runCmd(ctx, upd); uerr != nil {
			return fmt.Errorf("apt-get update: %w\n%s", uerr, tail(out, 1500))
		}
		if err := install(); err != nil {
			return err
		}
	}
	b.pgbouncerBin, err = lookPath("pgbouncer", "/usr/sbin/pgbouncer")
	return err
}

// lookPath finds name on PATH or at fallback (/usr/sbin is often not on a
// non-root user's PATH).
func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if st, err := os.Stat(fallback); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return fallback, nil
	}
	return "", fmt.Errorf("%s not found", name)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// pgURL is a libpq URL for db on the local server as postgres.
func (b *bench) pgURL(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&application_name=airlock-bench", b.opt.pgAddr, db)
}

// prepareDB creates the pgbench database at the wanted scale, the wide-row
// and the ordinary-row tables, unless they are already there.
func (b *bench) prepareDB(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, b.pgURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s as postgres: %w", b.opt.pgAddr, err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", b.opt.db).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", b.opt.db, err)
	}
	if !exists {
		b.log.Info("creating the benchmark database", "db", b.opt.db)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{b.opt.db}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", b.opt.db, err)
		}
	}
	conn, err := pgx.Connect(ctx, b.pgURL(b.opt.db))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", b.opt.db, err)
	}
	defer conn.Close(ctx)
	var branches int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pgbench_branches").Scan(&branches)
	if err != nil || branches != b.opt.scale {
		b.log.Info("initialising pgbench tables", "db", b.opt.db, "scale", b.opt.scale)
		cmd := exec.Command(b.pgbenchBin, "-i", "-q", "-s", fmt.Sprint(b.opt.scale), "-h", b.pgHost(), "-p", b.pgPort(), "-U", "postgres", b.opt.db)
		cmd.Env = pgEnv("")
		if out, err := runCmd(ctx, cmd); err != nil {
			return fmt.Errorf("pgbench -i -s %d: %w\n%s", b.opt.scale, err, tail(out, 1500))
		}
	}
	if err := b.prepareWide(ctx, conn); err != nil {
		return err
	}
	return b.prepareOrdinary(ctx, conn)
}

// prepareWide (re)creates the wide-row table when it is missing or short.
func (b *bench) prepareWide(ctx context.Context, conn *pgx.Conn) error {
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+wideTable).Scan(&n); err == nil && n == wideRows {
		return nil
	}
	b.log.Info("creating the wide-row table", "table", wideTable, "rows", wideRows)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create %s: %w", wideTable, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+wideTable); err != nil {
		return fmt.Errorf("drop %s: %w", wideTable, err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE "+wideTable+" (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL, card text NOT NULL)"); err != nil {
		return fmt.Errorf("create %s: %w", wideTable, err)
	}
	rows := make([][]any, wideRows)
	for i := range rows {
		id := i + 1
		rows[i] = []any{int32(id), fmt.Sprintf("customer %05d", id), fmt.Sprintf("customer.%05d@example.com", id), cardNumber(id)}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{wideTable}, []string{"id", "name", "email", "card"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("fill %s: %w", wideTable, err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE "+wideTable); err != nil {
		return fmt.Errorf("analyze %s: %w", wideTable, err)
	}
	return tx.Commit(ctx)
}

// cardNumber returns a 16-digit, Luhn-valid, card-like number for id,
// grouped in fours as people write them (the 4000 prefix is a test range).
func cardNumber(id int) string {
	d := fmt.Sprintf("4000%011d", id)
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-i)%2 == 1 { // doubled positions, counted from the check digit's left
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	d += fmt.Sprint((10 - sum%10) % 10)
	return d[0:4] + " " + d[4:8] + " " + d[8:12] + " " + d[12:16]
}

// vacuumForRW does what pgbench does before a TPC-B-like run (the harness
// runs pgbench with -n, so that every target sees the same tables and no
// VACUUM or TRUNCATE has to pass through a gateway's policy).
func (b *bench) vacuumForRW(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.pgURL(b.opt.db))
	if err != nil {
		return fmt.Errorf("connect for vacuum: %w", err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{"VACUUM pgbench_branches", "VACUUM pgbench_tellers", "TRUNCATE pgbench_history"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (b *bench) pgHost() string { h, _, _ := strings.Cut(b.opt.pgAddr, ":"); return h }
func (b *bench) pgPort() string { _, p, _ := strings.Cut(b.opt.pgAddr, ":"); return p }

// pgEnv is the environment for libpq programs: the harness's own minus any
// PG* variable that could redirect or reconfigure them, plus password and
// plaintext transport (every leg of every target is plaintext on loopback,
// so that TLS cost does not differ between targets).
func pgEnv(password string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	env = append(env, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return env
}

// upstreamHost is the host Airlock and pgbouncer reach PostgreSQL at: the
// socket directory with -upstream-socket, else the TCP host.
func (b *bench) upstreamHost() string {
	if b.opt.socketDir != "" {
		return b.opt.socketDir
	}
	return b.pgHost()
}

// upstreamAddr is Airlock's upstream address for the same.
func (b *bench) upstreamAddr() string {
	if b.opt.socketDir != "" {
		return filepath.Join(b.opt.socketDir, ".s.PGSQL."+b.pgPort())
	}
	return b.opt.pgAddr
}

// upstreamDesc says in the report how the gateways reach PostgreSQL.
func (b *bench) upstreamDesc() string {
	if b.opt.socketDir != "" {
		return fmt.Sprintf("Airlock and pgbouncer reach PostgreSQL through its Unix-domain socket in %s (`-upstream-socket`), as a gateway on the database host would; pgbench reaches every target, and PostgreSQL directly, over TCP on %s", b.opt.socketDir, b.pgHost())
	}
	return fmt.Sprintf("Airlock and pgbouncer reach PostgreSQL over TCP at %s, like pgbench's direct target", b.opt.pgAddr)
}
