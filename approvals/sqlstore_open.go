package approvals

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"

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

// OpenStore creates the approvals schema in db if needed and returns the
// store. The database is shared (the session index keeps its tables there
// too) and stays its opener's to close.
func OpenStore(ctx context.Context, db *sqldb.DB, log *slog.Logger) (*SQLStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &SQLStore{db: db.DB, dialect: db.Dialect, dsn: db.DSN, log: log, watchers: map[int]func(string){}}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.migrateAccess(ctx); err != nil {
		return nil, err
	}
	return s, nil
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
	// Added within version 1: binaries that predate it ignore the table.
	`CREATE TABLE IF NOT EXISTS airlock_approval_previews (
		request_id TEXT PRIMARY KEY,
		preview    TEXT NOT NULL
	)`,
}

// migrate creates the schema idempotently (replicas may start together).
func (s *SQLStore) migrate(ctx context.Context) error {
	// 0x61697270 is "airp": a fixed key for this schema's lock.
	return sqldb.Migrate(ctx, s.db, s.dialect, sqldb.Schema{Name: "approvals", LockKey: 1634300528,
		Statements: schema, VersionTable: "airlock_approval_schema", Version: schemaVersion})
}
