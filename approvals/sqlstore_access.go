package approvals

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

const accessSchemaVersion = 1

var accessSchema = []string{
	`CREATE TABLE IF NOT EXISTS airlock_access_requests (
		id              TEXT PRIMARY KEY,
		status          TEXT NOT NULL,
		identity_name   TEXT NOT NULL,
		identity_groups TEXT NOT NULL,
		identity_method TEXT NOT NULL,
		connection      TEXT NOT NULL,
		role            TEXT NOT NULL,
		overlay         TEXT NOT NULL,
		reason          TEXT NOT NULL,
		duration_us     BIGINT NOT NULL,
		required        INTEGER NOT NULL,
		replica         TEXT NOT NULL,
		created_us      BIGINT NOT NULL,
		expires_us      BIGINT NOT NULL,
		decided_us      BIGINT,
		starts_us       BIGINT,
		ends_us         BIGINT,
		revoked_us      BIGINT,
		revoked_by      TEXT NOT NULL DEFAULT '',
		revoke_reason   TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX IF NOT EXISTS airlock_access_requests_status ON airlock_access_requests (status, ends_us)`,
	`CREATE INDEX IF NOT EXISTS airlock_access_requests_created ON airlock_access_requests (created_us)`,
	// At most one open request or grant per caller and connection: a
	// caller's overlays never have to be merged, and a second request
	// while one is open is refused rather than stacked.
	`CREATE UNIQUE INDEX IF NOT EXISTS airlock_access_requests_open ON airlock_access_requests (identity_name, connection) WHERE status IN ('pending', 'active')`,
	`CREATE TABLE IF NOT EXISTS airlock_access_votes (
		request_id TEXT NOT NULL,
		reviewer   TEXT NOT NULL,
		verdict    TEXT NOT NULL,
		reason     TEXT NOT NULL,
		at_us      BIGINT NOT NULL,
		PRIMARY KEY (request_id, reviewer)
	)`,
	`CREATE TABLE IF NOT EXISTS airlock_access_uses (
		grant_id   TEXT NOT NULL,
		session_id TEXT NOT NULL,
		first_us   BIGINT NOT NULL,
		PRIMARY KEY (grant_id, session_id)
	)`,
	`CREATE INDEX IF NOT EXISTS airlock_access_uses_session ON airlock_access_uses (session_id)`,
	`CREATE TABLE IF NOT EXISTS airlock_access_schema (version INTEGER NOT NULL)`,
}

func (s *SQLStore) migrateAccess(ctx context.Context) error {
	// 0x61697261 is "aira": a fixed key for this schema's lock.
	return sqldb.Migrate(ctx, s.db, s.dialect, sqldb.Schema{Name: "access", LockKey: 1634300513,
		Statements: accessSchema, VersionTable: "airlock_access_schema", Version: accessSchemaVersion})
}

const accessColumns = `id, status, identity_name, identity_groups, identity_method, connection, role, overlay, reason,
	duration_us, required, replica, created_us, expires_us, decided_us, starts_us, ends_us, revoked_us, revoked_by, revoke_reason`

func scanAccess(sc rowScanner) (*AccessRequest, error) {
	var (
		r                              AccessRequest
		groups, overlay                string
		duration, created, expires     int64
		decided, starts, ends, revoked sql.NullInt64
	)
	err := sc.Scan(&r.ID, &r.Status, &r.Identity.Name, &groups, &r.Identity.Method, &r.Connection, &r.Role, &overlay,
		&r.Reason, &duration, &r.Required, &r.Replica, &created, &expires, &decided, &starts, &ends, &revoked,
		&r.RevokedBy, &r.RevokeReason)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(groups), &r.Identity.Groups); err != nil {
		return nil, fmt.Errorf("decode groups of access request %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(overlay), &r.Overlay); err != nil {
		return nil, fmt.Errorf("decode overlay of access request %s: %w", r.ID, err)
	}
	r.Duration = Duration(time.Duration(duration) * time.Microsecond)
	r.CreatedAt, r.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	r.DecidedAt, r.StartsAt, r.EndsAt, r.RevokedAt = fromUS(decided), fromUS(starts), fromUS(ends), fromUS(revoked)
	r.Decisions = []Vote{}
	return &r, nil
}

// noteAccess queues the change notice of access request id.
func (t *txn) noteAccess(id string) error { return t.note(accessNotice + id) }

// CreateAccess implements AccessStore.
func (s *SQLStore) CreateAccess(ctx context.Context, r *AccessRequest, now time.Time) error {
	groups, _ := json.Marshal(nonNil(r.Identity.Groups))
	overlay, err := json.Marshal(r.Overlay)
	if err != nil {
		return fmt.Errorf("encode overlay: %w", err)
	}
	return s.inTx(ctx, func(tx *txn) error {
		// An open row whose time is up no longer counts: close it so the
		// unique index lets the new one in.
		stale, err := s.closeStale(ctx, tx, `identity_name = ? AND connection = ? AND `, now, r.Identity.Name, r.Connection)
		if err != nil {
			return err
		}
		for _, id := range stale {
			if err := tx.noteAccess(id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_access_requests (`+accessColumns+`)
			VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, '', '') ON CONFLICT DO NOTHING`),
			r.ID, r.Identity.Name, string(groups), r.Identity.Method, r.Connection, r.Role, string(overlay), r.Reason,
			time.Duration(r.Duration).Microseconds(), r.Required, r.Replica, us(r.CreatedAt), us(r.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert access request: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var id, status string
			err := tx.QueryRowContext(ctx, s.dialect.Rebind(`SELECT id, status FROM airlock_access_requests
				WHERE identity_name = ? AND connection = ? AND status IN ('pending', 'active')`), r.Identity.Name, r.Connection).Scan(&id, &status)
			if err != nil {
				return fmt.Errorf("%w for %s on %s", ErrAccessHeld, r.Identity.Name, r.Connection)
			}
			return fmt.Errorf("%w: %s has access request %s (%s) on %s; revoke it first", ErrAccessHeld, r.Identity.Name, id, status, r.Connection)
		}
		return tx.noteAccess(r.ID)
	})
}

// closeStale expires pending rows past their deadline and ends active
// rows past their window, among those matching cond (its placeholders
// follow now's); it returns their ids.
func (s *SQLStore) closeStale(ctx context.Context, q querier, cond string, now time.Time, args ...any) ([]string, error) {
	var ids []string
	for _, step := range []struct{ set, where string }{
		{`status = 'expired', decided_us = ?`, `status = 'pending' AND expires_us <= ?`},
		{`status = 'ended'`, `status = 'active' AND ends_us <= ?`},
	} {
		a := []any{}
		if strings.Contains(step.set, "?") {
			a = append(a, us(now))
		}
		a = append(a, args...)
		a = append(a, us(now))
		got, err := s.updateReturning(ctx, q, `UPDATE airlock_access_requests SET `+step.set+` WHERE `+cond+step.where+` RETURNING id`, a...)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// GetAccess implements AccessStore.
func (s *SQLStore) GetAccess(ctx context.Context, id string) (*AccessRequest, error) {
	return s.getAccess(ctx, s.db, id, "")
}

func (s *SQLStore) getAccess(ctx context.Context, q querier, id, suffix string) (*AccessRequest, error) {
	r, err := scanAccess(q.QueryRowContext(ctx, s.dialect.Rebind(`SELECT `+accessColumns+` FROM airlock_access_requests WHERE id = ?`+suffix), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get access request: %w", err)
	}
	return r, s.loadAccessVotes(ctx, q, []*AccessRequest{r})
}

func (s *SQLStore) loadAccessVotes(ctx context.Context, q querier, rs []*AccessRequest) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]*AccessRequest, len(rs))
	args := make([]any, len(rs))
	for i, r := range rs {
		byID[r.ID] = r
		args[i] = r.ID
	}
	rows, err := q.QueryContext(ctx, s.dialect.Rebind(`SELECT request_id, reviewer, verdict, reason, at_us
		FROM airlock_access_votes WHERE request_id IN (?`+strings.Repeat(", ?", len(rs)-1)+`) ORDER BY at_us, reviewer`), args...)
	if err != nil {
		return fmt.Errorf("load access decisions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v Vote
		var at int64
		if err := rows.Scan(&id, &v.Reviewer, &v.Verdict, &v.Reason, &at); err != nil {
			return fmt.Errorf("load access decisions: %w", err)
		}
		v.At = time.UnixMicro(at).UTC()
		if r := byID[id]; r != nil {
			r.Decisions = append(r.Decisions, v)
		}
	}
	return rows.Err()
}

// ListAccess implements AccessStore.
func (s *SQLStore) ListAccess(ctx context.Context, f AccessFilter) ([]*AccessRequest, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var where []string
	var args []any
	if len(f.Statuses) > 0 {
		where = append(where, `status IN (?`+strings.Repeat(", ?", len(f.Statuses)-1)+`)`)
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	if f.Identity != "" {
		where, args = append(where, `identity_name = ?`), append(args, f.Identity)
	}
	if f.Connection != "" {
		where, args = append(where, `connection = ?`), append(args, f.Connection)
	}
	q := `SELECT ` + accessColumns + ` FROM airlock_access_requests`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_us DESC, id LIMIT ?`
	return s.queryAccess(ctx, s.db, q, append(args, limit)...)
}

func (s *SQLStore) queryAccess(ctx context.Context, q querier, query string, args ...any) ([]*AccessRequest, error) {
	rows, err := q.QueryContext(ctx, s.dialect.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list access requests: %w", err)
	}
	var out []*AccessRequest
	for rows.Next() {
		r, err := scanAccess(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list access requests: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list access requests: %w", err)
	}
	return out, s.loadAccessVotes(ctx, q, out)
}

// VoteAccess implements AccessStore.
func (s *SQLStore) VoteAccess(ctx context.Context, id string, v Vote, now time.Time) (*AccessRequest, error) {
	var out *AccessRequest
	var refusal error
	err := s.inTx(ctx, func(tx *txn) error {
		r, err := s.getAccess(ctx, tx, id, s.forUpdate())
		if err != nil {
			return err
		}
		if r.Status != AccessPending {
			refusal = &AccessStateError{ID: id, Status: r.Status}
			return nil
		}
		if !now.Before(r.ExpiresAt) {
			if err := s.setAccess(ctx, tx, id, AccessPending, AccessExpired, "decided_us = ?", us(now)); err != nil {
				return err
			}
			refusal = &AccessStateError{ID: id, Status: AccessExpired}
			return nil
		}
		for _, prev := range r.Decisions {
			if prev.Reviewer == v.Reviewer {
				refusal = fmt.Errorf("%w: %s already chose %s on access request %s", ErrAlreadyVoted, v.Reviewer, prev.Verdict, id)
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_access_votes (request_id, reviewer, verdict, reason, at_us)
			VALUES (?, ?, ?, ?, ?)`), id, v.Reviewer, v.Verdict, v.Reason, us(now)); err != nil {
			return fmt.Errorf("record access decision: %w", err)
		}
		r.Decisions = append(r.Decisions, Vote{Reviewer: v.Reviewer, Verdict: v.Verdict, Reason: v.Reason, At: now.UTC()})
		switch {
		case v.Verdict == Reject:
			err = s.setAccess(ctx, tx, id, AccessPending, AccessDenied, "decided_us = ?", us(now))
		case len(r.Approvers()) >= r.Required:
			err = s.setAccess(ctx, tx, id, AccessPending, AccessActive, "decided_us = ?, starts_us = ?, ends_us = ?",
				us(now), us(now), us(now.Add(time.Duration(r.Duration))))
		}
		if err != nil {
			return err
		}
		if err := tx.noteAccess(id); err != nil {
			return err
		}
		out, err = s.getAccess(ctx, tx, id, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return out, nil
}

// setAccess moves request id from one state to another, conditionally.
func (s *SQLStore) setAccess(ctx context.Context, tx *txn, id string, from, to AccessStatus, set string, args ...any) error {
	args = append([]any{to}, args...)
	args = append(args, id, from)
	res, err := tx.ExecContext(ctx, s.dialect.Rebind(`UPDATE airlock_access_requests SET status = ?, `+set+`
		WHERE id = ? AND status = ?`), args...)
	if err != nil {
		return fmt.Errorf("update access request: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update access request %s: %w", id, ErrNotPending)
	}
	return tx.noteAccess(id)
}

// RevokeAccess implements AccessStore.
func (s *SQLStore) RevokeAccess(ctx context.Context, id, by, reason string, now time.Time) (*AccessRequest, error) {
	var out *AccessRequest
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := s.closeStale(ctx, tx, `id = ? AND `, now, id); err != nil {
			return err
		}
		ids, err := s.updateReturning(ctx, tx, `UPDATE airlock_access_requests
			SET status = 'revoked', revoked_us = ?, revoked_by = ?, revoke_reason = ?, decided_us = COALESCE(decided_us, ?),
				ends_us = CASE WHEN status = 'active' THEN ? ELSE ends_us END
			WHERE id = ? AND status IN ('pending', 'active') RETURNING id`, us(now), by, reason, us(now), us(now), id)
		if err != nil {
			return err
		}
		cur, err := s.getAccess(ctx, tx, id, "")
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return &AccessStateError{ID: id, Status: cur.Status}
		}
		out = cur
		return tx.noteAccess(id)
	})
	return out, err
}

// SweepAccess implements AccessStore.
func (s *SQLStore) SweepAccess(ctx context.Context, now, purgeBefore time.Time) ([]*AccessRequest, error) {
	var out []*AccessRequest
	err := s.inTx(ctx, func(tx *txn) error {
		ids, err := s.closeStale(ctx, tx, "", now)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.noteAccess(id); err != nil {
				return err
			}
			r, err := s.getAccess(ctx, tx, id, "")
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		if purgeBefore.IsZero() {
			return nil
		}
		const old = `SELECT id FROM airlock_access_requests WHERE status NOT IN ('pending', 'active') AND created_us < ?`
		for _, q := range []string{
			`DELETE FROM airlock_access_votes WHERE request_id IN (` + old + `)`,
			`DELETE FROM airlock_access_uses WHERE grant_id IN (` + old + `)`,
			`DELETE FROM airlock_access_requests WHERE id IN (` + old + `)`,
		} {
			if _, err := tx.ExecContext(ctx, s.dialect.Rebind(q), us(purgeBefore)); err != nil {
				return fmt.Errorf("purge access requests: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// ActiveGrants implements AccessStore.
func (s *SQLStore) ActiveGrants(ctx context.Context, now time.Time) ([]*AccessRequest, error) {
	return s.queryAccess(ctx, s.db, `SELECT `+accessColumns+` FROM airlock_access_requests
		WHERE status = 'active' AND starts_us <= ? AND ends_us > ? ORDER BY ends_us`, us(now), us(now))
}

// NoteGrantUse implements AccessStore.
func (s *SQLStore) NoteGrantUse(ctx context.Context, id string, si protocols.SessionInfo, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_access_uses (grant_id, session_id, first_us)
		VALUES (?, ?, ?) ON CONFLICT DO NOTHING`), id, si.ID, us(at))
	if err != nil {
		return fmt.Errorf("note grant use: %w", err)
	}
	return nil
}

// GrantUses implements AccessStore.
func (s *SQLStore) GrantUses(ctx context.Context, sessions []string) (map[string][]string, error) {
	out := map[string][]string{}
	for len(sessions) > 0 {
		batch := sessions[:min(len(sessions), 500)]
		sessions = sessions[len(batch):]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(`SELECT session_id, grant_id FROM airlock_access_uses
			WHERE session_id IN (?`+strings.Repeat(", ?", len(batch)-1)+`) ORDER BY first_us`), args...)
		if err != nil {
			return nil, fmt.Errorf("grant uses: %w", err)
		}
		for rows.Next() {
			var sid, gid string
			if err := rows.Scan(&sid, &gid); err != nil {
				rows.Close()
				return nil, fmt.Errorf("grant uses: %w", err)
			}
			out[sid] = append(out[sid], gid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("grant uses: %w", err)
		}
	}
	return out, nil
}

// GrantSessions implements AccessStore.
func (s *SQLStore) GrantSessions(ctx context.Context, id string) ([]GrantUse, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(`SELECT grant_id, session_id, first_us FROM airlock_access_uses
		WHERE grant_id = ? ORDER BY first_us`), id)
	if err != nil {
		return nil, fmt.Errorf("grant sessions: %w", err)
	}
	defer rows.Close()
	var out []GrantUse
	for rows.Next() {
		var u GrantUse
		var at int64
		if err := rows.Scan(&u.Grant, &u.Session, &at); err != nil {
			return nil, fmt.Errorf("grant sessions: %w", err)
		}
		u.First = time.UnixMicro(at).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

var _ AccessStore = (*SQLStore)(nil)
