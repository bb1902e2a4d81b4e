package approvals

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

func TestHold(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()

		t.Run("approve", func(t *testing.T) {
			s, _ := newService(t, st, testConfig())
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE users"))
			id := h.id(t)
			r, err := s.Get(ctx, bob, id)
			if err != nil || r.Status != StatusPending || r.Command != "DROP TABLE users" || r.Mode != ModeHold {
				t.Fatalf("pending request: %+v %v", r, err)
			}
			if !h.running() {
				t.Fatal("review returned before a decision")
			}
			if _, err := s.Decide(ctx, bob, id, Approve, "looks fine"); err != nil {
				t.Fatal(err)
			}
			dec, err := h.wait(t)
			if err != nil || dec.Action != protocols.Allow || dec.ApprovalID != id || dec.Reviewer != "bob" || dec.Risk != protocols.RiskHigh {
				t.Fatalf("decision %+v %v", dec, err)
			}
			if r, _ := st.Get(ctx, id); r.Status != StatusConsumed || r.ConsumedAt.IsZero() {
				t.Fatalf("after allow: %s", r.Status)
			}
			if _, err := s.Decide(ctx, carol, id, Approve, ""); !errors.Is(err, ErrNotPending) {
				t.Fatalf("approve consumed: %v", err)
			}
		})

		t.Run("notice text", func(t *testing.T) {
			s, _ := newService(t, st, testConfig())
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE x"))
			var note string
			select {
			case note = <-h.notes:
			case <-time.After(20 * time.Second):
				t.Fatal("no notice")
			}
			id := strings.Fields(note)[3]
			id = strings.TrimSuffix(id, ";")
			want := `approval required: request ` + id + `; approve with "airlock approvals approve ` + id + `" or at https://airlock.example:19090/approvals/` + id
			if note != want {
				t.Fatalf("notice\n got %q\nwant %q", note, want)
			}
			if _, err := s.Decide(ctx, bob, id, Reject, "no"); err != nil {
				t.Fatal(err)
			}
			h.wait(t)
		})

		t.Run("deny", func(t *testing.T) {
			s, _ := newService(t, st, testConfig())
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE users"))
			id := h.id(t)
			if _, err := s.Decide(ctx, carol, id, Reject, "use a migration"); err != nil {
				t.Fatal(err)
			}
			dec, err := h.wait(t)
			if err != nil || dec.Action != protocols.Deny || dec.ApprovalID != id ||
				!strings.Contains(dec.Reason, "carol") || !strings.Contains(dec.Reason, "use a migration") {
				t.Fatalf("decision %+v %v", dec, err)
			}
		})

		t.Run("timeout", func(t *testing.T) {
			cfg := testConfig()
			cfg.Timeout = time.Second
			s, reg := newService(t, st, cfg)
			h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE users"))
			id := h.id(t)
			dec, err := h.wait(t)
			if err != nil || dec.Action != protocols.Deny || !strings.Contains(dec.Reason, "expired") || dec.ApprovalID != id {
				t.Fatalf("decision %+v %v", dec, err)
			}
			if r, _ := st.Get(ctx, id); r.Status != StatusExpired {
				t.Fatalf("after timeout: %s", r.Status)
			}
			if _, err := s.Decide(ctx, bob, id, Approve, ""); !errors.Is(err, ErrNotPending) {
				t.Fatalf("approve expired: %v", err)
			}
			if n := metricValue(t, s.m.total.WithLabelValues("expired")); n != 1 {
				t.Fatalf("expired counted %v times", n)
			}
			if n := metricValue(t, s.m.wait.WithLabelValues("expired").(prometheus.Histogram)); n != 1 {
				t.Fatalf("wait histogram has %v samples", n)
			}
			if mf, err := reg.Gather(); err != nil || len(mf) < 3 {
				t.Fatalf("registry gathered %d families (%v)", len(mf), err)
			}
		})

		t.Run("context cancelled", func(t *testing.T) {
			s, _ := newService(t, st, testConfig())
			cctx, cancel := context.WithCancel(ctx)
			h := holdReview(cctx, s, review(alice, "prod", "DROP TABLE users"))
			id := h.id(t)
			cancel()
			dec, err := h.wait(t)
			if !errors.Is(err, context.Canceled) || dec.Action == protocols.Allow {
				t.Fatalf("decision %+v %v", dec, err)
			}
			if r, _ := st.Get(ctx, id); r.Status != StatusCancelled {
				t.Fatalf("after cancel: %s", r.Status)
			}
			// An approval arriving afterwards changes nothing.
			if _, err := s.Decide(ctx, bob, id, Approve, ""); !errors.Is(err, ErrNotPending) {
				t.Fatalf("approve cancelled: %v", err)
			}
		})

		t.Run("two sessions hold the same command separately", func(t *testing.T) {
			s, _ := newService(t, st, testConfig())
			h1 := holdReview(ctx, s, review(alice, "prod", "DROP TABLE twin"))
			h2 := holdReview(ctx, s, review(alice, "prod", "DROP TABLE twin"))
			id1, id2 := h1.id(t), h2.id(t)
			if id1 == id2 {
				t.Fatal("two held commands share one request")
			}
			if _, err := s.Decide(ctx, bob, id1, Approve, ""); err != nil {
				t.Fatal(err)
			}
			if d, _ := h1.wait(t); d.Action != protocols.Allow {
				t.Fatalf("first %+v", d)
			}
			time.Sleep(50 * time.Millisecond)
			if !h2.running() {
				t.Fatal("one approval released both sessions")
			}
			if _, err := s.Decide(ctx, bob, id2, Reject, "once is enough"); err != nil {
				t.Fatal(err)
			}
			if d, _ := h2.wait(t); d.Action != protocols.Deny {
				t.Fatalf("second %+v", d)
			}
		})
	})
}

func TestHoldRefusesIncompleteRequests(t *testing.T) {
	s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), testConfig())
	noText := review(alice, "prod", "DROP TABLE x")
	noText.Classification = &protocols.Classification{Risk: protocols.RiskHigh}
	noID := review(alice, "prod", "DROP TABLE x")
	noID.Session.Identity = protocols.Identity{}
	noConn := review(alice, "prod", "DROP TABLE x")
	noConn.Session.Connection = ""
	huge := review(alice, "prod", strings.Repeat("x", maxCommandBytes+1))
	for name, rr := range map[string]protocols.ReviewRequest{
		"no command":       {Session: noText.Session},
		"no redacted text": noText,
		"no identity":      noID,
		"no connection":    noConn,
		"too long":         huge,
	} {
		t.Run(name, func(t *testing.T) {
			called := false
			dec, err := s.Review(context.Background(), rr, func(string) { called = true })
			if err != nil || dec.Action != protocols.Deny || dec.Reason == "" || called {
				t.Fatalf("%+v %v notified=%v", dec, err, called)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		st := open(t)
		ctx := context.Background()
		cfg := testConfig()
		cfg.Mode = ModeRetry

		t.Run("refuse then approve then consume once", func(t *testing.T) {
			s, _ := newService(t, st, cfg)
			rr := review(alice, "prod", "DELETE FROM orders")
			called := false
			dec, err := s.Review(ctx, rr, func(string) { called = true })
			if err != nil || dec.Action != protocols.Deny || dec.ApprovalID == "" || called ||
				!strings.HasPrefix(dec.Reason, "approval required: request "+dec.ApprovalID+"; approve with \"airlock approvals approve "+dec.ApprovalID+"\"") {
				t.Fatalf("first try %+v %v", dec, err)
			}
			id := dec.ApprovalID
			again, _ := s.Review(ctx, rr, nil)
			if again.Action != protocols.Deny || again.ApprovalID != id {
				t.Fatalf("second try made a new request: %+v", again)
			}
			if _, err := s.Decide(ctx, bob, id, Approve, ""); err != nil {
				t.Fatal(err)
			}
			ok, err := s.Review(ctx, rr, nil)
			if err != nil || ok.Action != protocols.Allow || ok.ApprovalID != id || ok.Reviewer != "bob" {
				t.Fatalf("after approval %+v %v", ok, err)
			}
			after, _ := s.Review(ctx, rr, nil)
			if after.Action != protocols.Deny || after.ApprovalID == id {
				t.Fatalf("approval used twice: %+v", after)
			}
			if n := metricValue(t, s.m.total.WithLabelValues("consumed")); n != 1 {
				t.Fatalf("consumed counted %v", n)
			}
		})

		t.Run("concurrent retries consume once across replicas", func(t *testing.T) {
			a, _ := newService(t, st, cfg)
			b, _ := newService(t, open(t), cfg, withReplica("replica-b"))
			rr := review(alice, "prod", "TRUNCATE audit")
			dec, _ := a.Review(ctx, rr, nil)
			if _, err := b.Decide(ctx, carol, dec.ApprovalID, Approve, ""); err != nil {
				t.Fatal(err)
			}
			var allowed atomic.Int32
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := a
					if i%2 == 1 {
						s = b
					}
					d, err := s.Review(ctx, rr, nil)
					if err != nil {
						t.Error(err)
					}
					if d.Action == protocols.Allow {
						allowed.Add(1)
					}
				}()
			}
			wg.Wait()
			if allowed.Load() != 1 {
				t.Fatalf("one approval allowed %d commands", allowed.Load())
			}
		})

		t.Run("approval binds command caller and connection", func(t *testing.T) {
			s, _ := newService(t, st, cfg)
			rr := review(alice, "prod", "DROP TABLE a")
			dec, _ := s.Review(ctx, rr, nil)
			if _, err := s.Decide(ctx, bob, dec.ApprovalID, Approve, ""); err != nil {
				t.Fatal(err)
			}
			otherHash := review(alice, "prod", "DROP TABLE b")
			spaced := review(alice, "prod", "DROP TABLE a ")
			otherCaller := review(eve, "prod", "DROP TABLE a")
			otherConn := review(alice, "staging", "DROP TABLE a")
			otherProto := review(alice, "prod", "DROP TABLE a")
			otherProto.Command.Protocol = protocols.MySQL
			for name, o := range map[string]protocols.ReviewRequest{
				"different command": otherHash, "trailing space": spaced, "different caller": otherCaller,
				"different connection": otherConn, "different protocol": otherProto,
			} {
				d, err := s.Review(ctx, o, nil)
				if err != nil || d.Action == protocols.Allow || d.ApprovalID == dec.ApprovalID {
					t.Fatalf("%s: %+v %v", name, d, err)
				}
			}
			if d, _ := s.Review(ctx, rr, nil); d.Action != protocols.Allow {
				t.Fatalf("the approved command itself: %+v", d)
			}
		})

		t.Run("validity window", func(t *testing.T) {
			c := newClock()
			s, _ := newService(t, st, cfg, withClock(c))
			rr := review(alice, "prod", "DROP TABLE w")
			dec, _ := s.Review(ctx, rr, nil)
			if _, err := s.Decide(ctx, bob, dec.ApprovalID, Approve, ""); err != nil {
				t.Fatal(err)
			}
			c.Add(DefaultValidity + time.Second)
			late, _ := s.Review(ctx, rr, nil)
			if late.Action != protocols.Deny || late.ApprovalID == dec.ApprovalID {
				t.Fatalf("approval used past its validity: %+v", late)
			}
			if _, err := s.Decide(ctx, bob, late.ApprovalID, Approve, ""); err != nil {
				t.Fatal(err)
			}
			c.Add(DefaultValidity - time.Second)
			if d, _ := s.Review(ctx, rr, nil); d.Action != protocols.Allow || d.ApprovalID != late.ApprovalID {
				t.Fatalf("approval within validity: %+v", d)
			}
		})

		t.Run("pending request times out", func(t *testing.T) {
			c := newClock()
			s, _ := newService(t, st, cfg, withClock(c))
			rr := review(alice, "prod", "DROP TABLE late")
			dec, _ := s.Review(ctx, rr, nil)
			c.Add(DefaultTimeout)
			if _, err := s.Decide(ctx, bob, dec.ApprovalID, Approve, ""); !errors.Is(err, ErrNotPending) {
				t.Fatalf("approval after timeout: %v", err)
			}
			if d, _ := s.Review(ctx, rr, nil); d.Action != protocols.Deny || d.ApprovalID == dec.ApprovalID {
				t.Fatalf("retry after timeout: %+v", d)
			}
		})
	})
}

func TestModeOverrides(t *testing.T) {
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	cfg := testConfig()
	cfg.Overrides = []Override{{Principals: protocols.Principals{"group:agents"}, Mode: ModeRetry}}
	s, _ := newService(t, st, cfg, withConns(map[string]ConnectionConfig{
		"batch": {Mode: ModeRetry, Overrides: []Override{{Principals: protocols.Principals{"alice"}, Mode: ModeHold}}},
	}))
	agent := protocols.Identity{Name: "bot", Groups: []string{"agents"}}
	for _, tc := range []struct {
		name string
		id   protocols.Identity
		conn string
		want Mode
	}{
		{"global default", alice, "prod", ModeHold},
		{"global override by group", agent, "prod", ModeRetry},
		{"connection mode", eve, "batch", ModeRetry},
		{"connection override by name", alice, "batch", ModeHold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.settingsFor(tc.conn, &tc.id).Mode; got != tc.want {
				t.Fatalf("mode %s, want %s", got, tc.want)
			}
		})
	}
	d, err := s.Review(context.Background(), review(agent, "prod", "DROP TABLE q"), nil)
	if err != nil || d.Action != protocols.Deny || d.ApprovalID == "" {
		t.Fatalf("agent in retry mode: %+v %v", d, err)
	}
}
