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
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const requestColumns = `id, status, mode, identity_name, identity_groups, identity_method, connection,
	protocol, session_id, client_addr, replica, command, command_sha256, risk, rules, required,
	validity_us, created_us, expires_us, decided_us, valid_until_us, consumed_us`

// notifyChannel is the PostgreSQL channel decisions are announced on.
const notifyChannel = "airlock_approvals"

func us(t time.Time) int64 { return t.UnixMicro() }

func fromUS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRequest(sc rowScanner) (*Request, error) {
	var (
		r                             Request
		groups, rules, risk           string
		validity, created, expires    int64
		decided, validUntil, consumed sql.NullInt64
	)
	err := sc.Scan(&r.ID, &r.Status, &r.Mode, &r.Identity.Name, &groups, &r.Identity.Method, &r.Connection,
		&r.Protocol, &r.SessionID, &r.ClientAddr, &r.Replica, &r.Command, &r.CommandSHA256, &risk, &rules, &r.Required,
		&validity, &created, &expires, &decided, &validUntil, &consumed)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(groups), &r.Identity.Groups); err != nil {
		return nil, fmt.Errorf("decode groups of request %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(rules), &r.Rules); err != nil {
		return nil, fmt.Errorf("decode rules of request %s: %w", r.ID, err)
	}
	if r.Risk, err = protocols.ParseRisk(risk); err != nil {
		return nil, fmt.Errorf("decode risk of request %s: %w", r.ID, err)
	}
	r.Validity = time.Duration(validity) * time.Microsecond
	r.CreatedAt = time.UnixMicro(created).UTC()
	r.ExpiresAt = time.UnixMicro(expires).UTC()
	r.DecidedAt, r.ValidUntil, r.ConsumedAt = fromUS(decided), fromUS(validUntil), fromUS(consumed)
	r.Decisions = []Vote{}
	return &r, nil
}

func (s *SQLStore) insert(ctx context.Context, q querier, r *Request, onConflict string) (int64, error) {
	groups, _ := json.Marshal(nonNil(r.Identity.Groups))
	rules, _ := json.Marshal(nonNil(r.Rules))
	res, err := q.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_approval_requests (`+requestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL) `+onConflict),
		r.ID, StatusPending, r.Mode, r.Identity.Name, string(groups), r.Identity.Method, r.Connection,
		r.Protocol, r.SessionID, r.ClientAddr, r.Replica, r.Command, r.CommandSHA256, r.Risk.String(), string(rules), r.Required,
		r.Validity.Microseconds(), us(r.CreatedAt), us(r.ExpiresAt))
	if err != nil {
		return 0, fmt.Errorf("insert approval request: %w", err)
	}
	n, err := res.RowsAffected()
	if err == nil && n == 1 && r.Preview != nil {
		err = s.insertPreview(ctx, q, r)
	}
	return n, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Create implements Store.
func (s *SQLStore) Create(ctx context.Context, r *Request) error {
	err := s.inTx(ctx, func(t *txn) error {
		if _, err := s.insert(ctx, t, r, ""); err != nil {
			return err
		}
		return t.note(r.ID)
	})
	if err != nil {
		return err
	}
	r.Status = StatusPending
	return nil
}

// CreateRetry implements Store.
func (s *SQLStore) CreateRetry(ctx context.Context, r *Request, now time.Time) (*Request, bool, error) {
	var out *Request
	created := false
	err := s.inTx(ctx, func(tx *txn) error {
		// A pending request whose time is up no longer counts: expire it so
		// the unique index lets the new one in.
		ids, err := s.updateReturning(ctx, tx, `UPDATE airlock_approval_requests SET status = 'expired', decided_us = ?
			WHERE identity_name = ? AND connection = ? AND command_sha256 = ? AND mode = 'retry'
			AND status = 'pending' AND expires_us <= ? RETURNING id`,
			us(now), r.Identity.Name, r.Connection, r.CommandSHA256, us(now))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.note(id); err != nil {
				return err
			}
		}
		n, err := s.insert(ctx, tx, r, "ON CONFLICT DO NOTHING")
		if err != nil {
			return err
		}
		if n == 1 {
			created = true
			if err := tx.note(r.ID); err != nil {
				return err
			}
			out, err = s.get(ctx, tx, r.ID)
			return err
		}
		row := tx.QueryRowContext(ctx, s.dialect.Rebind(`SELECT `+requestColumns+` FROM airlock_approval_requests
			WHERE identity_name = ? AND connection = ? AND command_sha256 = ? AND mode = 'retry' AND status = 'pending'`),
			r.Identity.Name, r.Connection, r.CommandSHA256)
		if out, err = scanRequest(row); err != nil {
			return fmt.Errorf("find pending approval request: %w", err)
		}
		return s.loadVotes(ctx, tx, []*Request{out})
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, id string) (*Request, error) {
	return s.get(ctx, s.db, id)
}

func (s *SQLStore) get(ctx context.Context, q querier, id string) (*Request, error) {
	return s.getLocked(ctx, q, id, "")
}

func (s *SQLStore) getLocked(ctx context.Context, q querier, id, suffix string) (*Request, error) {
	row := q.QueryRowContext(ctx, s.dialect.Rebind(`SELECT `+requestColumns+` FROM airlock_approval_requests WHERE id = ?`+suffix), id)
	r, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get approval request: %w", err)
	}
	if err := s.loadVotes(ctx, q, []*Request{r}); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *SQLStore) loadVotes(ctx context.Context, q querier, rs []*Request) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]*Request, len(rs))
	args := make([]any, len(rs))
	for i, r := range rs {
		byID[r.ID] = r
		args[i] = r.ID
	}
	rows, err := q.QueryContext(ctx, s.dialect.Rebind(`SELECT request_id, reviewer, verdict, reason, at_us
		FROM airlock_approval_votes WHERE request_id IN (?`+strings.Repeat(", ?", len(rs)-1)+`) ORDER BY at_us, reviewer`), args...)
	if err != nil {
		return fmt.Errorf("load approval decisions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v Vote
		var at int64
		if err := rows.Scan(&id, &v.Reviewer, &v.Verdict, &v.Reason, &at); err != nil {
			return fmt.Errorf("load approval decisions: %w", err)
		}
		v.At = time.UnixMicro(at).UTC()
		if r := byID[id]; r != nil {
			r.Decisions = append(r.Decisions, v)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load approval decisions: %w", err)
	}
	return s.loadPreviews(ctx, q, byID, args)
}

// List implements Store.
func (s *SQLStore) List(ctx context.Context, f Filter) ([]*Request, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + requestColumns + ` FROM airlock_approval_requests`
	var args []any
	if len(f.Statuses) > 0 {
		q += ` WHERE status IN (?` + strings.Repeat(", ?", len(f.Statuses)-1) + `)`
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	q += ` ORDER BY created_us DESC, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	var out []*Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list approval requests: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	if err := s.loadVotes(ctx, s.db, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Vote implements Store.
func (s *SQLStore) Vote(ctx context.Context, id string, v Vote, now time.Time) (*Request, error) {
	var out *Request
	var refusal error
	err := s.inTx(ctx, func(tx *txn) error {
		// The row lock (PostgreSQL) or the immediate write transaction
		// (SQLite) serialises votes on one request, so the approval count
		// below sees every earlier vote.
		r, err := s.getLocked(ctx, tx, id, s.forUpdate())
		if err != nil {
			return err
		}
		if r.Status != StatusPending {
			refusal = &StateError{ID: id, Status: r.Status}
			return nil
		}
		if !now.Before(r.ExpiresAt) {
			if err := s.setStatus(ctx, tx, id, StatusExpired, "decided_us = ?", us(now)); err != nil {
				return err
			}
			refusal = &StateError{ID: id, Status: StatusExpired}
			return nil
		}
		for _, prev := range r.Decisions {
			if prev.Reviewer == v.Reviewer {
				refusal = fmt.Errorf("%w: %s already chose %s on request %s", ErrAlreadyVoted, v.Reviewer, prev.Verdict, id)
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_approval_votes (request_id, reviewer, verdict, reason, at_us)
			VALUES (?, ?, ?, ?, ?)`), id, v.Reviewer, v.Verdict, v.Reason, us(now)); err != nil {
			return fmt.Errorf("record approval decision: %w", err)
		}
		r.Decisions = append(r.Decisions, Vote{Reviewer: v.Reviewer, Verdict: v.Verdict, Reason: v.Reason, At: now.UTC()})
		switch {
		case v.Verdict == Reject:
			err = s.setStatus(ctx, tx, id, StatusDenied, "decided_us = ?", us(now))
		case len(r.Approvers()) >= r.Required:
			err = s.setStatus(ctx, tx, id, StatusApproved, "decided_us = ?, valid_until_us = ?", us(now), us(now.Add(r.Validity)))
		}
		if err != nil {
			return err
		}
		if err := tx.note(id); err != nil {
			return err
		}
		out, err = s.get(ctx, tx, id)
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

// setStatus moves a pending request to status, conditionally: zero rows
// means another writer got there first.
func (s *SQLStore) setStatus(ctx context.Context, tx *txn, id string, status Status, set string, args ...any) error {
	args = append([]any{status}, args...)
	args = append(args, id)
	res, err := tx.ExecContext(ctx, s.dialect.Rebind(`UPDATE airlock_approval_requests SET status = ?, `+set+`
		WHERE id = ? AND status = 'pending'`), args...)
	if err != nil {
		return fmt.Errorf("update approval request: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update approval request %s: %w", id, ErrNotPending)
	}
	return tx.note(id)
}

func (s *SQLStore) forUpdate() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}
