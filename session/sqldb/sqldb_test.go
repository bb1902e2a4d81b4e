package sqldb

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

func TestRebind(t *testing.T) {
	q := "SELECT a FROM t WHERE b = ? AND c IN (?, ?)"
	if got := Postgres.Rebind(q); got != "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)" {
		t.Fatalf("postgres: %s", got)
	}
	if got := SQLite.Rebind(q); got != q {
		t.Fatalf("sqlite: %s", got)
	}
}

func TestMigrate(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s := Schema{Name: "test", Statements: []string{
		`CREATE TABLE IF NOT EXISTS t (id INTEGER)`,
		`CREATE TABLE IF NOT EXISTS t_schema (version INTEGER NOT NULL)`,
	}, VersionTable: "t_schema", Version: 2}
	for range 2 { // idempotent
		if err := Migrate(ctx, db, SQLite, s); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t_schema`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("version rows %d, %v", n, err)
	}
	s.Version = 1
	if err := Migrate(ctx, db, SQLite, s); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("an older binary must refuse a newer schema, got %v", err)
	}
}
