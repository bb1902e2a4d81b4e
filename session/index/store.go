package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/session/sqldb"
)

// Dialect names the SQL database behind the index.
type Dialect = sqldb.Dialect

// The supported dialects.
const (
	SQLite   = sqldb.SQLite
	Postgres = sqldb.Postgres
)

// ErrNotFound is returned by Get (and Ended) for an unknown session id.
var ErrNotFound = errors.New("session not found in the index")

// Options configure a Store.
type Options struct {
	// Node names this Airlock instance, as the recording Factory does.
	// Retention and Abandon touch only this node's rows.
	Node string
	// Dir is this node's recording directory. Retention deletes only
	// recording files inside it, whatever a row's path says.
	Dir string
	Log *slog.Logger
}

// Store is the session index over a *sql.DB.
type Store struct {
	db   *sql.DB
	d    Dialect
	node string
	dir  string
	log  *slog.Logger

	// wconn is the SQLite connection index writes go through, relaxed to
	// synchronous=NORMAL (see execUnsynced); wmu serialises its use.
	wmu    sync.Mutex
	wconn  *sql.Conn
	wstmts map[string]*sql.Stmt // prepared on wconn, by query
	// startQ holds SQLite inserts of starting sessions waiting for the
	// writer goroutine (see insertStarted), which wake starts and which
	// closes writerDone when it returns after Close; qmu guards them and
	// closed.
	qmu        sync.Mutex
	startQ     []*startReq
	wake       chan struct{}
	hurry      chan struct{} // ends the writer's gather window early
	writerDone chan struct{}
	closed     bool
	// failing is set while the last batch of starts had no row inserted;
	// StartedLater then declines, so new sessions register synchronously
	// and are refused while the index refuses them.
	failing atomic.Bool

	// commits counts the writer's commits since the last checkpoint and
	// noCkpt stops checkpoints at Close (both wmu held); checkpointing is
	// set while one runs, which ckptWG tracks.
	commits       int
	noCkpt        bool
	checkpointing atomic.Bool
	ckptWG        sync.WaitGroup
	checkpointed  func(logged, copied int) // tests: after each checkpoint
}

const schemaVersion = 1

var schema = []string{
	`CREATE TABLE IF NOT EXISTS airlock_session_schema (version INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS airlock_sessions (
		id          TEXT PRIMARY KEY,
		identity    TEXT NOT NULL,
		groups_json TEXT NOT NULL DEFAULT '[]',
		method      TEXT NOT NULL DEFAULT '',
		connection  TEXT NOT NULL,
		protocol    TEXT NOT NULL,
		client_addr TEXT NOT NULL DEFAULT '',
		node        TEXT NOT NULL,
		path        TEXT NOT NULL,
		started_us  BIGINT NOT NULL,
		ended_us    BIGINT,
		end_reason  TEXT NOT NULL DEFAULT '',
		frames      BIGINT NOT NULL DEFAULT 0,
		bytes       BIGINT NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS airlock_sessions_started ON airlock_sessions (started_us)`,
	`CREATE INDEX IF NOT EXISTS airlock_sessions_identity ON airlock_sessions (identity, started_us)`,
	`CREATE INDEX IF NOT EXISTS airlock_sessions_connection ON airlock_sessions (connection, started_us)`,
	`CREATE INDEX IF NOT EXISTS airlock_sessions_node_ended ON airlock_sessions (node, ended_us)`,
	replicasSchema,
}

// Open creates the index tables if they do not exist (idempotent, safe when
// several replicas start at once) and returns the Store. dialect is
// "sqlite" or "postgres"; db stays the caller's to close.
func Open(ctx context.Context, db *sql.DB, dialect string, o Options) (*Store, error) {
	d := Dialect(dialect)
	if d != SQLite && d != Postgres {
		return nil, fmt.Errorf("session index: unknown dialect %q (want sqlite or postgres)", dialect)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{db: db, d: d, node: o.Node, log: o.Log}
	if o.Dir != "" {
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("session index: recording directory %s: %w", o.Dir, err)
		}
		s.dir = dir
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	// 0x61697273 is "airs": a fixed key for this schema's lock.
	return sqldb.Migrate(ctx, s.db, s.d, sqldb.Schema{Name: "session index", LockKey: 1634300531,
		Statements: schema, VersionTable: "airlock_session_schema", Version: schemaVersion})
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
