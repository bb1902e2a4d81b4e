package approvals

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// TestCrossReplicaWakeUp holds a command on replica A and decides it
// through replica B; only LISTEN/NOTIFY can wake A, since both poll once an
// hour. It then kills A's LISTEN connection and checks that A reconnects and
// still hears decisions, including one taken while it was away.
func TestCrossReplicaWakeUp(t *testing.T) {
	db := testenv.PostgresDB(t)
	dsn := testenv.PostgresURL(t, db)
	open := func() *SQLStore {
		return openTestStore(t, sqldb.Config{Driver: "postgres", DSN: protocols.Secret(dsn)})
	}
	ctx := context.Background()
	a, _ := newService(t, open(), testConfig(), withReplica("replica-a"), withPoll(time.Hour))
	b, _ := newService(t, open(), testConfig(), withReplica("replica-b"), withPoll(time.Hour))
	waitListeners(t, dsn, 2)

	h := holdReview(ctx, a, review(alice, "prod", "DROP TABLE users"))
	id := h.id(t)
	start := time.Now()
	if _, err := b.Decide(ctx, bob, id, Approve, "via b"); err != nil {
		t.Fatal(err)
	}
	d, err := h.wait(t)
	if err != nil || d.Action != protocols.Allow || d.ApprovalID != id {
		t.Fatalf("%+v %v", d, err)
	}
	t.Logf("woken across replicas in %s", time.Since(start))
	if r, _ := b.Get(ctx, bob, id); r.Replica != "replica-a" || r.Status != StatusConsumed {
		t.Fatalf("request %+v", r)
	}

	// Deny through B, too.
	h = holdReview(ctx, a, review(alice, "prod", "DROP TABLE orders"))
	id = h.id(t)
	if _, err := b.Decide(ctx, carol, id, Reject, "not now"); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.wait(t); d.Action != protocols.Deny {
		t.Fatalf("%+v", d)
	}

	// Cut every LISTEN connection while a command is held, decide while
	// they are down, and let the reconnect's resync wake the holder.
	h = holdReview(ctx, a, review(alice, "prod", "DROP TABLE carts"))
	id = h.id(t)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, listenAppName); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decide(ctx, bob, id, Approve, "while a was deaf"); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.wait(t); d.Action != protocols.Allow {
		t.Fatalf("after reconnect: %+v", d)
	}
	waitListeners(t, dsn, 2)
	h = holdReview(ctx, a, review(alice, "prod", "DROP TABLE lines"))
	id = h.id(t)
	if _, err := b.Decide(ctx, bob, id, Approve, ""); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.wait(t); d.Action != protocols.Allow {
		t.Fatalf("after reconnect, a fresh decision: %+v", d)
	}
}

// waitListeners waits until n LISTEN connections are up on the database.
func waitListeners(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var got int
		if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1
			AND datname = current_database() AND query LIKE 'LISTEN%'`, listenAppName).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
	}
	t.Fatalf("fewer than %d LISTEN connections after 20s", n)
}

// TestRestartExpiresHeldRequests simulates a replica that died while
// holding sessions: when it opens again, what it held is expired, never
// approved, and other replicas' requests are untouched.
func TestRestartExpiresHeldRequests(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		now := time.Now().UTC()
		held := newTestRequest(ModeHold, "alice", "prod", hashA, now)
		approvedHeld := newTestRequest(ModeHold, "alice", "prod", hashA, now)
		retry := newTestRequest(ModeRetry, "alice", "prod", hashA, now)
		other := newTestRequest(ModeHold, "alice", "prod", hashA, now)
		other.Replica = "replica-b"
		for _, r := range []*Request{held, approvedHeld, retry, other} {
			mustCreate(t, st, r)
		}
		mustVote(t, st, approvedHeld.ID, "bob", Approve, now)

		s, _ := newService(t, st, testConfig(), withReplica("replica-a"))
		for id, want := range map[string]Status{held.ID: StatusExpired, approvedHeld.ID: StatusExpired, retry.ID: StatusPending, other.ID: StatusPending} {
			if r, _ := st.Get(ctx, id); r.Status != want {
				t.Fatalf("%s: %s, want %s", id, r.Status, want)
			}
		}
		if n := metricValue(t, s.m.total.WithLabelValues("expired")); n != 2 {
			t.Fatalf("expired counted %v", n)
		}
		// Approving what the dead replica held is refused.
		if _, err := s.Decide(ctx, bob, held.ID, Approve, ""); err == nil {
			t.Fatal("approved a request of a dead session")
		}
	})
}

// TestSweep expires requests nobody holds, and sets the pending gauge.
func TestSweep(t *testing.T) {
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	c := newClock()
	cfg := testConfig()
	cfg.Mode = ModeRetry
	s, _ := newService(t, st, cfg, withClock(c))
	ctx := context.Background()
	d1, _ := s.Review(ctx, review(alice, "prod", "DROP TABLE a"), nil)
	d2, _ := s.Review(ctx, review(alice, "prod", "DROP TABLE b"), nil)
	if _, err := s.Decide(ctx, bob, d2.ApprovalID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	s.sweepOnce(ctx)
	if g := metricValue(t, s.m.pending); g != 1 {
		t.Fatalf("pending gauge %v", g)
	}
	c.Add(DefaultTimeout)
	s.sweepOnce(ctx)
	if r, _ := st.Get(ctx, d1.ApprovalID); r.Status != StatusExpired {
		t.Fatalf("pending not swept: %s", r.Status)
	}
	if r, _ := st.Get(ctx, d2.ApprovalID); r.Status != StatusApproved {
		t.Fatalf("approval swept within validity: %s", r.Status)
	}
	c.Add(DefaultValidity)
	s.sweepOnce(ctx)
	if r, _ := st.Get(ctx, d2.ApprovalID); r.Status != StatusExpired {
		t.Fatalf("approval past validity not swept: %s", r.Status)
	}
	if g := metricValue(t, s.m.pending); g != 0 {
		t.Fatalf("pending gauge %v", g)
	}
	c.Add(DefaultRetention + time.Hour)
	s.sweepOnce(ctx)
	if _, err := st.Get(ctx, d2.ApprovalID); err == nil {
		t.Fatal("retention did not purge")
	}
}
