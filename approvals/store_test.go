package approvals

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

func newTestRequest(mode Mode, who, conn, hash string, now time.Time) *Request {
	return &Request{
		ID: newID(), Status: StatusPending, Mode: mode,
		Identity:   protocols.Identity{Name: who, Groups: []string{"dev", "ops"}, Method: "token"},
		Connection: conn, Protocol: protocols.Postgres, SessionID: "sess-1", ClientAddr: "10.0.0.1:5432",
		Replica: "replica-a", Command: "DROP TABLE t", CommandSHA256: hash,
		Risk: protocols.RiskCritical, Rules: []string{"schema.drop", "x.y"}, Required: 1,
		Validity: 15 * time.Minute, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute),
	}
}

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)

		t.Run("round trip", func(t *testing.T) {
			r := newTestRequest(ModeHold, "alice", "prod", hashA, now)
			if err := st.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Identity.Name != "alice" || len(got.Identity.Groups) != 2 || got.Identity.Method != "token" ||
				got.Connection != "prod" || got.Protocol != protocols.Postgres || got.SessionID != "sess-1" ||
				got.ClientAddr != "10.0.0.1:5432" || got.Replica != "replica-a" || got.Command != "DROP TABLE t" ||
				got.CommandSHA256 != hashA || got.Risk != protocols.RiskCritical || len(got.Rules) != 2 ||
				got.Required != 1 || got.Validity != 15*time.Minute || !got.CreatedAt.Equal(now) ||
				!got.ExpiresAt.Equal(now.Add(5*time.Minute)) || got.Status != StatusPending || got.Mode != ModeHold ||
				!got.DecidedAt.IsZero() || len(got.Decisions) != 0 {
				t.Fatalf("round trip changed the request: %+v", got)
			}
			if _, err := st.Get(ctx, newID()); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown id: %v, want ErrNotFound", err)
			}
		})

		t.Run("vote approve deny and state errors", func(t *testing.T) {
			r := newTestRequest(ModeHold, "alice", "prod", hashA, now)
			r.Required = 2
			mustCreate(t, st, r)
			got, err := st.Vote(ctx, r.ID, Vote{Reviewer: "bob", Verdict: Approve, Reason: "ok"}, now)
			if err != nil || got.Status != StatusPending || len(got.Decisions) != 1 {
				t.Fatalf("first approval: %+v %v", got, err)
			}
			if _, err := st.Vote(ctx, r.ID, Vote{Reviewer: "bob", Verdict: Approve}, now); !errors.Is(err, ErrAlreadyVoted) {
				t.Fatalf("second vote by bob: %v, want ErrAlreadyVoted", err)
			}
			got, err = st.Vote(ctx, r.ID, Vote{Reviewer: "carol", Verdict: Approve}, now.Add(time.Second))
			if err != nil || got.Status != StatusApproved || !got.ValidUntil.Equal(now.Add(time.Second+15*time.Minute)) {
				t.Fatalf("second approval: %+v %v", got, err)
			}
			if a := got.Approvers(); len(a) != 2 || a[0] != "bob" || a[1] != "carol" {
				t.Fatalf("approvers %v", a)
			}
			_, err = st.Vote(ctx, r.ID, Vote{Reviewer: "dave", Verdict: Reject, Reason: "no"}, now)
			var se *StateError
			if !errors.As(err, &se) || se.Status != StatusApproved || !errors.Is(err, ErrNotPending) {
				t.Fatalf("vote on approved: %v", err)
			}
			if got, _ := st.Get(ctx, r.ID); len(got.Decisions) != 2 {
				t.Fatalf("refused vote was recorded: %+v", got.Decisions)
			}

			d := newTestRequest(ModeHold, "alice", "prod", hashA, now)
			d.Required = 2
			mustCreate(t, st, d)
			mustVote(t, st, d.ID, "bob", Approve, now)
			got, err = st.Vote(ctx, d.ID, Vote{Reviewer: "carol", Verdict: Reject, Reason: "not today"}, now)
			if err != nil || got.Status != StatusDenied {
				t.Fatalf("a deny decides: %+v %v", got, err)
			}
			if v, ok := got.Denial(); !ok || v.Reviewer != "carol" || v.Reason != "not today" {
				t.Fatalf("denial %+v", v)
			}
			if _, err := st.Vote(ctx, newID(), Vote{Reviewer: "bob", Verdict: Approve}, now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("vote on unknown: %v", err)
			}
		})

		t.Run("vote after deadline expires", func(t *testing.T) {
			r := newTestRequest(ModeHold, "alice", "prod", hashA, now)
			mustCreate(t, st, r)
			_, err := st.Vote(ctx, r.ID, Vote{Reviewer: "bob", Verdict: Approve}, r.ExpiresAt)
			var se *StateError
			if !errors.As(err, &se) || se.Status != StatusExpired {
				t.Fatalf("late vote: %v, want expired", err)
			}
			if got, _ := st.Get(ctx, r.ID); got.Status != StatusExpired || len(got.Decisions) != 0 {
				t.Fatalf("after late vote: %+v", got)
			}
		})

		t.Run("racing reviewers decide once", func(t *testing.T) {
			for range 5 {
				r := newTestRequest(ModeHold, "alice", "prod", hashA, now)
				mustCreate(t, st, r)
				st2 := open(t) // a second replica's store for odd reviewers
				var wins atomic.Int32
				var wg sync.WaitGroup
				for i, who := range []string{"bob", "carol", "dave", "erin"} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						v := Approve
						if i%2 == 1 {
							v = Reject
						}
						s := st
						if i%2 == 1 {
							s = st2
						}
						if _, err := s.Vote(ctx, r.ID, Vote{Reviewer: who, Verdict: v, Reason: "r"}, now); err == nil {
							wins.Add(1)
						} else if !errors.Is(err, ErrNotPending) {
							t.Errorf("vote: %v", err)
						}
					}()
				}
				wg.Wait()
				if wins.Load() != 1 {
					t.Fatalf("%d reviewers decided one request", wins.Load())
				}
				if got, _ := st.Get(ctx, r.ID); len(got.Decisions) != 1 || !got.Final() {
					t.Fatalf("after race: %+v", got)
				}
			}
		})

		t.Run("consume match exactly once", func(t *testing.T) {
			st2 := open(t) // another replica on the same database
			k := Key{Identity: "alice", Connection: "conc", Hash: hashB}
			r := newTestRequest(ModeRetry, "alice", "conc", hashB, now)
			mustCreate(t, st, r)
			if _, err := st.ConsumeMatch(ctx, k, now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("consume pending: %v", err)
			}
			mustVote(t, st, r.ID, "bob", Approve, now)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := st
					if i%2 == 1 {
						s = st2
					}
					got, err := s.ConsumeMatch(ctx, k, now.Add(time.Second))
					switch {
					case err == nil:
						if got.ID != r.ID || got.Status != StatusConsumed {
							t.Errorf("consumed %+v", got)
						}
						wins.Add(1)
					case !errors.Is(err, ErrNotFound):
						t.Errorf("consume: %v", err)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("approval consumed %d times", wins.Load())
			}
		})

		t.Run("consume match honours key, mode and validity", func(t *testing.T) {
			r := newTestRequest(ModeRetry, "alice", "keyed", hashA, now)
			mustCreate(t, st, r)
			mustVote(t, st, r.ID, "bob", Approve, now)
			h := newTestRequest(ModeHold, "alice", "keyed", hashB, now)
			mustCreate(t, st, h)
			mustVote(t, st, h.ID, "bob", Approve, now)
			for _, k := range []Key{
				{"bob", "keyed", hashA}, {"alice", "other", hashA}, {"alice", "keyed", hashB /* hold mode */},
			} {
				if got, err := st.ConsumeMatch(ctx, k, now); !errors.Is(err, ErrNotFound) {
					t.Fatalf("key %+v consumed %+v (%v)", k, got, err)
				}
			}
			if _, err := st.ConsumeMatch(ctx, Key{"alice", "keyed", hashA}, now.Add(15*time.Minute)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("consumed after validity: %v", err)
			}
			if got, err := st.ConsumeMatch(ctx, Key{"alice", "keyed", hashA}, now.Add(15*time.Minute-time.Microsecond)); err != nil || got.ID != r.ID {
				t.Fatalf("consume within validity: %+v %v", got, err)
			}
			if got, err := st.Consume(ctx, h.ID, now); err != nil || got.Status != StatusConsumed {
				t.Fatalf("consume hold: %+v %v", got, err)
			}
			if _, err := st.Consume(ctx, h.ID, now); !errors.Is(err, ErrNotPending) {
				t.Fatalf("second consume: %v", err)
			}
		})

		t.Run("create retry reuses pending", func(t *testing.T) {
			st2 := open(t)
			first := newTestRequest(ModeRetry, "alice", "reuse", hashA, now)
			var ids sync.Map
			var created atomic.Int32
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := st
					if i%2 == 1 {
						s = st2
					}
					r := newTestRequest(ModeRetry, "alice", "reuse", hashA, now)
					if i == 0 {
						r = first
					}
					got, c, err := s.CreateRetry(ctx, r, now)
					if err != nil {
						t.Errorf("create retry: %v", err)
						return
					}
					if c {
						created.Add(1)
					}
					ids.Store(got.ID, true)
				}()
			}
			wg.Wait()
			n := 0
			ids.Range(func(any, any) bool { n++; return true })
			if created.Load() != 1 || n != 1 {
				t.Fatalf("concurrent retries created %d requests, saw %d ids", created.Load(), n)
			}
			// Once the pending one is out of time a new one replaces it.
			later := now.Add(6 * time.Minute)
			r := newTestRequest(ModeRetry, "alice", "reuse", hashA, later)
			got, c, err := st.CreateRetry(ctx, r, later)
			if err != nil || !c || got.ID != r.ID {
				t.Fatalf("create after expiry: %+v %v %v", got, c, err)
			}
		})

		t.Run("finish", func(t *testing.T) {
			r := newTestRequest(ModeHold, "alice", "prod", hashA, now)
			mustCreate(t, st, r)
			got, err := st.Finish(ctx, r.ID, StatusCancelled, []Status{StatusPending, StatusApproved}, now)
			if err != nil || got.Status != StatusCancelled {
				t.Fatalf("cancel: %+v %v", got, err)
			}
			if _, err := st.Finish(ctx, r.ID, StatusExpired, nil, now); !errors.Is(err, ErrNotPending) {
				t.Fatalf("expire cancelled: %v", err)
			}
			if _, err := st.Vote(ctx, r.ID, Vote{Reviewer: "bob", Verdict: Approve}, now); !errors.Is(err, ErrNotPending) {
				t.Fatalf("approve cancelled: %v", err)
			}
			if _, err := st.Finish(ctx, r.ID, StatusApproved, nil, now); err == nil {
				t.Fatal("Finish approved a request")
			}
		})

		t.Run("list", func(t *testing.T) {
			all, err := st.List(ctx, Filter{Limit: 1000})
			if err != nil || len(all) < 5 {
				t.Fatalf("list: %d %v", len(all), err)
			}
			for i := 1; i < len(all); i++ {
				if all[i].CreatedAt.After(all[i-1].CreatedAt) {
					t.Fatal("list is not newest first")
				}
			}
			pend, err := st.List(ctx, Filter{Statuses: []Status{StatusPending}})
			if err != nil {
				t.Fatal(err)
			}
			n, err := st.CountPending(ctx)
			if err != nil || n != len(pend) {
				t.Fatalf("count pending %d, list %d (%v)", n, len(pend), err)
			}
			for _, r := range pend {
				if r.Status != StatusPending {
					t.Fatalf("filter let %s through", r.Status)
				}
			}
			two, _ := st.List(ctx, Filter{Limit: 2})
			if len(two) != 2 {
				t.Fatalf("limit 2 gave %d", len(two))
			}
			withVotes := 0
			for _, r := range all {
				withVotes += len(r.Decisions)
			}
			if withVotes == 0 {
				t.Fatal("list lost the decisions")
			}
		})
	})
}

func TestStoreSweepAndReplicaExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)

		mine := newTestRequest(ModeHold, "alice", "prod", hashA, now)
		mineApproved := newTestRequest(ModeHold, "alice", "prod", hashA, now)
		mineRetry := newTestRequest(ModeRetry, "alice", "prod", hashA, now)
		theirs := newTestRequest(ModeHold, "alice", "prod", hashA, now)
		theirs.Replica = "replica-b"
		for _, r := range []*Request{mine, mineApproved, mineRetry, theirs} {
			mustCreate(t, st, r)
		}
		mustVote(t, st, mineApproved.ID, "bob", Approve, now)
		gone, err := st.ExpireReplica(ctx, "replica-a", now)
		if err != nil || len(gone) != 2 {
			t.Fatalf("expire replica: %d %v", len(gone), err)
		}
		for id, want := range map[string]Status{mine.ID: StatusExpired, mineApproved.ID: StatusExpired, mineRetry.ID: StatusPending, theirs.ID: StatusPending} {
			if got, _ := st.Get(ctx, id); got.Status != want {
				t.Fatalf("%s: %s, want %s", id, got.Status, want)
			}
		}

		approved := newTestRequest(ModeRetry, "carol", "prod", hashB, now)
		mustCreate(t, st, approved)
		mustVote(t, st, approved.ID, "bob", Approve, now)
		swept, err := st.Sweep(ctx, now.Add(5*time.Minute), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(swept) != 2 { // mineRetry and theirs are out of time
			t.Fatalf("sweep at deadline expired %d", len(swept))
		}
		if got, _ := st.Get(ctx, approved.ID); got.Status != StatusApproved {
			t.Fatalf("approved request swept early: %s", got.Status)
		}
		swept, _ = st.Sweep(ctx, now.Add(15*time.Minute), time.Time{})
		if len(swept) != 1 || swept[0].ID != approved.ID || swept[0].Status != StatusExpired {
			t.Fatalf("approval past validity not swept: %+v", swept)
		}
		// Purge drops resolved requests older than the cut-off, votes too.
		if _, err := st.Sweep(ctx, now.Add(time.Hour), now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, approved.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("purge kept %v", err)
		}
		var votes int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM airlock_approval_votes`).Scan(&votes); err != nil || votes != 0 {
			t.Fatalf("purge left %d votes (%v)", votes, err)
		}
	})
}

func TestOpenStoreIdempotent(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				open(t)
			}()
		}
		wg.Wait()
		st := open(t)
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM airlock_approval_schema`).Scan(&n); err != nil || n < 1 {
			t.Fatalf("schema version rows %d %v", n, err)
		}
	})
}

func mustCreate(t *testing.T, st Store, r *Request) {
	t.Helper()
	if err := st.Create(context.Background(), r); err != nil {
		t.Fatalf("create: %v", err)
	}
}

func mustVote(t *testing.T, st Store, id, who string, v Verdict, now time.Time) *Request {
	t.Helper()
	got, err := st.Vote(context.Background(), id, Vote{Reviewer: who, Verdict: v, Reason: "because"}, now)
	if err != nil {
		t.Fatalf("vote %s %s: %v", who, v, err)
	}
	return got
}
