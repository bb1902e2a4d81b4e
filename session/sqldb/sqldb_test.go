package sqldb

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestValidateHeartbeat: the replica heartbeat settings are checked, and
// a stale limit under two heartbeats is refused.
func TestValidateHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{Driver: "postgres", DSN: "postgres://a@b/c"}, ""},
		{"set", Config{Driver: "postgres", DSN: "postgres://a@b/c", Heartbeat: time.Second, StaleAfter: 3 * time.Second}, ""},
		{"negative", Config{Heartbeat: -time.Second}, "store.heartbeat: must not be negative"},
		{"too close", Config{Heartbeat: 20 * time.Second}, "store.stale_after: 30s is less than twice the heartbeat (20s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate("store")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	if d := (Config{}).WithDefaults(); d.Heartbeat != DefaultHeartbeat || d.StaleAfter != DefaultStaleAfter {
		t.Errorf("WithDefaults = %+v", d)
	}
}
