package session

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// ThrottleConfig tunes how failed authentications are slowed down.
type ThrottleConfig struct {
	// Free is how many failures a source address or an identity may have
	// before the next ones are answered late (default 3).
	Free int
	// Base is the first delay; each further failure doubles it (default
	// 100ms), up to Max (default 5s).
	Base, Max time.Duration
	// Forget is the quiet period after which a source's or an identity's
	// failures are forgotten (default 10m).
	Forget time.Duration
	// Tracked caps the sources and identities remembered; past it the one
	// that failed least recently is forgotten (default 65536).
	Tracked int
	// LogBurst failures are logged one by one per LogInterval (defaults 10
	// and 1m); past it they are counted and summed up in one line.
	LogBurst    int
	LogInterval time.Duration
}

// ApplyDefaults sets the defaults of the fields left zero.
func (c *ThrottleConfig) ApplyDefaults() {
	if c.Free == 0 {
		c.Free = 3
	}
	if c.Base == 0 {
		c.Base = 100 * time.Millisecond
	}
	if c.Max == 0 {
		c.Max = max(5*time.Second, c.Base)
	}
	if c.Forget == 0 {
		c.Forget = 10 * time.Minute
	}
	if c.Tracked == 0 {
		c.Tracked = 65536
	}
	if c.LogBurst == 0 {
		c.LogBurst = 10
	}
	if c.LogInterval == 0 {
		c.LogInterval = time.Minute
	}
}

// Throttle slows down guessing: each failed authentication is counted
// against its source address and against the identity it named, and once
// either has had more than Free failures, the answer to each further one
// waits Base × 2^n, up to Max, after the previous late answer to the same
// source or identity (so concurrent guesses queue; at most queueDepth × Max
// ahead). The wait is spent by the goroutine that
// already serves the connection or request, so pending guesses cost no
// goroutine of their own. Successful logins are never delayed, nor are
// other sources' or identities' failures. Memory is bounded by Tracked,
// and failures are logged at a bounded rate. A nil *Throttle delays
// nothing. It is safe for concurrent use.
type Throttle struct {
	cfg       ThrottleConfig
	log       *slog.Logger
	throttled *prometheus.CounterVec
	now       func() time.Time
	// after schedules the summary of the failures not logged one by one.
	after func(time.Duration, func())

	mu    sync.Mutex
	keys  map[string]*list.Element // of *failures
	order *list.List               // least recently failed at the back

	logMu      sync.Mutex
	logStart   time.Time // the current log interval's start
	logged     int       // failures logged one by one in it
	suppressed map[protocols.Protocol]int
	scheduled  bool
}

// failures is what a Throttle remembers of one source or identity.
type failures struct {
	key   string
	count int
	last  time.Time
	// next is when the next late answer to this key may go out: late
	// answers to one source or identity are spaced by their delays, so
	// that guessing over more connections at once does not guess faster.
	next time.Time
}

// queueDepth bounds, in Max delays, how far ahead late answers are
// scheduled; a guess that would be answered later than that waits that
// long (or until its caller's context ends) without taking a slot.
const queueDepth = 4

// NewThrottle returns a Throttle that logs to log and registers
// airlock_auth_throttled_total with reg (nil: not registered).
func NewThrottle(cfg ThrottleConfig, log *slog.Logger, reg prometheus.Registerer) *Throttle {
	cfg.ApplyDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Throttle{cfg: cfg, log: log, now: time.Now, keys: map[string]*list.Element{}, order: list.New(),
		suppressed: map[protocols.Protocol]int{},
		after:      func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_auth_throttled_total",
			Help: "Failed authentications answered late because their source address or identity had failed too often (auth_throttle).",
		}, []string{"protocol"}),
	}
	if reg != nil {
		reg.MustRegister(t.throttled)
	}
	return t
}

// Fail records a failed authentication by protocol p from peer (an
// address "host:port") naming identity (may be empty), logs it at a
// bounded rate, and waits the delay it earned, or until ctx ends.
func (t *Throttle) Fail(ctx context.Context, p protocols.Protocol, peer, identity string) {
	if t == nil {
		return
	}
	d, n := t.record(peer, identity)
	t.logFailure(p, peer, identity, n, d)
	if d <= 0 {
		return
	}
	t.throttled.WithLabelValues(string(p)).Inc()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// record counts one failure of peer's source and of identity, and returns
// how long its answer waits and the source's count. The delay earned is
// the larger of the two keys'; the answer goes out that long after the
// later of now and the keys' previous late answers.
func (t *Throttle) record(peer, identity string) (time.Duration, int) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := []*failures{t.count("a:"+sourceOf(peer), now)}
	if identity != "" {
		keys = append(keys, t.count(identityKey(identity), now))
	}
	worst, at := 0, now
	for _, f := range keys {
		worst = max(worst, f.count)
		if f.next.After(at) {
			at = f.next
		}
	}
	d := t.delay(worst)
	if d <= 0 {
		return 0, keys[0].count
	}
	at = at.Add(d)
	horizon := time.Duration(queueDepth) * t.cfg.Max
	if at.Sub(now) > horizon {
		return horizon, keys[0].count
	}
	for _, f := range keys {
		f.next = at
	}
	return at.Sub(now), keys[0].count
}

// count adds one failure to key and returns what it remembers of it.
// t.mu is held.
func (t *Throttle) count(key string, now time.Time) *failures {
	if el, ok := t.keys[key]; ok {
		f := el.Value.(*failures)
		if now.Sub(f.last) >= t.cfg.Forget {
			f.count = 0
		}
		f.count++
		f.last = now
		t.order.MoveToFront(el)
		return f
	}
	for t.order.Len() >= t.cfg.Tracked {
		old := t.order.Back()
		delete(t.keys, old.Value.(*failures).key)
		t.order.Remove(old)
	}
	f := &failures{key: key, count: 1, last: now}
	t.keys[key] = t.order.PushFront(f)
	return f
}

// delay is the wait earned by the n-th failure.
func (t *Throttle) delay(n int) time.Duration {
	over := n - t.cfg.Free
	if over <= 0 {
		return 0
	}
	d := t.cfg.Base
	for i := 1; i < over && d < t.cfg.Max; i++ {
		d *= 2
	}
	return min(d, t.cfg.Max)
}

// Tracked is how many sources and identities the throttle remembers.
func (t *Throttle) Tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

// logFailure logs the first LogBurst failures of each interval one by
// one and counts the rest, which one line sums up when it ends.
func (t *Throttle) logFailure(p protocols.Protocol, peer, identity string, n int, d time.Duration) {
	now := t.now()
	t.logMu.Lock()
	if now.Sub(t.logStart) >= t.cfg.LogInterval {
		t.flushLocked()
		t.logStart, t.logged = now, 0
	}
	if t.logged < t.cfg.LogBurst {
		t.logged++
		t.logMu.Unlock()
		if len(identity) > maxNameInKey {
			identity = identity[:maxNameInKey] + "…"
		}
		t.log.Warn("authentication failed", "protocol", string(p), "client", peer, "identity", identity,
			"source_failures", n, "delay", d)
		return
	}
	t.suppressed[p]++
	schedule := !t.scheduled
	t.scheduled = true
	t.logMu.Unlock()
	if schedule {
		t.after(t.cfg.LogInterval, t.Flush)
	}
}

// Flush logs the summary of the failures not logged one by one so far
// (the process calls it as it stops).
func (t *Throttle) Flush() {
	if t == nil {
		return
	}
	t.logMu.Lock()
	defer t.logMu.Unlock()
	t.flushLocked()
}

func (t *Throttle) flushLocked() {
	t.scheduled = false
	for p, n := range t.suppressed {
		t.log.Warn("authentication failures not logged one by one", "protocol", string(p), "failures", n,
			"interval", t.cfg.LogInterval)
		delete(t.suppressed, p)
	}
}

// maxNameInKey bounds the identity names kept as they are in keys and
// logs; a longer one (any name a client sends) is kept by its hash.
const maxNameInKey = 128

// identityKey is the key of an identity's failures.
func identityKey(name string) string {
	if len(name) <= maxNameInKey {
		return "i:" + name
	}
	sum := sha256.Sum256([]byte(name))
	return "i#" + hex.EncodeToString(sum[:16])
}

// sourceOf is the part of a peer address a throttle counts failures by:
// the IPv4 address, or the /64 network of an IPv6 one (a single host
// commonly holds a whole /64).
func sourceOf(peer string) string {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		if a, aerr := netip.ParseAddr(peer); aerr == nil {
			ap = netip.AddrPortFrom(a, 0)
		} else {
			return peer
		}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// Throttle returns the gateway's throttle of failed authentications (nil:
// none).
func (g *Gateway) Throttle() *Throttle { return g.opt.Throttle }

// RejectedToken counts a caller refused for a wrong token outside Admit
// (an HTTP bearer checked up front, a MySQL proof refused at once), and
// waits the delay the throttle gives it.
func (g *Gateway) RejectedToken(ctx context.Context, c Caller) {
	g.Rejected(c.Protocol, "token")
	g.opt.Throttle.Fail(ctx, c.Protocol, c.Peer, c.User)
}
