package postgres

import (
	"errors"
	"time"

	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

// A shutdown drains sessions (engine.Drain): the listener is closed, and
// each session ends with 57P01 once nothing of it runs upstream and it is
// outside a transaction. Only the client reader, which forwards commands,
// ends a session for being idle, so that no command is forwarded as it
// ends: the drain wakes it from its read with a past deadline, and it
// looks at the session before each message it reads. At the end of the
// drain period the upstream is sent a CancelRequest for what still runs;
// PostgreSQL's answer (57014) reaches the client and the recording before
// the session ends.

// shutdownError is what a client reads when Airlock ends its session for a
// shutdown.
func shutdownError() *pgError {
	return fatal(codeAdminShutdown, "terminating connection because Airlock is shutting down")
}

// withdrawnError ends a session whose command waited for approval when the
// shutdown began.
func withdrawnError() *pgError {
	pe := shutdownError()
	pe.Detail = "the command waiting for approval was withdrawn; it did not run"
	return pe
}

// drain ends the engine's sessions for a shutdown.
func (e *Engine) drain(deps engine.Deps) {
	e.draining.Store(true)
	engine.Drain(engine.DrainOptions{Timeout: deps.DrainTimeout, CancelTimeout: deps.CancelTimeout, Log: e.log}, e.open)
}

// open returns the sessions still open.
func (e *Engine) open() []engine.Draining {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Draining
	for _, l := range e.sessions {
		for _, s := range l {
			out = append(out, s)
		}
	}
	return out
}

var _ engine.Draining = (*relay)(nil)

// Idle implements engine.Draining: the upstream owes no response.
func (s *relay) Idle() bool {
	if s.engine.relayOnly {
		return s.upIdle.Load()
	}
	return s.pending.empty()
}

// Wake implements engine.Draining: the client reader returns from its read
// to look at the session (drained).
func (s *relay) Wake() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) }

// Cancel implements engine.Draining: what runs upstream is cancelled; a
// session only inside a transaction stops now, which rolls it back.
func (s *relay) Cancel() {
	if s.Idle() {
		s.Stop()
		return
	}
	if err := s.up.cancel(s.engine.set.ConnectTimeout); err != nil {
		s.log.Warn("cancelling the upstream's command for the shutdown failed", "err", err)
	}
}

// Stop implements engine.Draining.
func (s *relay) Stop() { s.terminate(shutdownError(), "airlock shutdown") }

// drained ends the session if a drain is on and nothing of the session runs
// upstream, outside a transaction; it reports whether the session ended.
// Client reader only.
func (s *relay) drained() bool {
	if !s.engine.draining.Load() || !s.Idle() || !s.txIdle.Load() {
		return false
	}
	s.Stop()
	return true
}

// woken handles a read that a drain's Wake interrupted: it reports whether
// the session ended, else the read may go on.
func (s *relay) woken(err error) (handled, ended bool) {
	if !isTimeout(err) || !s.engine.draining.Load() || s.isEnded() {
		return false, false
	}
	if !s.clientIn.atBoundary() && !s.clientIn.buffered() {
		// Interrupted inside a message larger than the buffer, which
		// cannot be resumed: it was not forwarded, and the session stops.
		s.Stop()
		return true, true
	}
	if s.drained() {
		return true, true
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	// Looked at again after clearing the deadline, so that a wake between
	// the first look and the clearing is not lost.
	return true, s.drained()
}

// shutDown ends a session whose held command the shutdown withdrew, once
// what was forwarded before it has been answered (or the drain stops it).
func (s *relay) shutDown() {
	for !s.Idle() && !s.isEnded() {
		time.Sleep(10 * time.Millisecond)
	}
	s.terminate(withdrawnError(), "airlock shutdown")
}

// checkEnded maps a Check error that ends the session to how it ends.
func (s *relay) checkEnded(err error) error {
	switch {
	case errors.Is(err, session.ErrShuttingDown):
		s.shutDown()
	case errors.Is(err, session.ErrClientGone):
		s.clientGone()
	default:
		s.terminate(nil, "session ended: "+err.Error())
	}
	return errStop
}

// clientGone ends a session whose client went away. What still runs
// upstream for it is cancelled: PostgreSQL notices a closed client only
// when it writes, and would run a long statement to its end.
func (s *relay) clientGone() {
	if !s.Idle() && !s.engine.relayOnly {
		up, e, log := s.up, s.engine, s.log
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := up.cancel(e.set.ConnectTimeout); err != nil {
				log.Warn("cancelling the command of a client that went away failed", "err", err)
			}
		}()
	}
	s.terminate(nil, "client disconnected")
}
