package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
	"github.com/jackc/pgx/v5/pgproto3"
)

// clientTrack is what the client reader remembers of statements and
// portals: their commands, for the recording of each Execute, what masking
// needs, and the statements an approval let through.
type clientTrack struct {
	stmtCmds   map[string]*stmtCmd  // statement -> the command it was parsed from
	stmtCopies map[string]*copyList // statement -> its COPY statements
	portalStmt map[string]string    // portal -> statement
	// approved is never cleared to bound memory: it is what keeps an
	// approval to one run, and each entry took a reviewer's decision.
	// private finds the same statements by their private names, which a
	// client can read in pg_prepared_statements and Bind directly. A
	// private name is never forgotten, even after its Close: PostgreSQL
	// skips a Close that follows an error in the same pipeline, and the
	// statement must not then become a way around the check.
	approved, private map[string]*approvedStmt
}

// stmtCmd is a prepared statement's command and, once an Execute needed
// it, the execute command and the text the recording keeps for it.
type stmtCmd struct {
	cmd      *protocols.Command
	exec     *protocols.Command // nil until the first Execute
	recorded string
}

// setParamTypes keeps the parameter types of statement name, from its Parse
// (client reader) or from the server's ParameterDescription (upstream
// reader), for recording.parameters.
func (s *relay) setParamTypes(name string, oids []uint32) {
	s.ptypesMu.Lock()
	defer s.ptypesMu.Unlock()
	if s.ptypes == nil || len(s.ptypes) > trackBound {
		s.ptypes = map[string][]uint32{}
	}
	if len(oids) == 0 {
		delete(s.ptypes, name)
		return
	}
	s.ptypes[name] = oids
}

func (s *relay) paramTypes(name string) []uint32 {
	s.ptypesMu.Lock()
	defer s.ptypesMu.Unlock()
	return s.ptypes[name]
}

// duplicateStmt is PostgreSQL's error for a Parse of a taken name.
func duplicateStmt(name string) *pgError {
	return &pgError{Code: codeDuplicatePstmt, Message: fmt.Sprintf("prepared statement %q already exists", name)}
}

// undoParse forgets a Parse that PostgreSQL rejected (a duplicate name, an
// unknown table) or skipped after an earlier error: the name means again
// what it meant before, so that the recording of a later Execute names the
// statement that really runs, and masking knows its COPY. sc is what the
// Parse recorded; a later Parse or Close of the name leaves it alone.
func (s *relay) undoParse(name string, sc, prev *stmtCmd, prevCopies *copyList, a *approvedStmt) {
	t := s.track()
	if a != nil && t.approved[name] == a {
		delete(t.approved, name)
	}
	if t.stmtCmds[name] != sc {
		return
	}
	if name == "" || prev == nil {
		// The unnamed statement is gone even when its Parse fails.
		delete(t.stmtCmds, name)
		delete(t.stmtCopies, name)
		return
	}
	t.stmtCmds[name] = prev
	if prevCopies != nil {
		t.stmtCopies[name] = prevCopies
	} else {
		delete(t.stmtCopies, name)
	}
}

// undoClose restores a statement whose Close PostgreSQL skipped after an
// earlier error in the pipeline, unless the name was parsed again since.
func (s *relay) undoClose(name string, sc *stmtCmd, copies *copyList, a *approvedStmt) {
	t := s.track()
	if _, ok := t.stmtCmds[name]; ok || t.approved[name] != nil {
		return
	}
	if sc != nil {
		t.stmtCmds[name] = sc
		if copies != nil {
			t.stmtCopies[name] = copies
		}
	}
	if a != nil {
		t.approved[name] = a
	}
}

// undoLater hands the client reader what to undo for messages PostgreSQL
// rejected or skipped (upstream reader).
func (s *relay) undoLater(f func()) {
	s.undoMu.Lock()
	s.undos = append(s.undos, f)
	s.undoN.Add(1)
	s.undoMu.Unlock()
}

// runUndos runs the undos handed over so far, in the order the messages
// were sent (client reader).
func (s *relay) runUndos() {
	s.undoMu.Lock()
	l := s.undos
	s.undos = nil
	s.undoN.Store(0)
	s.undoMu.Unlock()
	for _, f := range l {
		f()
	}
}

// approvedStmt is a prepared statement that a reviewer's approval let
// through. Upstream it lives under a private name the client cannot guess,
// so every Bind of it passes through Airlock, and its grant (in the session
// flow, under the private name) lets the first run through and checks each
// later one again, however it runs: a Bind, or EXECUTE of the private name
// in SQL. Without this, one approved Parse would run any number of times.
type approvedStmt struct {
	upstream string
	grant    *session.Grant
}

// trackBound bounds the remembered statements and portals: clients that
// never close what they prepare must not grow Airlock without limit. Past
// it they are forgotten (approved statements excepted), and an Execute of a
// forgotten statement is recorded without its text.
const trackBound = 16384

func (s *relay) track() *clientTrack {
	if s.stmts == nil {
		s.stmts = &clientTrack{stmtCmds: map[string]*stmtCmd{}, stmtCopies: map[string]*copyList{},
			portalStmt: map[string]string{}, approved: map[string]*approvedStmt{}, private: map[string]*approvedStmt{}}
	}
	if len(s.stmts.stmtCmds) > trackBound || len(s.stmts.stmtCopies) > trackBound || len(s.stmts.portalStmt) > trackBound {
		clear(s.stmts.stmtCmds)
		clear(s.stmts.stmtCopies)
		clear(s.stmts.portalStmt)
	}
	return s.stmts
}

// recordExecute records an Execute as a command of kind "execute" with its
// statement's text, so that a recording shows every run of a prepared
// statement and not only its Parse. Policy was applied at the Parse (and,
// for an approved statement, at the Bind).
func (s *relay) recordExecute(sc *stmtCmd) error {
	if sc == nil {
		// A statement Airlock did not see parsed (PREPARE in SQL) or forgot.
		return s.recordCommand(s.command("", "execute"), "")
	}
	if sc.exec == nil {
		exec := *sc.cmd
		exec.Kind = "execute"
		sc.exec, sc.recorded = &exec, s.flow.RecordedText(sc.cmd)
	}
	return s.recordCommand(sc.exec, sc.recorded)
}

func (s *relay) recordCommand(cmd *protocols.Command, recorded string) error {
	err := s.flow.RecordAt(cmd, recorded, s.clientNow())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, session.ErrCredentialEnded):
		// The session's login has expired or was revoked: the statement
		// does not run again, and the client is told why.
		return fatal(codeInvalidAuthSpec, strings.TrimPrefix(err.Error(), session.ErrCredentialEnded.Error()+": "))
	}
	return s.checkFailed(err)
}

// parseApproved handles a Parse that an approval let through, and a Parse
// that replaces an approved statement: the approved statement is created
// under a private name, and a replaced one is closed upstream. It returns
// the frame to forward (ptypes are the Parse's parameter types), or a
// refusal when the session cannot hold another approved statement.
func (s *relay) parseApproved(t *clientTrack, name string, cmd *protocols.Command, approved bool, frame []byte, ptypes []uint32) ([]byte, *approvedStmt, *pgError, error) {
	if t.approved[name] != nil {
		// Only the unnamed statement gets here: a named one was refused
		// as a duplicate.
		s.forgetStmt(name)
	}
	if !approved {
		return frame, nil, nil, nil
	}
	s.seq++
	a := &approvedStmt{upstream: "airlock_approved_" + s.nonce + "_" + strconv.FormatUint(s.seq, 10)}
	if a.grant = s.flow.Grant(a.upstream, cmd); a.grant == nil {
		return nil, nil, &pgError{Code: codeInsufficientPriv,
			Message: "Airlock refused the statement: this session holds too many approved prepared statements",
			Hint:    "close prepared statements you no longer need, or start a new session"}, nil
	}
	t.approved[name], t.private[a.upstream] = a, a
	// The Parse as decodeClient read it, under the private name.
	out, err := (&pgproto3.Parse{Name: a.upstream, Query: cmd.Text, ParameterOIDs: ptypes}).Encode(nil)
	return out, a, nil, err
}

// bindApproved lets the first Bind of an approved statement through and
// checks each later one again; the frame it returns names the statement's
// private name. A refusal means the Bind must not run.
func (s *relay) bindApproved(ctx context.Context, a *approvedStmt, frame []byte) ([]byte, *pgError, error) {
	v, err := s.verdict(s.flow.Run(ctx, a.grant, "bind"))
	if err != nil {
		return nil, nil, err
	}
	if !v.allowed {
		return nil, v.refusal, nil
	}
	var m pgproto3.Bind
	if err := m.Decode(frame[5:]); err != nil {
		return nil, nil, fatal(codeProtocolViolation, "invalid Bind message")
	}
	m.PreparedStatement = a.upstream
	out, err := m.Encode(nil)
	return out, nil, err
}

// recordParams records the parameter values of a Bind, from what
// parseBind found; the session flow masks them.
func (s *relay) recordParams(portal string, b *bindHeader) error {
	params := make([]protocols.Param, b.nvals)
	oids := s.paramTypes(string(b.stmt))
	vals := b.values
	for k := range params {
		p := &params[k]
		switch np := len(b.pfmt) / 2; {
		case np == 1:
			p.Binary = b.pfmt[1] == 1
		case k < np:
			p.Binary = b.pfmt[2*k+1] == 1
		}
		l := int(int32(binary.BigEndian.Uint32(vals)))
		vals = vals[4:]
		if l < 0 {
			continue // NULL
		}
		p.Value = vals[:l:l]
		vals = vals[l:]
		if k < len(oids) {
			p.Native = oids[k]
		}
	}
	if err := s.flow.Parameters(portal, params); err != nil {
		return s.checkFailed(err)
	}
	return nil
}

// forgetStmt forgets a statement the server no longer has, closing the
// private statement of an approved one.
func (s *relay) forgetStmt(name string) {
	t := s.track()
	delete(t.stmtCmds, name)
	if a := t.approved[name]; a != nil {
		delete(t.approved, name)
		s.closeInternal(a.upstream)
	}
}

// closeInternal closes a statement Airlock created; its CloseComplete is
// not forwarded.
func (s *relay) closeInternal(upstream string) {
	_, _ = s.up.w.Write(closeStmt(upstream))
	s.pending.push(pending{kind: pkClose, close: 'S', name: upstream, internal: true})
}

// closeStmt is a Close of the statement called name.
func closeStmt(name string) []byte {
	b, _ := (&pgproto3.Close{ObjectType: 'S', Name: name}).Encode(nil)
	return b
}
