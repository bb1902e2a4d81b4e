package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/airlock-gw/airlock/protocols"
)

// DefaultSQLitePath is where the embedded store lives when no dsn is given.
const DefaultSQLitePath = "data/airlock.db"

// Config selects the database behind the approvals store and the session
// index (`store:` in airlock.yaml).
type Config struct {
	// Driver is sqlite (embedded, the default) or postgres (shared by
	// replicas).
	Driver string `yaml:"driver"`
	// DSN is a file path or "file:" URI for sqlite, a PostgreSQL URL or
	// keyword/value string for postgres. It may hold a password, so it never
	// prints.
	DSN protocols.Secret `yaml:"dsn"`
	// Heartbeat (default 5s) is how often a replica on a shared PostgreSQL
	// store records that it is alive, and looks for replicas that stopped.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// StaleAfter (default 30s) is how long a replica may go without a
	// heartbeat before the others take it for gone: its held approval
	// requests are withdrawn and its open sessions closed in the index as
	// abandoned. Keep it well above Heartbeat.
	StaleAfter time.Duration `yaml:"stale_after"`
}

// Default heartbeat settings of replicas sharing a PostgreSQL store.
const (
	DefaultHeartbeat  = 5 * time.Second
	DefaultStaleAfter = 30 * time.Second
)

// WithDefaults returns c with the heartbeat defaults applied.
func (c Config) WithDefaults() Config {
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	return c
}

// Validate reports every problem in the block at path (e.g. "store").
func (c *Config) Validate(path string) error {
	var errs []error
	switch c.Driver {
	case "", string(SQLite):
		if strings.ContainsRune(c.DSN.Reveal(), 0) {
			errs = append(errs, fmt.Errorf("%s.dsn: contains a NUL byte", path))
		}
	case string(Postgres):
		if c.DSN == "" {
			errs = append(errs, fmt.Errorf("%s.dsn: missing (want a PostgreSQL URL such as postgres://airlock@db:5432/airlock)", path))
		} else if _, err := pgx.ParseConfig(c.DSN.Reveal()); err != nil {
			// The parse error may quote the string, password included.
			errs = append(errs, fmt.Errorf("%s.dsn: not a valid PostgreSQL connection string", path))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.driver: unknown driver %q (want sqlite or postgres)", path, c.Driver))
	}
	if c.Heartbeat < 0 {
		errs = append(errs, fmt.Errorf("%s.heartbeat: must not be negative", path))
	}
	if c.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("%s.stale_after: must not be negative", path))
	}
	if d := c.WithDefaults(); c.Heartbeat >= 0 && c.StaleAfter >= 0 && d.StaleAfter < 2*d.Heartbeat {
		errs = append(errs, fmt.Errorf("%s.stale_after: %v is less than twice the heartbeat (%v): raise it, or a slow beat takes a live replica for gone", path, d.StaleAfter, d.Heartbeat))
	}
	return errors.Join(errs...)
}

// DB is the shared database: approvals and the session index create their
// own tables in it. Its owner closes it after both.
type DB struct {
	*sql.DB
	Dialect Dialect
	// DSN is kept for PostgreSQL, whose LISTEN needs a connection of its own.
	DSN protocols.Secret
}

// Open opens the configured database. It creates no tables: each user
// migrates its own schema (Migrate).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate("store"); err != nil {
		return nil, err
	}
	db := &DB{}
	var err error
	switch Dialect(cfg.Driver) {
	case "", SQLite:
		db.Dialect = SQLite
		dsn, derr := sqliteDSN(cfg.DSN.Reveal())
		if derr != nil {
			return nil, derr
		}
		db.DB, err = sql.Open("sqlite", dsn)
		if err == nil {
			db.SetMaxOpenConns(8)
		}
	case Postgres:
		db.Dialect, db.DSN = Postgres, cfg.DSN
		db.DB, err = sql.Open("pgx", cfg.DSN.Reveal())
		if err == nil {
			db.SetMaxOpenConns(16)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", db.Dialect, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s store: %w", db.Dialect, err)
	}
	return db, nil
}

// sqliteDSN turns a path or file: URI into a modernc DSN with the settings
// the store relies on: immediate write transactions (so a read-then-update
// cannot race another writer), a busy timeout, WAL and full fsync on commit
// (a decision is durable before it is acknowledged).
func sqliteDSN(dsn string) (string, error) {
	if dsn == "" {
		dsn = DefaultSQLitePath
	}
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		// Each pooled connection would get its own empty database.
		return "", errors.New("open sqlite store: an in-memory database cannot be shared; give a file path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("open sqlite store: create directory %s: %w", dir, err)
		}
	}
	// The file holds who ran what: create it private. SQLite gives its
	// -wal and -shm files the same permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("open sqlite store: %w", err)
	}
	f.Close()
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("open sqlite store: bad dsn parameters: %w", err)
	}
	set := func(k, v string) {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	set("_txlock", "immediate")
	set("_busy_timeout", "10000")
	set("_journal_mode", "WAL")
	set("_synchronous", "FULL")
	set("_foreign_keys", "1")
	return "file:" + path + "?" + q.Encode(), nil
}
