package mysql

import (
	"context"
	"strconv"

	sqlmysql "github.com/airlock-gw/airlock/sqlrisk/mysql"
)

// KILL is routed by Airlock rather than relayed: the id a client knows is
// the one Airlock gave it (or its upstream's, which CONNECTION_ID() shows),
// and the upstream's login belongs to Airlock, whose KILL could reach any
// session on the server. A caller may kill only its own identity's
// sessions, as a server user without PROCESS may kill only its own.

// onKill checks COM_PROCESS_KILL as the KILL statement it stands for, then
// routes it.
func (s *relay) onKill(ctx context.Context, text, kind string, k sqlmysql.Kill) error {
	_, ref, err := s.check(ctx, command(text, kind))
	if err != nil {
		return err
	}
	if ref != nil {
		return s.localError(ref)
	}
	return s.kill(k)
}

// kill stops the command of the session k names (KILL QUERY), withdrawing
// it if it waits for approval, or ends that session (KILL CONNECTION).
func (s *relay) kill(k sqlmysql.Kill) error {
	id := uint32(k.ID)
	me := s.flow.Info.Identity.Name
	target := s.engine.find(id, me)
	switch {
	case target == nil || uint64(id) != k.ID:
		return s.localError(myError(codeNoThread, "Unknown thread id: %d", k.ID))
	case target.flow.Info.Identity.Name != me:
		return s.localError(myError(codeKillDenied, "You are not owner of thread %d", id))
	case target == s && !k.Query:
		s.terminate(myError(codeInterrupted, "Connection was killed"), "killed by its own client")
		return errStop
	}
	if !k.Query {
		if target.pending.busy() {
			target.killInBackground(false)
		}
		target.terminate(myError(codeInterrupted, "Connection was killed"), "killed by connection "+strconv.FormatUint(uint64(s.id), 10))
		return s.localOK()
	}
	if !target.flow.Cancel() && target.pending.busy() {
		if err := target.killUpstream(true); err != nil {
			s.log.Warn("forwarding KILL QUERY failed", "err", err)
		}
	}
	return s.localOK()
}
