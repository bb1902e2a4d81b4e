package index

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReplicaHeartbeats: a replica that stops beating is found stale by
// another, whose AbandonNode closes its open entries (only its, only open
// ones) and forgets it; one that beat again since is kept.
func TestReplicaHeartbeats(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		a := openStore(t, db, dialect, "node-a", t.TempDir())
		b := openStore(t, db, dialect, "node-b", t.TempDir())
		c := openStore(t, db, dialect, "node-c", t.TempDir())
		must(t, a.Heartbeat(ctx, t0))
		must(t, b.Heartbeat(ctx, t0))
		must(t, c.Heartbeat(ctx, t0))
		must(t, a.Heartbeat(ctx, t0.Add(time.Minute)))
		must(t, c.Heartbeat(ctx, t0.Add(time.Minute)))

		open, done := entry("b-open", "alice", "c", t0, "/elsewhere/b-open.alrec"), entry("b-done", "alice", "c", t0, "/x")
		open.Node, done.Node = "node-b", "node-b"
		mine := entry("a-open", "alice", "c", t0, "/x")
		mine.Node = "node-a"
		must(t, b.Started(ctx, open))
		must(t, b.Started(ctx, done))
		done.End, done.EndReason = t0.Add(time.Second), "client closed"
		must(t, b.Ended(ctx, done))
		must(t, a.Started(ctx, mine))

		stale, err := a.StaleNodes(ctx, t0.Add(30*time.Second))
		must(t, err)
		if !slices.Equal(stale, []string{"node-b"}) {
			t.Fatalf("stale = %v, want [node-b]", stale)
		}
		n, err := a.AbandonNode(ctx, "node-b", t0.Add(30*time.Second), t0.Add(time.Minute))
		must(t, err)
		if n != 1 {
			t.Fatalf("closed %d, want 1", n)
		}
		if x, _ := a.Get(ctx, "b-open"); x.Active() || !strings.Contains(x.EndReason, "abandoned: replica node-b stopped") {
			t.Errorf("b-open = %+v", x)
		}
		if x, _ := a.Get(ctx, "b-done"); x.EndReason != "client closed" {
			t.Errorf("b-done = %+v", x)
		}
		if x, _ := a.Get(ctx, "a-open"); !x.Active() {
			t.Errorf("a-open closed: %+v", x)
		}
		if stale, _ := c.StaleNodes(ctx, t0.Add(30*time.Second)); len(stale) != 0 {
			t.Errorf("node-b not forgotten: %v", stale)
		}
		// Again, from the other survivor: nothing left to close.
		if n, err := c.AbandonNode(ctx, "node-b", t0.Add(30*time.Second), t0.Add(time.Minute)); err != nil || n != 0 {
			t.Errorf("second close: %d, %v", n, err)
		}
	})
}
