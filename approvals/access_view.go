package approvals

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/protocols"
)

// grantView is the in-memory view of the access grants in force, which
// the session flow asks about every command (protocols.AccessGrants). It
// is an immutable snapshot behind an atomic pointer, rebuilt from the
// store when the store announces a change of an access request (on this
// replica at once; on others through LISTEN/NOTIFY), when the earliest
// grant ends, and on every poll as a safety net. A snapshot the store has
// not confirmed for staleAfter is dropped: grants relax the policy, so an
// unreachable store must not keep a revoked one in force.
type grantView struct {
	s     *Service
	store AccessStore

	snap    atomic.Pointer[grantSnapshot]
	version atomic.Uint64

	mu     sync.Mutex // serialises refreshes
	lastOK time.Time  // mu held

	wake chan struct{}
	uses chan grantUse
}

type grantKey struct{ connection, identity string }

type grantSnapshot struct {
	byKey map[grantKey]*protocols.AccessGrant
	next  time.Time // the earliest end, zero when there is no grant
}

type grantUse struct {
	id      string
	session protocols.SessionInfo
	at      time.Time
}

func newGrantView(s *Service, st AccessStore) *grantView {
	v := &grantView{s: s, store: st, wake: make(chan struct{}, 1), uses: make(chan grantUse, 256)}
	v.snap.Store(&grantSnapshot{})
	v.version.Store(1)
	return v
}

// Version implements protocols.AccessGrants.
func (v *grantView) Version() uint64 { return v.version.Load() }

// Lookup implements protocols.AccessGrants.
func (v *grantView) Lookup(connection, identity string, now time.Time) *protocols.AccessGrant {
	g := v.snap.Load().byKey[grantKey{connection, identity}]
	if g == nil || !now.Before(g.Ends) {
		return nil
	}
	return g
}

// Used implements protocols.AccessGrants: the use is written to the store
// in the background (sessions list shows it); a full queue drops it,
// since the recording keeps the grant's id with every command anyway.
func (v *grantView) Used(g *protocols.AccessGrant, s protocols.SessionInfo) {
	select {
	case v.uses <- grantUse{id: g.ID, session: s, at: time.Now()}:
	default:
		v.s.log.Warn("grant use not noted: queue full", "grant", g.ID, "session", s.ID)
	}
}

// changed is called with each id the store announces.
func (v *grantView) changed(id string) {
	if id != "" && !strings.HasPrefix(id, accessNotice) {
		return
	}
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// refresh rebuilds the snapshot from the store.
func (v *grantView) refresh(ctx context.Context) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.s.now()
	list, err := v.store.ActiveGrants(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			v.s.log.Warn("read access grants", "err", err)
		}
		if !v.lastOK.IsZero() && now.Sub(v.lastOK) > v.staleAfter() && len(v.snap.Load().byKey) > 0 {
			v.s.log.Error("access grants dropped: the store has not confirmed them", "since", v.lastOK)
			v.install(&grantSnapshot{})
		}
		return
	}
	v.lastOK = now
	snap := &grantSnapshot{byKey: make(map[grantKey]*protocols.AccessGrant, len(list))}
	for _, r := range list {
		ov, err := policy.NewOverlay(r.Overlay, v.s.accessFor(r.Connection).LiftCritical)
		if err != nil {
			v.s.accessLog(r).Error("access grant not applied: its overlay does not compile", "err", err)
			continue
		}
		g := &protocols.AccessGrant{ID: r.ID, Identity: r.Identity.Name, Connection: r.Connection, Ends: r.EndsAt, Overlay: ov}
		k := grantKey{r.Connection, r.Identity.Name}
		if old := snap.byKey[k]; old != nil && old.Ends.After(g.Ends) {
			continue
		}
		snap.byKey[k] = g
		if snap.next.IsZero() || g.Ends.Before(snap.next) {
			snap.next = g.Ends
		}
	}
	v.install(snap)
}

func (v *grantView) install(snap *grantSnapshot) {
	v.snap.Store(snap)
	v.version.Add(1)
	v.s.m.grants.Set(float64(len(snap.byKey)))
}

func (v *grantView) staleAfter() time.Duration { return max(3*v.s.poll, 15*time.Second) }

// run keeps the view current and sweeps access requests until ctx ends.
func (v *grantView) run(ctx context.Context) {
	poll := time.NewTicker(v.s.poll)
	defer poll.Stop()
	sweep := time.NewTicker(v.s.sweep)
	defer sweep.Stop()
	end := time.NewTimer(time.Hour)
	defer end.Stop()
	arm := func() {
		next := v.snap.Load().next
		d := time.Hour
		if !next.IsZero() {
			d = max(time.Until(next), 0) + time.Millisecond
		}
		end.Reset(d)
	}
	v.sweepOnce(ctx)
	arm()
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-v.uses:
			if err := v.store.NoteGrantUse(ctx, u.id, u.session, u.at); err != nil && ctx.Err() == nil {
				v.s.log.Warn("note grant use", "grant", u.id, "session", u.session.ID, "err", err)
			}
			continue
		case <-v.wake:
			v.refresh(ctx)
		case <-poll.C:
			v.refresh(ctx)
		case <-end.C:
			v.sweepOnce(ctx)
		case <-sweep.C:
			v.sweepOnce(ctx)
		}
		arm()
	}
}

// sweepOnce closes what ran out of time, announces it, and refreshes.
func (v *grantView) sweepOnce(ctx context.Context) {
	now := v.s.now()
	closed, err := v.store.SweepAccess(ctx, now, now.Add(-v.s.cfg.Retention))
	if err != nil {
		if ctx.Err() == nil {
			v.s.log.Error("sweep access requests", "err", err)
		}
	}
	for _, r := range closed {
		switch r.Status {
		case AccessEnded:
			v.s.accessEvent("ended", r, "its window passed")
		case AccessExpired:
			v.s.accessEvent("expired", r, "no decision in time")
		}
	}
	v.refresh(ctx)
}

var _ protocols.AccessGrants = (*grantView)(nil)
