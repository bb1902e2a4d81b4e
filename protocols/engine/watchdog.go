package engine

import (
	"context"
	"time"
)

// Watched is one open session as a query timeout sees it.
type Watched interface {
	// Idle reports whether the upstream owes the session nothing.
	Idle() bool
	// Progress counts what the upstream sent the session; it must change
	// whenever a message arrives.
	Progress() uint64
	// Stalled is called when a command has waited a whole timeout
	// without a word from the upstream: first with again false (the
	// engine cancels the command upstream, whose answer is progress), then,
	// after another timeout still without one, with again true (the engine
	// ends the session, naming the timeout).
	Stalled(again bool)
}

// watchState is what a watchdog remembers of one session.
type watchState struct {
	progress uint64
	since    time.Time
	warned   bool
}

// Watch enforces a query timeout on an engine's sessions until ctx ends:
// a session whose upstream owes it an answer and has sent nothing for
// timeout is Stalled. sessions returns the sessions open now.
func Watch(ctx context.Context, timeout time.Duration, sessions func() []Watched) {
	tick := time.NewTicker(max(timeout/4, 50*time.Millisecond))
	defer tick.Stop()
	seen := map[Watched]*watchState{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			open := sessions()
			alive := make(map[Watched]bool, len(open))
			for _, s := range open {
				alive[s] = true
				st := seen[s]
				p := s.Progress()
				if st == nil || st.progress != p || s.Idle() {
					seen[s] = &watchState{progress: p, since: now}
					continue
				}
				if now.Sub(st.since) < timeout {
					continue
				}
				s.Stalled(st.warned)
				st.warned, st.since = true, now
			}
			for s := range seen {
				if !alive[s] {
					delete(seen, s)
				}
			}
		}
	}
}
