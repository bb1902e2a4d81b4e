package approvals

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

func TestReviewers(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		yes := true
		conns := map[string]ConnectionConfig{
			"prod":    {Reviewers: protocols.Principals{"group:dba"}, Required: 2},
			"sandbox": {SelfApproval: &yes},
		}
		s, _ := newService(t, st, testConfig(), withConns(conns))
		dave2 := protocols.Identity{Name: "dora", Groups: []string{"dba"}}

		t.Run("non-reviewer refused and nothing recorded", func(t *testing.T) {
			h := holdReview(ctx, s, review(alice, "staging", "DROP TABLE t"))
			id := h.id(t)
			for _, who := range []protocols.Identity{eve, {Name: "mallory"}, {}} {
				if _, err := s.Decide(ctx, who, id, Approve, ""); !errors.Is(err, ErrForbidden) {
					t.Fatalf("%q approved: %v", who.Name, err)
				}
			}
			if _, err := s.Decide(ctx, eve, id, Reject, "spite"); !errors.Is(err, ErrForbidden) {
				t.Fatalf("non-reviewer denied: %v", err)
			}
			if r, _ := st.Get(ctx, id); r.Status != StatusPending || len(r.Decisions) != 0 {
				t.Fatalf("refused decision left a trace: %+v", r)
			}
			if _, err := s.Get(ctx, eve, id); !errors.Is(err, ErrForbidden) {
				t.Fatalf("non-reviewer read the request: %v", err)
			}
			if _, err := s.Get(ctx, alice, id); err != nil {
				t.Fatalf("the caller cannot read their own request: %v", err)
			}
			if _, err := s.Decide(ctx, bob, id, Approve, ""); err != nil {
				t.Fatal(err)
			}
			if d, _ := h.wait(t); d.Action != protocols.Allow {
				t.Fatalf("%+v", d)
			}
		})

		t.Run("connection reviewers replace global ones", func(t *testing.T) {
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE t"))
			id := h.id(t)
			if _, err := s.Decide(ctx, bob, id, Approve, ""); !errors.Is(err, ErrForbidden) {
				t.Fatalf("global reviewer approved on prod: %v", err)
			}
			if _, err := s.Decide(ctx, dave, id, Reject, "no"); err != nil {
				t.Fatal(err)
			}
			h.wait(t)
		})

		t.Run("self approval refused by default", func(t *testing.T) {
			h := holdReview(ctx, s, review(bob, "staging", "DROP TABLE t"))
			id := h.id(t)
			_, err := s.Decide(ctx, bob, id, Approve, "")
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "own command") {
				t.Fatalf("self approval: %v", err)
			}
			// Withdrawing one's own command is allowed.
			if _, err := s.Decide(ctx, bob, id, Reject, "withdrawn"); err != nil {
				t.Fatalf("self deny: %v", err)
			}
			if d, _ := h.wait(t); d.Action != protocols.Deny {
				t.Fatalf("%+v", d)
			}
		})

		t.Run("self approval when configured", func(t *testing.T) {
			h := holdReview(ctx, s, review(bob, "sandbox", "DROP TABLE t"))
			id := h.id(t)
			if _, err := s.Decide(ctx, bob, id, Approve, "mine"); err != nil {
				t.Fatal(err)
			}
			if d, _ := h.wait(t); d.Action != protocols.Allow || d.Reviewer != "bob" {
				t.Fatalf("%+v", d)
			}
		})

		t.Run("two distinct approvals required", func(t *testing.T) {
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE t"))
			id := h.id(t)
			r, err := s.Decide(ctx, dave, id, Approve, "one")
			if err != nil || r.Status != StatusPending {
				t.Fatalf("first approval: %+v %v", r, err)
			}
			if _, err := s.Decide(ctx, dave, id, Approve, "again"); !errors.Is(err, ErrAlreadyVoted) {
				t.Fatalf("same reviewer twice: %v", err)
			}
			if !h.running() {
				t.Fatal("one approval of two released the command")
			}
			if _, err := s.Decide(ctx, dave2, id, Approve, "two"); err != nil {
				t.Fatal(err)
			}
			d, err := h.wait(t)
			if err != nil || d.Action != protocols.Allow || d.Reviewer != "dave,dora" {
				t.Fatalf("%+v %v", d, err)
			}
		})

		t.Run("a deny decides even after an approval", func(t *testing.T) {
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE t"))
			id := h.id(t)
			s.Decide(ctx, dave, id, Approve, "")
			if _, err := s.Decide(ctx, dave2, id, Reject, "no"); err != nil {
				t.Fatal(err)
			}
			if d, _ := h.wait(t); d.Action != protocols.Deny || !strings.Contains(d.Reason, "dora") {
				t.Fatalf("%+v", d)
			}
		})

		t.Run("racing reviewers", func(t *testing.T) {
			h := holdReview(ctx, s, review(alice, "staging", "DROP TABLE t"))
			id := h.id(t)
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i, who := range []protocols.Identity{bob, carol, dave} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					v := Approve
					if i == 1 {
						v = Reject
					}
					_, errs[i] = s.Decide(ctx, who, id, v, "race")
				}()
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
				} else if !errors.Is(err, ErrNotPending) {
					t.Fatal(err)
				}
			}
			d, _ := h.wait(t)
			r, _ := st.Get(ctx, id)
			if wins != 1 || len(r.Decisions) != 1 {
				t.Fatalf("%d winners, %d decisions", wins, len(r.Decisions))
			}
			if (r.Decisions[0].Verdict == Approve) != (d.Action == protocols.Allow) {
				t.Fatalf("decision %+v does not match the winning vote %+v", d, r.Decisions[0])
			}
		})

		t.Run("reasons", func(t *testing.T) {
			h := holdReview(ctx, s, review(alice, "staging", "DROP TABLE t"))
			id := h.id(t)
			for name, reason := range map[string]string{
				"deny without reason": "  ", "control characters": "ok\x1b[2J", "too long": strings.Repeat("é", maxReasonRunes+1),
				"invalid utf-8": "\xff",
			} {
				v := Reject
				if name != "deny without reason" {
					v = Approve
				}
				if _, err := s.Decide(ctx, bob, id, v, reason); !errors.Is(err, ErrBadReason) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if _, err := s.Decide(ctx, bob, newID(), Approve, ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown id: %v", err)
			}
			if _, err := s.Decide(ctx, bob, "../etc", Approve, ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("malformed id: %v", err)
			}
			s.Decide(ctx, bob, id, Reject, "done")
			h.wait(t)
		})
	})
}
