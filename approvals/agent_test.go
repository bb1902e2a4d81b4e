package approvals

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

func TestRetryingForcesRetryMode(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		cfg := testConfig()
		cfg.Mode = ModeHold
		s, _ := newService(t, st, cfg)
		a := s.Retrying()
		rr := review(alice, "prod", "DROP TABLE agents")

		dec, err := a.Review(ctx, rr, func(string) { t.Error("a retrying review notified like a hold") })
		if err != nil || dec.Action != protocols.Deny || dec.ApprovalID == "" {
			t.Fatalf("first review: %+v %v", dec, err)
		}
		r, err := s.Get(ctx, bob, dec.ApprovalID)
		if err != nil || r.Mode != ModeRetry || r.Status != StatusPending {
			t.Fatalf("request: %+v %v", r, err)
		}
		again, err := a.Review(ctx, rr, nil)
		if err != nil || again.ApprovalID != dec.ApprovalID || again.Action != protocols.Deny {
			t.Fatalf("the same command before approval: %+v %v", again, err)
		}
		if _, err := s.Decide(ctx, bob, dec.ApprovalID, Approve, ""); err != nil {
			t.Fatal(err)
		}
		run, err := a.Review(ctx, rr, nil)
		if err != nil || run.Action != protocols.Allow || run.ApprovalID != dec.ApprovalID || run.Reviewer != "bob" {
			t.Fatalf("after approval: %+v %v", run, err)
		}
		once, err := a.Review(ctx, rr, nil)
		if err != nil || once.Action != protocols.Deny || once.ApprovalID == dec.ApprovalID {
			t.Fatalf("an approval covers one run: %+v %v", once, err)
		}
	})
}

func TestWait(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		s, _ := newService(t, st, testConfig())
		pending := func(text string) string {
			dec, err := s.Retrying().Review(ctx, review(alice, "prod", text), nil)
			if err != nil || dec.ApprovalID == "" {
				t.Fatalf("review: %+v %v", dec, err)
			}
			return dec.ApprovalID
		}

		t.Run("woken by a decision", func(t *testing.T) {
			id := pending("DROP TABLE w1")
			done := make(chan *Request, 1)
			go func() {
				r, err := s.Wait(ctx, alice, id, time.Minute)
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
			time.Sleep(50 * time.Millisecond)
			if _, err := s.Decide(ctx, bob, id, Reject, "not today"); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if r.Status != StatusDenied {
					t.Fatalf("status %s", r.Status)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Wait did not return after the decision (the poll interval is an hour)")
			}
		})

		t.Run("times out pending", func(t *testing.T) {
			id := pending("DROP TABLE w2")
			r, err := s.Wait(ctx, alice, id, 30*time.Millisecond)
			if err != nil || r.Status != StatusPending {
				t.Fatalf("%+v %v", r, err)
			}
		})

		t.Run("context ends", func(t *testing.T) {
			id := pending("DROP TABLE w3")
			cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
			defer cancel()
			if _, err := s.Wait(cctx, alice, id, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v", err)
			}
		})

		t.Run("visibility", func(t *testing.T) {
			id := pending("DROP TABLE w4")
			if _, err := s.Wait(ctx, eve, id, time.Second); !errors.Is(err, ErrForbidden) {
				t.Fatalf("another caller: %v", err)
			}
			if _, err := s.Wait(ctx, alice, "not-an-id", time.Second); !errors.Is(err, ErrNotFound) {
				t.Fatalf("garbage id: %v", err)
			}
		})
	})
}
