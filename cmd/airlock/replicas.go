package main

import (
	"context"
	"fmt"
	"time"
)

// watchReplicas runs on replicas sharing a PostgreSQL store: it records
// this replica's heartbeat every store.heartbeat and, on each beat, takes
// every other replica silent for store.stale_after for gone (killed, or
// its machine lost): its held approval requests are withdrawn, so that
// their callers, reconnected to a survivor, can ask again, and its open
// sessions are closed in the index as abandoned. A replica that restarts
// under the same name closes its own at startup as well (index.Abandon).
func (s *server) watchReplicas(ctx context.Context) {
	every, stale := s.cfg.Store.Heartbeat, s.cfg.Store.StaleAfter
	t := time.NewTicker(every)
	defer t.Stop()
	failed := 0 // beats failed in a row: an unreachable store is logged once, not on every beat
	for {
		switch err := s.beat(ctx, stale); {
		case err != nil && failed == 0:
			s.log.Warn("replica heartbeat failed; logged again only once it recovers", "err", err)
			failed++
		case err != nil:
			failed++
		case failed > 0:
			s.log.Info("replica heartbeat recovered", "failed_beats", failed)
			failed = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat is one heartbeat and one look for replicas gone stale; it returns
// why the store could not be read or written.
func (s *server) beat(ctx context.Context, stale time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(stale/2, time.Second))
	defer cancel()
	now := time.Now()
	if err := s.index.Heartbeat(ctx, now); err != nil {
		return err
	}
	gone, err := s.index.StaleNodes(ctx, now.Add(-stale))
	if err != nil {
		return fmt.Errorf("looking for stopped replicas: %w", err)
	}
	for _, node := range gone {
		requests, err := s.approver.ExpireReplica(ctx, node)
		if err != nil {
			s.log.Warn("withdrawing a stopped replica's held approvals failed", "replica", node, "err", err)
			continue
		}
		sessions, err := s.index.AbandonNode(ctx, node, now.Add(-stale), now)
		if err != nil {
			s.log.Warn("closing a stopped replica's sessions failed", "replica", node, "err", err)
			continue
		}
		s.log.Warn("replica stopped heartbeating: its held approvals withdrawn, its sessions closed as abandoned",
			"replica", node, "approvals", requests, "sessions", sessions)
	}
	return nil
}
