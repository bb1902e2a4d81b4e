package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-gw/airlock/protocols"
)

// fakeClock is a throttle's clock, moved by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newTestThrottle returns a throttle on a fake clock whose summary timer
// is kept for the test to fire.
func newTestThrottle(cfg ThrottleConfig, log *slog.Logger) (*Throttle, *fakeClock, *[]func()) {
	th := NewThrottle(cfg, log, nil)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th.now = clock.now
	var timers []func()
	th.after = func(_ time.Duration, f func()) { timers = append(timers, f) }
	return th, clock, &timers
}

func TestThrottleDelays(t *testing.T) {
	th, clock, _ := newTestThrottle(ThrottleConfig{Free: 2, Base: 10 * time.Millisecond, Max: 70 * time.Millisecond, Forget: time.Minute}, nil)
	want := []time.Duration{0, 0, 10, 20, 40, 70, 70}
	for i, w := range want {
		d, _ := th.record("192.0.2.7:4000", "")
		if d != w*time.Millisecond {
			t.Fatalf("failure %d: delay %s, want %s", i+1, d, w*time.Millisecond)
		}
		clock.advance(time.Second)
	}
	// Another address and another identity are not slowed.
	if d, _ := th.record("192.0.2.8:4000", "bob"); d != 0 {
		t.Fatalf("another source: delay %s", d)
	}
	// The same address from another port is the same source.
	if d, _ := th.record("192.0.2.7:5000", ""); d != 70*time.Millisecond {
		t.Fatalf("same source, other port: delay %s", d)
	}
	// A quiet period forgets the source.
	clock.advance(time.Minute)
	if d, _ := th.record("192.0.2.7:4000", ""); d != 0 {
		t.Fatalf("after a quiet minute: delay %s", d)
	}
}

func TestThrottleIdentity(t *testing.T) {
	th, _, _ := newTestThrottle(ThrottleConfig{Free: 1, Base: time.Second, Max: 8 * time.Second}, nil)
	// Guesses at one identity from ever new addresses are slowed by the
	// identity's count.
	var last time.Duration
	for i := range 5 {
		last, _ = th.record(fmt.Sprintf("198.51.100.%d:1", i), "alice")
	}
	// At the same instant, each late answer queues behind the one before:
	// 1s, then 2s after it, then 4s, then 8s.
	if last != 15*time.Second {
		t.Fatalf("fifth failure on alice: answered in %s, want 15s (1+2+4+8)", last)
	}
	if d, _ := th.record("198.51.100.200:1", "carol"); d != 0 {
		t.Fatalf("another identity from a new address: delay %s", d)
	}
}

// TestThrottleQueuesConcurrentGuesses: guesses from one source over many
// connections at once are answered one delay apart, so more connections
// do not guess faster; past queueDepth × Max ahead, a guess waits that
// long without pushing the queue further.
func TestThrottleQueuesConcurrentGuesses(t *testing.T) {
	th, clock, _ := newTestThrottle(ThrottleConfig{Free: 1, Base: time.Second, Max: time.Second}, nil)
	th.record("192.0.2.30:1", "")
	for i, want := range []time.Duration{1, 2, 3, 4, 4, 4} {
		if d, _ := th.record(fmt.Sprintf("192.0.2.30:%d", i+2), ""); d != want*time.Second {
			t.Fatalf("concurrent guess %d: answered in %s, want %s", i+2, d, want*time.Second)
		}
	}
	// A second later the queue has moved by a second: the next slot is
	// 4s after the last one taken, 3s from now, plus its delay.
	clock.advance(time.Second)
	if d, _ := th.record("192.0.2.30:9", ""); d != 4*time.Second {
		t.Fatalf("a second later: answered in %s, want 4s", d)
	}
}

func TestThrottleIPv6Prefix(t *testing.T) {
	th, _, _ := newTestThrottle(ThrottleConfig{Free: 1, Base: time.Second, Max: time.Minute}, nil)
	th.record("[2001:db8:1:2::1]:5432", "")
	if d, _ := th.record("[2001:db8:1:2:ffff::9]:5432", ""); d != time.Second {
		t.Fatalf("same /64: delay %s, want 1s", d)
	}
	if d, _ := th.record("[2001:db8:1:3::1]:5432", ""); d != 0 {
		t.Fatalf("another /64: delay %s", d)
	}
}

func TestThrottleBounded(t *testing.T) {
	th, _, _ := newTestThrottle(ThrottleConfig{Free: 1, Base: time.Second, Tracked: 100}, nil)
	th.record("203.0.113.1:1", "")
	for i := range 10000 {
		th.record(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), "")
	}
	if n := th.Tracked(); n != 100 {
		t.Fatalf("tracked %d sources, want the cap, 100", n)
	}
	// The least recently failed source was forgotten.
	if d, _ := th.record("203.0.113.1:1", ""); d != 0 {
		t.Fatalf("evicted source: delay %s", d)
	}
}

func TestThrottleLogBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	th, clock, timers := newTestThrottle(ThrottleConfig{Base: time.Nanosecond, Max: time.Nanosecond, LogBurst: 5, LogInterval: time.Minute}, log)
	for range 1000 {
		th.Fail(context.Background(), protocols.Redis, "192.0.2.9:1", "")
	}
	lines := strings.Count(buf.String(), "\n")
	if lines != 5 {
		t.Fatalf("%d lines logged for 1000 failures in one interval, want 5:\n%s", lines, buf.String())
	}
	if len(*timers) != 1 {
		t.Fatalf("%d summary timers scheduled, want 1", len(*timers))
	}
	(*timers)[0]()
	if !strings.Contains(buf.String(), "failures=995") {
		t.Fatalf("no summary of the 995 failures not logged:\n%s", buf.String())
	}
	var m dto.Metric
	_ = th.throttled.WithLabelValues("redis").Write(&m)
	if n := m.GetCounter().GetValue(); n != 997 {
		t.Fatalf("airlock_auth_throttled_total = %v, want 997 (1000 less 3 free)", n)
	}
	// A new interval logs failures one by one again.
	buf.Reset()
	clock.advance(time.Minute)
	th.Fail(context.Background(), protocols.Redis, "192.0.2.9:1", "")
	if !strings.Contains(buf.String(), "authentication failed") {
		t.Fatalf("a new interval's first failure was not logged: %q", buf.String())
	}
	if strings.Contains(buf.String(), "secret") {
		t.Fatal("the log mentions a secret")
	}
}

func TestThrottleWaitEndsWithContext(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Free: -1, Base: time.Hour, Max: time.Hour}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	th.Fail(ctx, protocols.Postgres, "192.0.2.1:1", "x") // returns, not after an hour
	var nilThrottle *Throttle
	nilThrottle.Fail(context.Background(), protocols.Postgres, "192.0.2.1:1", "x")
}

// TestAdmitThrottles: Admit counts a wrong token against the caller's
// source and identity and waits the delay it earned (here an hour, cut
// short by the caller's context); a right token from the same source is
// admitted without waiting, and a proof mismatch is not counted.
func TestAdmitThrottles(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Free: 1, Base: time.Hour, Max: time.Hour}, nil, nil)
	e := newEnv(t, func(o *Options, _ *env) { o.Throttle = th })
	if e.g.Throttle() != th {
		t.Fatal("Gateway.Throttle is not the configured throttle")
	}
	wrong := alice
	wrong.Secret = "guess"
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := e.g.Admit(ctx, wrong)
		cancel()
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	var m dto.Metric
	_ = th.throttled.WithLabelValues("postgres").Write(&m)
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Fatalf("throttled %v, want 1 (the second guess)", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.g.Admit(context.Background(), alice)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a right token waited behind the source's failures")
	}
	if _, err := e.g.Admit(context.Background(), Caller{Protocol: protocols.Postgres, User: "alice", Connection: "main",
		Peer: "192.0.2.99:5555", Proof: proves("guess")}); !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("proof mismatch: %v", err)
	}
	if n := th.Tracked(); n != 2 {
		t.Fatalf("tracked %d keys, want 2 (the source and alice)", n)
	}
}

// TestThrottleLongNames: a long identity name is kept by its hash, so a
// tracked key stays small, and is cut short in the log.
func TestThrottleLongNames(t *testing.T) {
	long := strings.Repeat("n", 1<<20)
	if k := identityKey(long); len(k) > 40 || k != identityKey(long) || k == identityKey(long+"x") {
		t.Fatalf("key of a long name: %d bytes", len(k))
	}
	var buf bytes.Buffer
	th, _, _ := newTestThrottle(ThrottleConfig{Free: 5}, slog.New(slog.NewTextHandler(&buf, nil)))
	th.Fail(context.Background(), protocols.MySQL, "192.0.2.1:1", long)
	if buf.Len() > 1024 {
		t.Fatalf("a long name made a %d-byte log line", buf.Len())
	}
}
