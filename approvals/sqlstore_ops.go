package approvals

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// txn is one store transaction; it collects the ids it changed so that
// waiters are woken only after the change is committed.
type txn struct {
	*sql.Tx
	ctx     context.Context
	s       *SQLStore
	changed []string
}

// note records that request id changed. On PostgreSQL it also queues a
// NOTIFY, which the server delivers to every listening replica at commit
// and never for a rolled-back transaction.
func (t *txn) note(id string) error {
	if slices.Contains(t.changed, id) {
		return nil
	}
	t.changed = append(t.changed, id)
	if t.s.dialect == Postgres {
		if _, err := t.ExecContext(t.ctx, `SELECT pg_notify($1, $2)`, notifyChannel, id); err != nil {
			return fmt.Errorf("notify approval change: %w", err)
		}
	}
	return nil
}

func (s *SQLStore) inTx(ctx context.Context, fn func(t *txn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin approvals transaction: %w", err)
	}
	t := &txn{Tx: tx, ctx: ctx, s: s}
	if err := fn(t); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit approvals transaction: %w", err)
	}
	for _, id := range t.changed {
		s.emit(id)
	}
	return nil
}

func (s *SQLStore) updateReturning(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, s.dialect.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("update approval requests: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("update approval requests: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("update approval requests: %w", err)
	}
	return ids, nil
}

// refused explains why a conditional update of id touched nothing.
func (s *SQLStore) refused(ctx context.Context, q querier, id string) error {
	r, err := s.get(ctx, q, id)
	if err != nil {
		return err
	}
	return &StateError{ID: id, Status: r.Status}
}

// Consume implements Store.
func (s *SQLStore) Consume(ctx context.Context, id string, now time.Time) (*Request, error) {
	return s.transition(ctx, id, `UPDATE airlock_approval_requests SET status = 'consumed', consumed_us = ?
		WHERE id = ? AND status = 'approved' RETURNING id`, us(now), id)
}

// transition runs an UPDATE … RETURNING id that moves request id from one
// state to another, in a transaction: when no row moved it says why
// (unknown id or wrong state), otherwise it queues the change notice and
// returns the request as it now is.
func (s *SQLStore) transition(ctx context.Context, id, query string, args ...any) (*Request, error) {
	var out *Request
	err := s.inTx(ctx, func(tx *txn) error {
		ids, err := s.updateReturning(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return s.refused(ctx, tx, id)
		}
		if err := tx.note(id); err != nil {
			return err
		}
		out, err = s.get(ctx, tx, id)
		return err
	})
	return out, err
}

// ConsumeMatch implements Store.
func (s *SQLStore) ConsumeMatch(ctx context.Context, k Key, now time.Time) (*Request, error) {
	// The subquery picks a candidate; the outer condition re-checks its
	// status under the row lock, so of two concurrent retries exactly one
	// updates it. The loser looks again in case another approval exists.
	for range 4 {
		var out *Request
		again := false
		err := s.inTx(ctx, func(tx *txn) error {
			ids, err := s.updateReturning(ctx, tx, `UPDATE airlock_approval_requests SET status = 'consumed', consumed_us = ?
				WHERE id = (SELECT id FROM airlock_approval_requests
					WHERE identity_name = ? AND connection = ? AND command_sha256 = ? AND mode = 'retry'
					AND status = 'approved' AND valid_until_us > ?
					ORDER BY decided_us, id LIMIT 1)
				AND status = 'approved' RETURNING id`,
				us(now), k.Identity, k.Connection, k.Hash, us(now))
			if err != nil {
				return err
			}
			if len(ids) == 1 {
				if err := tx.note(ids[0]); err != nil {
					return err
				}
				out, err = s.get(ctx, tx, ids[0])
				return err
			}
			var n int
			err = tx.QueryRowContext(ctx, s.dialect.Rebind(`SELECT COUNT(*) FROM airlock_approval_requests
				WHERE identity_name = ? AND connection = ? AND command_sha256 = ? AND mode = 'retry'
				AND status = 'approved' AND valid_until_us > ?`), k.Identity, k.Connection, k.Hash, us(now)).Scan(&n)
			if err != nil {
				return fmt.Errorf("find approved request: %w", err)
			}
			again = n > 0
			return nil
		})
		if err != nil {
			return nil, err
		}
		if out != nil {
			return out, nil
		}
		if !again {
			return nil, ErrNotFound
		}
	}
	return nil, ErrNotFound
}

// Finish implements Store.
func (s *SQLStore) Finish(ctx context.Context, id string, to Status, from []Status, now time.Time) (*Request, error) {
	if to != StatusExpired && to != StatusCancelled {
		return nil, fmt.Errorf("finish approval request: %q is not a final state Finish sets", to)
	}
	if len(from) == 0 {
		from = []Status{StatusPending}
	}
	args := []any{to, us(now), id}
	for _, f := range from {
		args = append(args, string(f))
	}
	return s.transition(ctx, id, `UPDATE airlock_approval_requests SET status = ?, decided_us = COALESCE(decided_us, ?)
		WHERE id = ? AND status IN (?`+strings.Repeat(", ?", len(from)-1)+`) RETURNING id`, args...)
}

// ExpireReplica implements Store.
func (s *SQLStore) ExpireReplica(ctx context.Context, replica string, now time.Time) ([]*Request, error) {
	return s.expireWhere(ctx, `replica = ? AND mode = 'hold' AND status IN ('pending', 'approved')`, us(now), replica)
}

// Sweep implements Store.
func (s *SQLStore) Sweep(ctx context.Context, now, purgeBefore time.Time) ([]*Request, error) {
	out, err := s.expireWhere(ctx, `(status = 'pending' AND expires_us <= ?) OR (status = 'approved' AND valid_until_us <= ?)`,
		us(now), us(now), us(now))
	if err != nil || purgeBefore.IsZero() {
		return out, err
	}
	err = s.inTx(ctx, func(tx *txn) error {
		const old = `SELECT id FROM airlock_approval_requests WHERE status NOT IN ('pending', 'approved') AND created_us < ?`
		if _, err := tx.ExecContext(ctx, s.dialect.Rebind(`DELETE FROM airlock_approval_votes WHERE request_id IN (`+old+`)`), us(purgeBefore)); err != nil {
			return fmt.Errorf("purge approval decisions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.Rebind(`DELETE FROM airlock_approval_previews WHERE request_id IN (`+old+`)`), us(purgeBefore)); err != nil {
			return fmt.Errorf("purge approval previews: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.Rebind(`DELETE FROM airlock_approval_requests WHERE id IN (`+old+`)`), us(purgeBefore)); err != nil {
			return fmt.Errorf("purge approval requests: %w", err)
		}
		return nil
	})
	return out, err
}

// expireWhere expires the requests matching cond (its placeholders follow
// the decided time in args) and returns them.
func (s *SQLStore) expireWhere(ctx context.Context, cond string, args ...any) ([]*Request, error) {
	var out []*Request
	err := s.inTx(ctx, func(tx *txn) error {
		ids, err := s.updateReturning(ctx, tx, `UPDATE airlock_approval_requests SET status = 'expired', decided_us = COALESCE(decided_us, ?)
			WHERE `+cond+` RETURNING id`, args...)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.note(id); err != nil {
				return err
			}
			r, err := s.get(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// CountPending implements Store.
func (s *SQLStore) CountPending(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM airlock_approval_requests WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending approval requests: %w", err)
	}
	return n, nil
}

// Watch implements Store. Changes made through this store are delivered
// in-process right after commit; on PostgreSQL a dedicated connection also
// LISTENs for changes committed by other replicas, reconnecting with
// backoff.
func (s *SQLStore) Watch(ctx context.Context, fn func(id string)) error {
	s.mu.Lock()
	n := s.nextW
	s.nextW++
	s.watchers[n] = fn
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, n)
		s.mu.Unlock()
	}()
	if s.dialect == Postgres {
		s.listen(ctx, fn)
		return nil
	}
	<-ctx.Done()
	return nil
}

func (s *SQLStore) emit(id string) {
	s.mu.Lock()
	fns := make([]func(string), 0, len(s.watchers))
	for _, fn := range s.watchers {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(id)
	}
}

var _ Store = (*SQLStore)(nil)

// errBadDSN hides the connection string, which may hold a password.
var errBadDSN = errors.New("cannot parse the PostgreSQL connection string")
