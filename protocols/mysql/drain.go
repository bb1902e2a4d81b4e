package mysql

import (
	"errors"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

// A shutdown drains sessions (engine.Drain): each ends with
// ER_SERVER_SHUTDOWN once the upstream owes it nothing and it is outside a
// transaction. The client reader, which forwards commands, makes that
// decision: before each packet it reads, and when the drain wakes it from
// its read with a past deadline. At the end of the drain period what
// still runs is killed (KILL QUERY) and the server's answer reaches the
// client and the recording before the session ends.

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
	for _, s := range e.sessions {
		out = append(out, s)
	}
	return out
}

var _ engine.Draining = (*relay)(nil)

// Idle implements engine.Draining: the upstream owes no response.
func (s *relay) Idle() bool { return !s.pending.busy() }

// Wake implements engine.Draining.
func (s *relay) Wake() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) }

// Cancel implements engine.Draining: what runs upstream is killed; a
// session only inside a transaction stops now, which rolls it back.
func (s *relay) Cancel() {
	if s.Idle() {
		s.Stop()
		return
	}
	if err := s.killUpstream(true); err != nil {
		s.log.Warn("killing the upstream's command for the shutdown failed", "err", err)
	}
}

// Stop implements engine.Draining.
func (s *relay) Stop() { s.terminate(shutdownError(), "airlock shutdown") }

// inTransaction reports whether the upstream's last status says a
// transaction is open.
func (s *relay) inTransaction() bool {
	return uint16(s.status.Load())&mysql.SERVER_STATUS_IN_TRANS != 0
}

// drained ends the session if a drain is on and nothing of it runs
// upstream, outside a transaction. Client reader only.
func (s *relay) drained() bool {
	if !s.engine.draining.Load() || !s.Idle() || s.inTransaction() {
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
	if s.clientR.Buffered() > 0 {
		// Interrupted inside a packet, which may not resume: it was not
		// forwarded, and the session stops (its transaction rolls back).
		s.Stop()
		return true, true
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	return true, s.drained()
}

// withdrawn ends a session whose held command the shutdown withdrew, once
// the commands forwarded before it are answered.
func (s *relay) withdrawn() {
	s.pending.waitIdle(s.isEnded)
	s.terminate(myError(codeShutdown, "Airlock is shutting down: the command waiting for approval was withdrawn; it did not run"), "airlock shutdown")
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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
