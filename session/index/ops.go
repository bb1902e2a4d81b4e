package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/recording"
)

// Session is one row of the index.
type Session struct {
	ID         string             `json:"id"`
	Identity   protocols.Identity `json:"identity"`
	Connection string             `json:"connection"`
	Protocol   protocols.Protocol `json:"protocol"`
	ClientAddr string             `json:"client_addr"`
	Node       string             `json:"node"`
	Path       string             `json:"path"`
	Start      time.Time          `json:"start"`
	// End is zero while the session is recording.
	End       time.Time `json:"end,omitzero"`
	EndReason string    `json:"end_reason,omitempty"`
	Frames    int64     `json:"frames"`
	Bytes     int64     `json:"bytes"`
}

// Active reports whether the session is still recording.
func (s Session) Active() bool { return s.End.IsZero() }

var (
	_ recording.Index         = (*Store)(nil)
	_ recording.BatchIndex    = (*Store)(nil)
	_ recording.DeferredIndex = (*Store)(nil)
)

// startedArgs are the arguments of startedQuery for e: a row without an
// end yet (see completeArgs).
func startedArgs(e recording.Entry) ([]any, error) {
	groups, err := json.Marshal(nonNil(e.Info.Identity.Groups))
	if err != nil {
		return nil, fmt.Errorf("index session %s: %w", e.Info.ID, err)
	}
	return []any{e.Info.ID, e.Info.Identity.Name, string(groups), e.Info.Identity.Method, e.Info.Connection,
		string(e.Info.Protocol), e.Info.ClientAddr, e.Node, e.Path, micros(e.Info.Start),
		nil, "", int64(0), int64(0)}, nil
}

// completeArgs turns startedArgs into those of a row that records e's end
// as endedQuery would (end, reason, frames, bytes and final path).
func completeArgs(args []any, e recording.Entry) {
	args[argPath] = e.Path
	args[argEnd], args[argEnd+1], args[argEnd+2], args[argEnd+3] = micros(e.End), e.EndReason, e.Frames, e.Bytes
}

// Positions in startedArgs.
const (
	argID   = 0
	argPath = 8
	argEnd  = 10
)

// StartedLater implements recording.DeferredIndex on SQLite: the row joins
// the writer's next batch (see gather). On PostgreSQL, whose index is
// shared by every replica over the network, and while the last batch had
// no row inserted, it declines.
func (s *Store) StartedLater(e recording.Entry, refused func(error)) bool {
	if s.d != SQLite || s.failing.Load() {
		return false
	}
	args, err := startedArgs(e)
	if err != nil {
		return false // Started reports it
	}
	return s.queueStart(&startReq{queued: time.Now(), args: args, refused: refused})
}

// Started implements recording.Index: it inserts the session's row.
func (s *Store) Started(ctx context.Context, e recording.Entry) error {
	args, err := startedArgs(e)
	if err != nil {
		return err
	}
	if s.d == SQLite {
		err = s.insertStarted(ctx, args)
	} else {
		_, err = s.execUnsynced(ctx, s.d.Rebind(startedQuery), args...)
	}
	if err != nil {
		return fmt.Errorf("index session %s: %w", e.Info.ID, err)
	}
	return nil
}

const startedQuery = `INSERT INTO airlock_sessions
		(id, identity, groups_json, method, connection, protocol, client_addr, node, path, started_us,
		ended_us, end_reason, frames, bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Ended implements recording.Index: it records the end time, frames, bytes,
// end reason and final path.
func (s *Store) Ended(ctx context.Context, e recording.Entry) error {
	return s.EndedAll(ctx, []recording.Entry{e})
}

const endedQuery = `UPDATE airlock_sessions
		SET ended_us = ?, end_reason = ?, frames = ?, bytes = ?, path = ?
		WHERE id = ?`

// EndedAll implements recording.BatchIndex: Ended for each entry, in
// transactions of up to endedChunk entries, after the starts still queued.
// An entry whose deferred start is still queued is inserted whole, with
// its end, instead of inserted and then updated. An entry without a row is
// reported (ErrNotFound) and does not hold back the others.
func (s *Store) EndedAll(ctx context.Context, es []recording.Entry) error {
	var errs []error
	if s.d == SQLite {
		var whole []*startReq
		es, whole = s.completeQueued(es)
		// Deferred starts first: an entry is never completed before it
		// exists.
		s.flushStarts()
		for _, r := range whole {
			if r.err != nil {
				errs = append(errs, r.failure())
			}
		}
	}
	for len(es) > 0 {
		chunk := es[:min(len(es), endedChunk)]
		es = es[len(chunk):]
		args := make([][]any, len(chunk))
		for i, e := range chunk {
			args[i] = []any{micros(e.End), e.EndReason, e.Frames, e.Bytes, e.Path, e.Info.ID}
		}
		res, err := s.execUnsyncedAll(ctx, s.d.Rebind(endedQuery), args)
		if err != nil {
			if len(chunk) == 1 {
				errs = append(errs, fmt.Errorf("complete index entry %s: %w", chunk[0].Info.ID, err))
			} else {
				errs = append(errs, fmt.Errorf("complete %d index entries: %w", len(chunk), err))
			}
			continue
		}
		for i, r := range res {
			if n, err := r.RowsAffected(); err == nil && n == 0 {
				errs = append(errs, fmt.Errorf("complete index entry %s: %w", chunk[i].Info.ID, ErrNotFound))
			}
		}
	}
	return errors.Join(errs...)
}

// endedChunk bounds the entries EndedAll completes in one transaction. A
// second's worth of ended sessions (thousands, with clients that connect
// per request) held the index's writer for tens of milliseconds, and every
// session starting meanwhile waited for it; between chunks, they get in.
const endedChunk = 64

const columns = `id, identity, groups_json, method, connection, protocol, client_addr, node, path,
	started_us, ended_us, end_reason, frames, bytes`

func scanSession(sc interface{ Scan(...any) error }) (Session, error) {
	var (
		x       Session
		groups  string
		proto   string
		started int64
		ended   sql.NullInt64
	)
	err := sc.Scan(&x.ID, &x.Identity.Name, &groups, &x.Identity.Method, &x.Connection, &proto, &x.ClientAddr,
		&x.Node, &x.Path, &started, &ended, &x.EndReason, &x.Frames, &x.Bytes)
	if err != nil {
		return Session{}, err
	}
	if err := json.Unmarshal([]byte(groups), &x.Identity.Groups); err != nil {
		return Session{}, fmt.Errorf("session %s: groups: %w", x.ID, err)
	}
	if len(x.Identity.Groups) == 0 {
		x.Identity.Groups = nil
	}
	x.Protocol = protocols.Protocol(proto)
	x.Start = fromMicros(started)
	if ended.Valid {
		x.End = fromMicros(ended.Int64)
	}
	return x, nil
}

// Get returns the session with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Session, error) {
	row := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT `+columns+` FROM airlock_sessions WHERE id = ?`), id)
	x, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session %s: %w", id, err)
	}
	return x, nil
}

// Filter selects sessions for List. Empty fields match everything.
type Filter struct {
	Identity   string
	Connection string
	// Since keeps sessions that started at or after it.
	Since time.Time
	// Active keeps only sessions still recording.
	Active bool
	// Limit caps the rows returned: 0 means DefaultLimit, at most MaxLimit.
	Limit int
}

// List limits.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// List returns the sessions matching f, newest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Session, error) {
	var where []string
	var args []any
	if f.Identity != "" {
		where, args = append(where, "identity = ?"), append(args, f.Identity)
	}
	if f.Connection != "" {
		where, args = append(where, "connection = ?"), append(args, f.Connection)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "started_us >= ?"), append(args, micros(f.Since))
	}
	if f.Active {
		where = append(where, "ended_us IS NULL")
	}
	q := `SELECT ` + columns + ` FROM airlock_sessions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	q += " ORDER BY started_us DESC, id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// Resized records the new size of a finished session's recording once it
// has been rewritten (airlock sessions recompress), so that retention's
// byte bound counts what is on disk. A session still recording is left
// alone; ErrNotFound when no finished session has id.
func (s *Store) Resized(ctx context.Context, id string, bytes int64) error {
	res, err := s.db.ExecContext(ctx, s.d.Rebind(`UPDATE airlock_sessions SET bytes = ? WHERE id = ? AND ended_us IS NOT NULL`), bytes, id)
	if err != nil {
		return fmt.Errorf("resize session %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	return nil
}
