package index

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Replicas sharing a PostgreSQL store each record a heartbeat in
// airlock_replicas. A replica killed outright (SIGKILL, a lost machine)
// cannot close its sessions' entries; the next run of the same replica
// would (Abandon), but it may never come back. So every replica, on each
// beat, looks for replicas whose heartbeat is older than the stale limit
// and closes their open entries as abandoned (AbandonNode), then forgets
// them. Two survivors may do it at once: closing is idempotent.

const replicasSchema = `CREATE TABLE IF NOT EXISTS airlock_replicas (
		node    TEXT PRIMARY KEY,
		seen_us BIGINT NOT NULL
	)`

// Heartbeat records that this node is alive at now.
func (s *Store) Heartbeat(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.d.Rebind(`INSERT INTO airlock_replicas (node, seen_us) VALUES (?, ?)
		ON CONFLICT (node) DO UPDATE SET seen_us = excluded.seen_us`), s.node, micros(now))
	if err != nil {
		return fmt.Errorf("replica heartbeat: %w", err)
	}
	return nil
}

// StaleNodes lists the other nodes whose last heartbeat is before before.
func (s *Store) StaleNodes(ctx context.Context, before time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT node FROM airlock_replicas
		WHERE node <> ? AND seen_us < ? ORDER BY node`), s.node, micros(before))
	if err != nil {
		return nil, fmt.Errorf("stale replicas: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("stale replicas: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stale replicas: %w", err)
	}
	return out, nil
}

// AbandonNode closes the open entries of node, a replica that stopped
// heartbeating, as abandoned at now, and forgets the replica unless it
// beat again in the meantime (after before).
func (s *Store) AbandonNode(ctx context.Context, node string, before, now time.Time) (int, error) {
	n, err := s.closeOpen(ctx, node, now, "abandoned: replica "+node+" stopped (the recording is unfinished)")
	if err != nil {
		return n, err
	}
	if _, err := s.db.ExecContext(ctx, s.d.Rebind(`DELETE FROM airlock_replicas WHERE node = ? AND seen_us < ?`),
		node, micros(before)); err != nil {
		return n, fmt.Errorf("forget replica %s: %w", node, err)
	}
	return n, nil
}

// closeOpen closes node's entries that started before before and never
// ended, with reason. Each gets its file's size and last write time when
// the file can be read from here (a shared volume), else before.
func (s *Store) closeOpen(ctx context.Context, node string, before time.Time, reason string) (int, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT id, path FROM airlock_sessions
		WHERE node = ? AND ended_us IS NULL AND started_us < ?`), node, micros(before))
	if err != nil {
		return 0, fmt.Errorf("close abandoned sessions: %w", err)
	}
	type orphan struct{ id, path string }
	var orphans []orphan
	for rows.Next() {
		var o orphan
		if err := rows.Scan(&o.id, &o.path); err != nil {
			rows.Close()
			return 0, fmt.Errorf("close abandoned sessions: %w", err)
		}
		orphans = append(orphans, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("close abandoned sessions: %w", err)
	}
	n := 0
	for _, o := range orphans {
		end, size := before, int64(0)
		if st, err := os.Stat(o.path); err == nil {
			end, size = st.ModTime(), st.Size()
		}
		res, err := s.db.ExecContext(ctx, s.d.Rebind(`UPDATE airlock_sessions SET ended_us = ?, end_reason = ?, bytes = ?
			WHERE id = ? AND ended_us IS NULL`), micros(end), reason, size, o.id)
		if err != nil {
			return n, fmt.Errorf("close abandoned session %s: %w", o.id, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	return n, nil
}
