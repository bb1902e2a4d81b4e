package main

import (
	"context"
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
	for {
		s.beat(ctx, stale)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat is one heartbeat and one look for replicas gone stale.
func (s *server) beat(ctx context.Context, stale time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, max(stale/2, time.Second))
	defer cancel()
	now := time.Now()
	if err := s.index.Heartbeat(ctx, now); err != nil {
		s.log.Warn("replica heartbeat failed", "err", err)
		return
	}
	gone, err := s.index.StaleNodes(ctx, now.Add(-stale))
	if err != nil {
		s.log.Warn("looking for stopped replicas failed", "err", err)
		return
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
}
