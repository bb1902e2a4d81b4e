package redis

import (
	"errors"
	"time"

	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

// A shutdown drains sessions (engine.Drain): each ends once the upstream
// owes it no reply and it is outside MULTI. The client reader, which
// forwards commands, decides: before each command it reads, and when the
// drain wakes it from its read with a past deadline. A session ends as
// Redis ends connections when it shuts down: the socket closes without a
// word. Redis commands run whole; what still waits at the end of the drain
// period (a blocking read) is ended by closing its upstream connection,
// which Redis answers by dropping the wait, with no effect.

// drain ends the engine's sessions for a shutdown.
func (e *Engine) drain(deps engine.Deps) {
	e.draining.Store(true)
	engine.Drain(engine.DrainOptions{Timeout: deps.DrainTimeout, CancelTimeout: deps.CancelTimeout, Log: e.log}, e.open)
}

// open returns the sessions still open.
func (e *Engine) open() []engine.Draining {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]engine.Draining, 0, len(e.sessions))
	for s := range e.sessions {
		out = append(out, s)
	}
	return out
}

var _ engine.Draining = (*relay)(nil)

// Idle implements engine.Draining: the upstream owes no reply.
func (s *relay) Idle() bool {
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	return s.pending.owed == 0
}

// Wake implements engine.Draining.
func (s *relay) Wake() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) }

// Cancel implements engine.Draining: a Redis command cannot be cancelled;
// what still waits ends with its connection.
func (s *relay) Cancel() { s.Stop() }

// Stop implements engine.Draining.
func (s *relay) Stop() { s.end("airlock shutdown") }

// drained ends the session if a drain is on and nothing of it waits
// upstream, outside MULTI. Client reader only.
func (s *relay) drained() bool {
	if !s.engine.draining.Load() || !s.Idle() || s.state.multi {
		return false
	}
	s.Stop()
	return true
}

// woken handles a read a drain's Wake interrupted: it reports whether it
// was one, and whether the session ended.
func (s *relay) woken(err error) (handled, ended bool) {
	if !isTimeout(err) || !s.engine.draining.Load() || s.isEnded() {
		return false, false
	}
	if s.drained() {
		return true, true
	}
	if s.in.Buffered() > 0 {
		// Interrupted inside a command, which may not resume: it was not
		// forwarded, and the session ends (its MULTI is discarded).
		s.Stop()
		return true, true
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	return true, s.drained()
}

// withdrawn ends a session whose held command the shutdown withdrew, once
// the replies owed before it are written.
func (s *relay) withdrawn() {
	for !s.Idle() && !s.isEnded() {
		time.Sleep(10 * time.Millisecond)
	}
	s.fail("ERR Airlock is shutting down: the command waiting for approval was withdrawn; it did not run", "airlock shutdown")
}

// shuttingDown reports whether err is the shutdown's withdrawal, having
// ended the session.
func (s *relay) shuttingDown(err error) bool {
	if !errors.Is(err, session.ErrShuttingDown) {
		return false
	}
	s.withdrawn()
	return true
}
