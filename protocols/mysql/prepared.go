package mysql

import (
	"bytes"
	"context"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	sqlmysql "github.com/airlock-gw/airlock/sqlrisk/mysql"
)

// onPrepare checks a COM_STMT_PREPARE and forwards it; the statement is
// known by id once the upstream's PREPARE_OK arrives (upstream reader).
func (s *relay) onPrepare(ctx context.Context, pr *wire.Prepare, p wire.Packet) error {
	text := string(pr.Text)
	cmd := command(text, "prepare")
	dec, ref, err := s.check(ctx, cmd)
	if err != nil {
		return err
	}
	if ref == nil {
		if d := sqlmysql.ReadDirectives(text); len(d.Kills) > 0 || len(d.Uses) > 0 {
			ref = myError(wire.CodeNotSupported, "Airlock does not prepare KILL or USE: send them as statements")
		}
	}
	if ref != nil {
		s.cl.lastRefused = true
		return s.localError(ref)
	}
	s.cl.lastRefused = false
	raw := p.Raw
	approved := dec.ApprovalID != ""
	if approved {
		raw, _ = wire.AppendPacket(nil, 0, append([]byte{mysql.COM_STMT_PREPARE}, text...))
	}
	return s.forward(raw, pending{kind: pkPrepare, prepared: cmd, approved: approved})
}

// onExecute forwards a COM_STMT_EXECUTE. A statement an approval let
// through runs once on it and is checked again for each later run; any
// other was checked when it was prepared. Every run is recorded with the
// statement's text.
func (s *relay) onExecute(ctx context.Context, ex *wire.Execute, p wire.Packet) error {
	st := s.stmts.get(ex.StatementID)
	raw := p.Raw
	if st.approved && st.grant == nil {
		if st.grant = s.flow.Grant("stmt-"+strconv.FormatUint(uint64(st.id), 10), st.cmd); st.grant == nil {
			return s.localError(myError(wire.CodePolicyDenied,
				"Airlock refused the statement: this session holds too many approved prepared statements"))
		}
	}
	// The parameters are copied before a check that may hold: the hold's
	// watch may overwrite the packet they were read from.
	var recorded []protocols.Param
	if s.engine.recordParams {
		recorded = params(ex.Params[:min(len(ex.Params), st.wire.Params)])
	}
	checked := false
	if st.grant != nil {
		if st.runs > 0 {
			// A later run may be held, and the hold's watch may overwrite
			// the packet in the client's buffer.
			raw = bytes.Clone(raw)
			checked = true
		}
		_, ref, err := s.verdict(s.flow.Run(ctx, st.grant, "execute"))
		if err != nil {
			return err
		}
		if ref != nil {
			return s.localError(ref)
		}
	}
	if !checked {
		if st.exec == nil {
			exec := *st.cmd
			exec.Kind = "execute"
			st.exec, st.recorded = &exec, s.flow.RecordedText(st.cmd)
		}
		if err := s.flow.Record(st.exec, st.recorded); err != nil {
			return recordingFailed()
		}
	}
	if s.engine.recordParams {
		if err := s.flow.Parameters("stmt-"+strconv.FormatUint(uint64(st.id), 10), recorded); err != nil {
			return recordingFailed()
		}
	}
	st.runs++
	st.wire.Executed(ex)
	return s.forward(raw, pending{kind: pkExecute, stmt: st, cursor: ex.Flags&wire.CursorReadOnly != 0})
}

// params are an execution's parameters as the recording keeps them:
// strings as text, numbers and temporals in the binary protocol's form with
// their type.
func params(in []wire.Param) []protocols.Param {
	out := make([]protocols.Param, len(in))
	for i, p := range in {
		q := &out[i]
		switch {
		case p.Null:
		case p.LongData:
			q.Withheld = true
		default:
			q.Value = bytes.Clone(p.Value)
			col := wire.Column{Type: p.Type}
			if p.Unsigned {
				col.Flags = mysql.UNSIGNED_FLAG
			}
			q.Native = col.NativeType()
			switch col.Family() {
			case wire.FamilyText, wire.FamilyJSON:
			default:
				q.Binary = true
			}
		}
	}
	return out
}
