package session

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

func withLimits(l Limits, maxMain int) envOpt {
	return func(o *Options, e *env) {
		o.Limiter = NewLimiter(l, e.reg)
		e.conns["main"].MaxSessions = maxMain
		e.conns["main"].Allow = protocols.Principals{"*"}
	}
}

var bob = Caller{Protocol: protocols.Postgres, User: "bob", Secret: "bob-token", Connection: "main", Peer: "127.0.0.1:5556", Local: true}

var aliceKV = Caller{Protocol: protocols.Redis, User: "alice", Secret: "alice-token", Connection: "kv", Peer: "127.0.0.1:5557", Local: true}

func TestLimitsRefuseTheSessionPastEachCap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limits  Limits
		maxMain int
		open    []Caller // admitted, in order
		refused Caller
		limit   Limit
	}{
		{"global", Limits{Sessions: 2}, 0, []Caller{alice, aliceKV}, bob, LimitGlobal},
		{"identity", Limits{PerIdentity: 2}, 0, []Caller{alice, aliceKV}, alice, LimitIdentity},
		{"connection", Limits{}, 2, []Caller{alice, bob}, alice, LimitConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withLimits(tc.limits, tc.maxMain))
			var open []*Session
			for _, c := range tc.open {
				s, err := e.g.Admit(context.Background(), c)
				if err != nil {
					t.Fatalf("%s: %v", c.User, err)
				}
				open = append(open, s)
			}
			_, err := e.g.Admit(context.Background(), tc.refused)
			var le *LimitError
			if !errors.Is(err, ErrTooManySessions) || !errors.As(err, &le) || le.Limit != tc.limit || le.Max != 2 {
				t.Fatalf("past the cap: %v, want the %s limit of 2", err, tc.limit)
			}
			var ae *AdmitError
			if !errors.As(err, &ae) || ae.Identity != tc.refused.User {
				t.Fatalf("AdmitError %+v does not name the identity", ae)
			}
			if got := e.counter(e.metrics.Connections, string(tc.refused.Protocol), tc.refused.Connection, "limited"); got != 1 {
				t.Fatalf("connections limited = %v, want 1", got)
			}
			if got := e.counter(e.g.opt.Limiter.refused, string(tc.refused.Protocol), string(tc.limit)); got != 1 {
				t.Fatalf("sessions limited = %v, want 1", got)
			}
			open[0].Release()
			s, err := e.g.Admit(context.Background(), tc.refused)
			if err != nil {
				t.Fatalf("after a slot was given back: %v", err)
			}
			s.Release()
		})
	}
}

// Every way a session ends gives its slot back, once.
func TestLimitsEverySessionEndGivesTheSlotBack(t *testing.T) {
	e := newEnv(t, withLimits(Limits{Sessions: 10, PerIdentity: 10}, 10))
	admit := func() *Session {
		s, err := e.g.Admit(context.Background(), alice)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	closed := admit()
	if err := closed.Start(); err != nil {
		t.Fatal(err)
	}
	aborted, released, neverStarted := admit(), admit(), admit()
	e.recs.fail = true
	failed := admit()
	if err := failed.Start(); !errors.Is(err, ErrRecordingUnavailable) {
		t.Fatalf("Start: %v", err)
	}
	e.recs.fail = false
	// A renewal takes no slot.
	renewal := alice
	renewal.Renewal = true
	if _, err := e.g.Admit(context.Background(), renewal); err != nil {
		t.Fatal(err)
	}
	if total, ofAlice, ofMain := e.g.opt.Limiter.InUse("alice", "main"); total != 4 || ofAlice != 4 || ofMain != 4 {
		t.Fatalf("in use %d/%d/%d, want 4 (the failed Start gave its slot back)", total, ofAlice, ofMain)
	}
	closed.Close("done")
	closed.Close("again")
	aborted.Abort(errors.New("upstream down"))
	released.Release()
	released.Release()
	neverStarted.Close("client went away")
	if total, ofAlice, ofMain := e.g.opt.Limiter.InUse("alice", "main"); total != 0 || ofAlice != 0 || ofMain != 0 {
		t.Fatalf("in use %d/%d/%d after every session ended, want 0", total, ofAlice, ofMain)
	}
}

func TestLimitsHoldUnderConcurrentAdmits(t *testing.T) {
	e := newEnv(t, withLimits(Limits{Sessions: 5}, 0))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted []*Session
		refused  int
	)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.g.Admit(context.Background(), alice)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrTooManySessions):
				refused++
			case err != nil:
				t.Error(err)
			default:
				admitted = append(admitted, s)
			}
		}()
	}
	wg.Wait()
	if len(admitted) != 5 || refused != 35 {
		t.Fatalf("admitted %d, refused %d; want 5 and 35", len(admitted), refused)
	}
	for _, s := range admitted {
		s.Release()
	}
	if total, _, _ := e.g.opt.Limiter.InUse("", ""); total != 0 {
		t.Fatalf("%d in use after all were released", total)
	}
}

func TestConnectionCapDefaults(t *testing.T) {
	for _, tc := range []struct {
		protocol protocols.Protocol
		max      int
		want     int
	}{
		{protocols.Postgres, 0, DefaultMaxSessions},
		{protocols.MySQL, 0, DefaultMaxSessions},
		{protocols.Redis, 0, 0},
		{protocols.HTTP, 0, 0},
		{protocols.Postgres, 7, 7},
		{protocols.Postgres, NoSessionCap, 0},
	} {
		if got := ConnectionCap(&protocols.Connection{Protocol: tc.protocol, MaxSessions: tc.max}); got != tc.want {
			t.Errorf("%s max %d: cap %d, want %d", tc.protocol, tc.max, got, tc.want)
		}
	}
}

// A nil Limiter caps nothing.
func TestNoLimiterCapsNothing(t *testing.T) {
	e := newEnv(t)
	for range 3 * DefaultMaxSessions {
		if _, err := e.g.Admit(context.Background(), alice); err != nil {
			t.Fatal(err)
		}
	}
}

// A cap learned from the server lowers a connection's default cap, and
// leaves a configured one alone.
func TestLearnedSessionCap(t *testing.T) {
	for _, tc := range []struct {
		name           string
		maxMain        int
		learned, admit int
	}{
		{"lowers the default", 0, 2, 2},
		{"never raises the default", 0, DefaultMaxSessions + 10, DefaultMaxSessions},
		{"leaves a configured cap", 3, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withLimits(Limits{}, tc.maxMain))
			e.g.LearnSessionCap("main", tc.learned)
			n := 0
			for ; n < DefaultMaxSessions+20; n++ {
				if _, err := e.g.Admit(context.Background(), alice); err != nil {
					if !errors.Is(err, ErrTooManySessions) {
						t.Fatal(err)
					}
					break
				}
			}
			if n != tc.admit {
				t.Fatalf("admitted %d, want %d", n, tc.admit)
			}
		})
	}
}

// A reload's caps apply to the next sessions; open ones stay open.
func TestSetLimitsAppliesToNewSessions(t *testing.T) {
	e := newEnv(t, withLimits(Limits{Sessions: 3}, 0))
	var open []*Session
	for range 3 {
		s, err := e.g.Admit(context.Background(), alice)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	e.g.opt.Limiter.SetLimits(Limits{Sessions: 1})
	open[0].Release()
	if _, err := e.g.Admit(context.Background(), alice); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("two open past a lowered cap of one: %v", err)
	}
	open[1].Release()
	open[2].Release()
	if _, err := e.g.Admit(context.Background(), alice); err != nil {
		t.Fatalf("under the lowered cap: %v", err)
	}
}
