package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
)

// clientLoop reads client messages, decides and forwards them. It owns the
// client socket's read side and the upstream socket's write side.
func (s *relay) clientLoop(ctx context.Context) {
	for {
		if !s.clientIn.buffered() {
			s.clientAt = time.Time{} // the next message comes from a new read
		}
		typ, frame, body, err := s.clientIn.next()
		if err != nil {
			if handled, ended := s.woken(err); handled {
				if ended {
					return
				}
				continue
			}
			switch {
			case errors.Is(err, errTooLarge):
				s.terminate(fatal(codeProtocolViolation, "message too large: "+strings.TrimPrefix(err.Error(), errTooLarge.Error()+": ")), "protocol violation")
			case s.isEnded():
				s.terminate(nil, "client disconnected")
			case isClosed(err):
				s.clientGone()
			default:
				s.terminate(fatal(codeProtocolViolation, "invalid message from client"), "protocol violation")
			}
			return
		}
		if s.engine.draining.Load() && s.drained() {
			return // the message is not forwarded
		}
		if typ == 'X' && s.poolKey != "" && s.up.w.Buffered() == 0 && s.detach("client terminated") {
			return
		}
		if s.engine.relayOnly {
			_, err = s.up.w.Write(frame)
			if typ == 'X' {
				_ = s.up.w.Flush()
				s.terminate(nil, "client terminated")
				return
			}
		} else {
			err = s.clientMessage(ctx, typ, frame, body)
		}
		if err == nil && !s.clientIn.buffered() {
			err = s.up.w.Flush()
		}
		if err != nil {
			var pe *pgError
			switch {
			case errors.Is(err, errStop):
			case errors.As(err, &pe):
				s.terminate(pe, pe.Message)
			case s.isEnded():
			default:
				s.flow.UpstreamError()
				s.terminate(fatal(codeConnectionFailure, fmt.Sprintf("lost the upstream of connection %q", s.flow.Conn.Name)), "upstream write failed")
			}
			return
		}
		s.clientIn.shrink()
	}
}

// errStop ends the client loop after a clean Terminate.
var errStop = errors.New("stop")

func (s *relay) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// clientMsg is what Airlock reads from a client message.
type clientMsg struct {
	text string     // Query string, Parse query
	name []byte     // Parse statement; Describe, Close object; Execute portal
	obj  byte       // Describe, Close: 'S' or 'P'
	bind bindHeader // Bind
	// ptypes are a Parse's parameter types (0: unspecified).
	ptypes []uint32
}

// decodeClient validates one client message and extracts what the engine
// needs. It is pure, so it can be fuzzed alone.
func decodeClient(typ byte, body []byte) (clientMsg, error) {
	var m clientMsg
	switch typ {
	case 'Q':
		var q pgproto3.Query
		if err := q.Decode(body); err != nil {
			return m, fatal(codeProtocolViolation, "invalid Query message")
		}
		m.text = q.String
	case 'P':
		var p pgproto3.Parse
		if err := p.Decode(body); err != nil {
			return m, fatal(codeProtocolViolation, "invalid Parse message")
		}
		m.text, m.name, m.ptypes = p.Query, []byte(p.Name), p.ParameterOIDs
	case 'B':
		b, ok := parseBind(body)
		if !ok {
			return m, fatal(codeProtocolViolation, "invalid Bind message")
		}
		m.bind = b
	case 'D', 'C':
		if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') || body[len(body)-1] != 0 {
			return m, fatal(codeProtocolViolation, "invalid Describe or Close message")
		}
		m.obj, m.name = body[0], cstring(body[1:])
	case 'E':
		if len(body) < 5 || bytes.IndexByte(body, 0) != len(body)-5 {
			return m, fatal(codeProtocolViolation, "invalid Execute message")
		}
		m.name = cstring(body)
	case 'S', 'H', 'c', 'X':
		if len(body) != 0 {
			return m, fatal(codeProtocolViolation, fmt.Sprintf("invalid message type %q: unexpected body", typ))
		}
	case 'd', 'f', 'F':
	default:
		return m, fatal(codeProtocolViolation, fmt.Sprintf("unexpected message type %q", typ))
	}
	return m, nil
}

// clientMessage handles one client message in inspecting mode.
func (s *relay) clientMessage(ctx context.Context, typ byte, frame, body []byte) error {
	m, err := decodeClient(typ, body)
	if err != nil {
		return err
	}
	if s.undoN.Load() > 0 {
		s.runUndos()
	}
	switch typ {
	case 'Q':
		return s.onQuery(ctx, &m, frame)
	case 'P':
		return s.onParse(ctx, &m, frame)
	case 'B':
		return s.onBind(ctx, &m, frame)
	case 'D':
		return s.onDescribe(&m, frame)
	case 'E':
		return s.onExecute(&m, frame)
	case 'C':
		return s.onClose(&m, frame)
	case 'S':
		_, err := s.up.w.Write(frame)
		s.pending.push(pending{kind: pkSync, start: s.clientNow()})
		return err
	case 'H':
		if _, err := s.up.w.Write(frame); err != nil {
			return err
		}
		return s.up.w.Flush()
	case 'd', 'c', 'f':
		_, err := s.up.w.Write(frame)
		return err
	case 'X':
		_, _ = s.up.w.Write(frame)
		_ = s.up.w.Flush()
		s.terminate(nil, "client terminated")
		return errStop
	default: // 'F'
		// Fast-path calls name a function by OID with no SQL to classify
		// (lo_import runs this way), so they never pass.
		return s.refuse(pkQuery, "", &pgError{Code: codeFeatureUnsupported,
			Message: "fast-path function calls are not supported through Airlock",
			Hint:    "call the function in SQL (SELECT f(...)) so it can be classified"})
	}
}

// onQuery checks a simple Query and forwards it, or its refusal.
func (s *relay) onQuery(ctx context.Context, m *clientMsg, frame []byte) error {
	cmd := s.command(m.text, "query")
	v, err := s.check(ctx, cmd)
	if err != nil {
		return err
	}
	if s.stmts != nil {
		// A Query destroys the unnamed statement.
		s.forgetStmt("")
	}
	if !v.allowed {
		return s.refuse(pkQuery, "", v.refusal)
	}
	p := pending{kind: pkQuery, start: s.clientNow()}
	if s.flow.Masker() != nil {
		// Masking COPY output needs to know what each COPY sends.
		p.copies = copiesOf(m.text)
	}
	if v.approved {
		// The frame is a view into the client's buffer, which the watch
		// for a hang-up may have refilled while the command was held.
		frame, _ = (&pgproto3.Query{String: m.text}).Encode(nil)
	}
	_, err = s.up.w.Write(frame)
	s.pending.push(p)
	return err
}

// onParse checks a Parse and forwards it, under a private name when an
// approval let it through (see approvedStmt), or its refusal.
func (s *relay) onParse(ctx context.Context, m *clientMsg, frame []byte) error {
	name := string(m.name)
	if name != "" && s.stmts != nil && s.stmts.approved[name] != nil {
		// PostgreSQL refuses to redefine a named statement; the approved
		// one lives upstream under its private name, so Airlock answers
		// for it.
		return s.refuse(pkParse, name, duplicateStmt(name))
	}
	cmd := s.command(m.text, "parse")
	v, err := s.check(ctx, cmd)
	if err != nil {
		return err
	}
	if name == "" && s.stmts != nil {
		// A Parse of the unnamed statement destroys it, even when it fails.
		s.forgetStmt("")
	}
	if !v.allowed {
		return s.refuse(pkParse, name, v.refusal)
	}
	t := s.track()
	if v.approved && name != "" && t.stmtCmds[name] != nil {
		// An approved statement goes upstream under a private name, where
		// PostgreSQL would not see that the client's name is taken.
		return s.refuse(pkParse, name, duplicateStmt(name))
	}
	prev, prevCopies := t.stmtCmds[name], t.stmtCopies[name]
	if s.flow.Masker() != nil {
		t.stmtCopies[name] = copiesOf(m.text)
	}
	frame, a, refusal, err := s.parseApproved(t, name, cmd, v.approved, frame, m.ptypes)
	if err != nil {
		return err
	}
	if refusal != nil {
		return s.refuse(pkParse, name, refusal)
	}
	sc := &stmtCmd{cmd: cmd}
	t.stmtCmds[name] = sc
	if s.engine.recordParams {
		s.setParamTypes(name, m.ptypes)
	}
	_, err = s.up.w.Write(frame)
	s.pending.push(pending{kind: pkParse, name: name, start: s.clientNow(),
		undo: func() { s.undoParse(name, sc, prev, prevCopies, a) }})
	return err
}

// onBind forwards a Bind; the first Bind of an approved statement runs on
// its approval, each later one is checked again.
func (s *relay) onBind(ctx context.Context, m *clientMsg, frame []byte) error {
	b := m.bind
	p := pending{kind: pkBind, name: s.intern(b.portal), stmt: s.intern(b.stmt)}
	t := s.track()
	a := t.approved[p.stmt]
	if a == nil {
		a = t.private[p.stmt]
	}
	if a != nil {
		// Checking a later run may hold it, and the watch for a hang-up
		// may then refill the client's buffer, which frame and b view.
		frame = bytes.Clone(frame)
		b, _ = parseBind(frame[5:])
		var refusal *pgError
		var err error
		if frame, refusal, err = s.bindApproved(ctx, a, frame); err != nil {
			return err
		}
		if refusal != nil {
			delete(t.portalStmt, p.name)
			s.seq++
			return s.refuse(pkParse, "airlock_refused_bind_"+s.nonce+"_"+strconv.FormatUint(s.seq, 10), refusal)
		}
	}
	t.portalStmt[p.name] = p.stmt
	if s.engine.recordParams {
		if err := s.recordParams(p.name, &b); err != nil {
			return err
		}
	}
	if b.nfmt == 1 {
		p.formats = oneFormat[b.fmt0&1]
	} else if b.nfmt > 1 {
		p.formats = b.formats()
	}
	_, err := s.up.w.Write(frame)
	s.pending.push(p)
	return err
}

// onDescribe forwards a Describe, of an approved statement by its private
// name.
func (s *relay) onDescribe(m *clientMsg, frame []byte) error {
	kind := pkDescribeS
	if m.obj == 'P' {
		kind = pkDescribeP
	} else if s.stmts != nil {
		if a := s.stmts.approved[string(m.name)]; a != nil {
			frame, _ = (&pgproto3.Describe{ObjectType: 'S', Name: a.upstream}).Encode(nil)
		}
	}
	_, err := s.up.w.Write(frame)
	s.pending.push(pending{kind: kind, name: s.intern(m.name)})
	return err
}

// onExecute records the run of a portal's statement and forwards it.
func (s *relay) onExecute(m *clientMsg, frame []byte) error {
	p := pending{kind: pkExecute, name: s.intern(m.name), start: s.clientNow()}
	t := s.track()
	stmt, bound := t.portalStmt[p.name]
	if s.flow.Masker() != nil {
		if l := t.stmtCopies[stmt]; l != nil {
			p.copies = &copyList{specs: l.specs, bad: l.bad}
		}
	}
	var sc *stmtCmd
	if bound {
		sc = t.stmtCmds[stmt]
	}
	if err := s.recordExecute(sc); err != nil {
		return err
	}
	_, err := s.up.w.Write(frame)
	s.pending.push(p)
	return err
}

// onClose forwards a Close; closing an approved statement closes its
// private one.
func (s *relay) onClose(m *clientMsg, frame []byte) error {
	name := s.intern(m.name)
	p := pending{kind: pkClose, close: m.obj, name: name}
	if m.obj == 'S' {
		t := s.track()
		sc, copies, a := t.stmtCmds[name], t.stmtCopies[name], t.approved[name]
		delete(t.stmtCmds, name)
		delete(t.stmtCopies, name)
		if a != nil {
			// The client's Close reaches the private statement. The
			// private name stays known (see clientTrack).
			delete(t.approved, name)
			frame = closeStmt(a.upstream)
		}
		if sc != nil || a != nil {
			p.undo = func() { s.undoClose(name, sc, copies, a) }
		}
	}
	_, err := s.up.w.Write(frame)
	s.pending.push(p)
	return err
}

func copiesOf(text string) *copyList {
	specs, ok := copySpecs(text)
	if !ok {
		return &copyList{bad: true}
	}
	if len(specs) == 0 {
		return nil
	}
	return &copyList{specs: specs}
}

// oneFormat holds the two single-code format lists so a Bind does not
// allocate for them.
var oneFormat = [2][]int16{{0}, {1}}

func (s *relay) command(text, kind string) *protocols.Command {
	return &protocols.Command{Protocol: protocols.Postgres, Text: text, Kind: kind}
}

// intern returns a stable string for a statement or portal name without an
// allocation per message for names already seen.
func (s *relay) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s.names == nil {
		s.names = make(map[string]string)
	}
	if v, ok := s.names[string(b)]; ok {
		return v
	}
	if len(s.names) > 4096 {
		clear(s.names)
	}
	v := string(b)
	s.names[v] = v
	return v
}

func cstring(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
