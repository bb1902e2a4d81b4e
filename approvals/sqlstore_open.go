package approvals

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// Dialect names the SQL database behind a store.
type Dialect = sqldb.Dialect

// The supported dialects.
const (
	SQLite   = sqldb.SQLite
	Postgres = sqldb.Postgres
)

// DefaultSQLitePath is where the embedded store lives when no dsn is given.
const DefaultSQLitePath = "data/airlock.db"

// StoreConfig selects the database behind the approvals store and the
// session index (`store:` in airlock.yaml).
type StoreConfig struct {
	// Driver is sqlite (embedded, the default) or postgres (shared by
	// replicas).
	Driver string `yaml:"driver"`
	// DSN is a file path or "file:" URI for sqlite, a PostgreSQL URL or
	// keyword/value string for postgres. It may hold a password, so it never
	// prints.
	DSN protocols.Secret `yaml:"dsn"`
}

// Validate reports every problem in the block at path (e.g. "store").
func (c *StoreConfig) Validate(path string) error {
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
	return errors.Join(errs...)
}

// OpenStore opens the configured database, creates the approvals schema if
// needed and returns the store. Its DB and Dialect methods give the same
// database to other components (the session index creates its own tables
// there); the store owns the *sql.DB and closes it in Close.
func OpenStore(ctx context.Context, cfg StoreConfig, log *slog.Logger) (*SQLStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate("store"); err != nil {
		return nil, err
	}
	s := &SQLStore{log: log, watchers: map[int]func(string){}}
	var err error
	switch Dialect(cfg.Driver) {
	case "", SQLite:
		s.dialect = SQLite
		dsn, derr := sqliteDSN(cfg.DSN.Reveal())
		if derr != nil {
			return nil, derr
		}
		s.db, err = sql.Open("sqlite", dsn)
		if err == nil {
			s.db.SetMaxOpenConns(8)
		}
	case Postgres:
		s.dialect = Postgres
		s.dsn = cfg.DSN
		s.db, err = sql.Open("pgx", cfg.DSN.Reveal())
		if err == nil {
			s.db.SetMaxOpenConns(16)
			s.db.SetConnMaxIdleTime(5 * time.Minute)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
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

// SQLStore is the Store over SQLite or PostgreSQL.
type SQLStore struct {
	db      *sql.DB
	dialect Dialect
	dsn     protocols.Secret // postgres only, for the LISTEN connection
	log     *slog.Logger

	mu       sync.Mutex
	watchers map[int]func(string)
	nextW    int
}

// DB returns the underlying database, shared with other components.
func (s *SQLStore) DB() *sql.DB { return s.db }

// Dialect returns the SQL dialect of DB.
func (s *SQLStore) Dialect() Dialect { return s.dialect }

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

const schemaVersion = 1

var schema = []string{
	`CREATE TABLE IF NOT EXISTS airlock_approval_requests (
		id              TEXT PRIMARY KEY,
		status          TEXT NOT NULL,
		mode            TEXT NOT NULL,
		identity_name   TEXT NOT NULL,
		identity_groups TEXT NOT NULL,
		identity_method TEXT NOT NULL,
		connection      TEXT NOT NULL,
		protocol        TEXT NOT NULL,
		session_id      TEXT NOT NULL,
		client_addr     TEXT NOT NULL,
		replica         TEXT NOT NULL,
		command         TEXT NOT NULL,
		command_sha256  TEXT NOT NULL,
		risk            TEXT NOT NULL,
		rules           TEXT NOT NULL,
		required        INTEGER NOT NULL,
		validity_us     BIGINT NOT NULL,
		created_us      BIGINT NOT NULL,
		expires_us      BIGINT NOT NULL,
		decided_us      BIGINT,
		valid_until_us  BIGINT,
		consumed_us     BIGINT
	)`,
	`CREATE INDEX IF NOT EXISTS airlock_approval_requests_status ON airlock_approval_requests (status, expires_us)`,
	`CREATE INDEX IF NOT EXISTS airlock_approval_requests_key ON airlock_approval_requests (identity_name, connection, command_sha256, status)`,
	`CREATE INDEX IF NOT EXISTS airlock_approval_requests_created ON airlock_approval_requests (created_us)`,
	// At most one pending retry-mode request per caller, connection and
	// command: concurrent retries reuse it instead of piling up.
	`CREATE UNIQUE INDEX IF NOT EXISTS airlock_approval_requests_retry_pending ON airlock_approval_requests (identity_name, connection, command_sha256) WHERE status = 'pending' AND mode = 'retry'`,
	`CREATE TABLE IF NOT EXISTS airlock_approval_votes (
		request_id TEXT NOT NULL REFERENCES airlock_approval_requests (id) ON DELETE CASCADE,
		reviewer   TEXT NOT NULL,
		verdict    TEXT NOT NULL,
		reason     TEXT NOT NULL,
		at_us      BIGINT NOT NULL,
		PRIMARY KEY (request_id, reviewer)
	)`,
	`CREATE TABLE IF NOT EXISTS airlock_approval_schema (version INTEGER NOT NULL)`,
}

// migrate creates the schema idempotently (replicas may start together).
func (s *SQLStore) migrate(ctx context.Context) error {
	// 0x61697270 is "airp": a fixed key for this schema's lock.
	return sqldb.Migrate(ctx, s.db, s.dialect, sqldb.Schema{Name: "approvals", LockKey: 1634300528,
		Statements: schema, VersionTable: "airlock_approval_schema", Version: schemaVersion})
}
