package index

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// execUnsynced runs one index write without waiting for the disk: on
// SQLite the connection commits with synchronous=NORMAL (in WAL mode the
// commit is not fsynced; a process crash loses nothing, a power loss may
// lose the newest rows), on PostgreSQL the transaction commits with
// synchronous_commit off. The index is thus exactly as durable as the
// recordings it points to, which are not fsynced per frame either, and a
// session start or end no longer waits on, or contends with, a journal
// flush: measured here, creating a recording file while another thread
// fsyncs on the same file system cost about 0.5 ms of CPU instead of 20 µs.
// The approvals sharing the store keep their full synchronous commits: the
// setting is changed only for this statement.
func (s *Store) execUnsynced(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.d == Postgres {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return nil, err
		}
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return res, tx.Commit()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var prev int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&prev); err != nil {
		return nil, err
	}
	if prev <= 1 { // already OFF or NORMAL: nothing to relax or restore
		return conn.ExecContext(ctx, query, args...)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return nil, err
	}
	res, err := conn.ExecContext(ctx, query, args...)
	// Restore the connection's own setting before it returns to the pool;
	// if that fails, the pool must not hand the relaxed connection to the
	// approvals store, so it is discarded.
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA synchronous = %d", prev)); rerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return res, err
}
