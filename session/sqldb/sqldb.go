// Package sqldb is the shared SQL store: the one database that the
// approvals store and the session index both keep their tables in. It opens
// it (embedded SQLite by default, or a PostgreSQL shared by replicas) from
// the `store:` block, rewrites placeholders for the dialect, and creates
// schemas idempotently so that replicas starting together can run it at
// once.
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Dialect names the SQL database behind a store: database/sql drivers
// "sqlite" (modernc.org/sqlite) and "pgx" (github.com/jackc/pgx/v5/stdlib).
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Rebind rewrites a query written with ? placeholders for the dialect:
// PostgreSQL wants $1, $2, …. The query must not contain a literal '?'.
func (d Dialect) Rebind(q string) string {
	if d != Postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Schema is one component's tables and the version they are at.
type Schema struct {
	// Name says whose schema it is, in errors ("approvals").
	Name string
	// LockKey is the PostgreSQL advisory lock held while creating it, so
	// that replicas starting together do not race on CREATE … IF NOT EXISTS.
	LockKey int64
	// Statements create the tables idempotently; one of them creates
	// VersionTable (version INTEGER NOT NULL).
	Statements   []string
	VersionTable string
	Version      int
}

// Migrate creates s in one transaction and records or checks its version:
// a database written by a newer Airlock is refused rather than misread.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, s Schema) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create %s schema: %w", s.Name, err)
	}
	defer tx.Rollback()
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.LockKey); err != nil {
			return fmt.Errorf("create %s schema: lock: %w", s.Name, err)
		}
	}
	for _, q := range s.Statements {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create %s schema: %w", s.Name, err)
		}
	}
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM `+s.VersionTable).Scan(&v); err != nil {
		return fmt.Errorf("create %s schema: read version: %w", s.Name, err)
	}
	switch {
	case !v.Valid:
		if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO `+s.VersionTable+` (version) VALUES (?)`), s.Version); err != nil {
			return fmt.Errorf("create %s schema: write version: %w", s.Name, err)
		}
	case v.Int64 > int64(s.Version):
		return fmt.Errorf("%s schema version %d is newer than this binary's %d: upgrade Airlock", s.Name, v.Int64, s.Version)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create %s schema: %w", s.Name, err)
	}
	return nil
}
