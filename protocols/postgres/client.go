package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
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
func (s *session) clientLoop(ctx context.Context) {
	for {
		typ, frame, body, err := s.cr.next()
		if err != nil {
			switch {
			case errors.Is(err, errTooLarge):
				s.terminate(fatal(codeProtocolViolation, "message too large: "+strings.TrimPrefix(err.Error(), errTooLarge.Error()+": ")), "protocol violation")
			case isClosed(err) || s.isEnded():
				s.terminate(nil, "client disconnected")
			default:
				s.terminate(fatal(codeProtocolViolation, "invalid message from client"), "protocol violation")
			}
			return
		}
		if typ == 'X' && s.poolKey != "" && s.up.w.Buffered() == 0 && s.detach("client terminated") {
			return
		}
		if s.e.opt.Relay {
			_, err = s.up.w.Write(frame)
			if typ == 'X' {
				_ = s.up.w.Flush()
				s.terminate(nil, "client terminated")
				return
			}
		} else {
			err = s.clientMessage(ctx, typ, frame, body)
		}
		if err == nil && !s.cr.buffered() {
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
				s.e.opt.Metrics.UpstreamError(protocols.Postgres, s.c.Name)
				s.terminate(fatal(codeConnectionFailure, fmt.Sprintf("lost the upstream of connection %q", s.c.Name)), "upstream write failed")
			}
			return
		}
		s.cr.shrink()
	}
}

// errStop ends the client loop after a clean Terminate.
var errStop = errors.New("stop")

func (s *session) isEnded() bool {
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
func (s *session) clientMessage(ctx context.Context, typ byte, frame, body []byte) error {
	m, err := decodeClient(typ, body)
	if err != nil {
		return err
	}
	if s.undoN.Load() > 0 {
		s.runUndos()
	}
	switch typ {
	case 'Q', 'P':
		kind, pk := "query", pkQuery
		if typ == 'P' {
			kind, pk = "parse", pkParse
			if len(m.name) > 0 && s.ct != nil && s.ct.approved[string(m.name)] != nil {
				// PostgreSQL refuses to redefine a named statement; the
				// approved one lives upstream under its private name, so
				// Airlock answers for it.
				return s.refuse(pkParse, string(m.name), duplicateStmt(string(m.name)))
			}
		}
		cmd := s.command(m.text, kind)
		v, err := s.check(ctx, cmd)
		if err != nil {
			return err
		}
		name := string(m.name)
		if (typ == 'Q' || name == "") && s.ct != nil {
			// A Query, and a Parse of the unnamed statement even when it
			// fails, destroy the unnamed statement.
			s.forgetStmt("")
		}
		if !v.allowed {
			return s.refuse(pk, name, v.refusal)
		}
		if v.approved && name != "" && s.track().stmtCmds[name] != nil {
			// An approved statement goes upstream under a private name,
			// where PostgreSQL would not see that the client's name is
			// taken.
			return s.refuse(pkParse, name, duplicateStmt(name))
		}
		p := pending{kind: pk, name: name, start: time.Now()}
		var t *clientTrack
		var prev *stmtCmd
		var prevCopies *copyList
		if typ == 'P' {
			t = s.track()
			prev, prevCopies = t.stmtCmds[name], t.stmtCopies[name]
		}
		if s.ps.Masker != nil {
			// Masking COPY output needs to know what each COPY sends.
			l := copiesOf(m.text)
			if typ == 'Q' {
				p.copies = l
			} else {
				t.stmtCopies[name] = l
			}
		}
		if typ == 'P' {
			var a *approvedStmt
			if frame, a, err = s.parseApproved(t, name, cmd, v.approved, frame, m.ptypes); err != nil {
				return err
			}
			sc := &stmtCmd{cmd: cmd}
			t.stmtCmds[name] = sc
			if s.e.opt.RecordParameters {
				s.setParamTypes(name, m.ptypes)
			}
			p.undo = func() { s.undoParse(name, sc, prev, prevCopies, a) }
		}
		_, err = s.up.w.Write(frame)
		s.pend.push(p)
		return err
	case 'B':
		b := m.bind
		p := pending{kind: pkBind, name: s.intern(b.portal), stmt: s.intern(b.stmt)}
		t := s.track()
		a := t.approved[p.stmt]
		if a == nil {
			a = t.private[p.stmt]
		}
		if a != nil {
			var refusal *pgError
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
		if s.e.opt.RecordParameters {
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
		s.pend.push(p)
		return err
	case 'D':
		kind := pkDescribeS
		if m.obj == 'P' {
			kind = pkDescribeP
		} else if a := s.track().approved[string(m.name)]; a != nil {
			frame, _ = (&pgproto3.Describe{ObjectType: 'S', Name: a.upstream}).Encode(nil)
		}
		_, err := s.up.w.Write(frame)
		s.pend.push(pending{kind: kind, name: s.intern(m.name)})
		return err
	case 'E':
		p := pending{kind: pkExecute, name: s.intern(m.name), start: time.Now()}
		t := s.track()
		stmt, bound := t.portalStmt[p.name]
		if s.ps.Masker != nil {
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
		s.pend.push(p)
		return err
	case 'C':
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
		s.pend.push(p)
		return err
	case 'S':
		_, err := s.up.w.Write(frame)
		s.pend.push(pending{kind: pkSync, start: time.Now()})
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
func (s *session) setParamTypes(name string, oids []uint32) {
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

func (s *session) paramTypes(name string) []uint32 {
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
func (s *session) undoParse(name string, sc, prev *stmtCmd, prevCopies *copyList, a *approvedStmt) {
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
func (s *session) undoClose(name string, sc *stmtCmd, copies *copyList, a *approvedStmt) {
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
func (s *session) undoLater(f func()) {
	s.undoMu.Lock()
	s.undos = append(s.undos, f)
	s.undoN.Add(1)
	s.undoMu.Unlock()
}

// runUndos runs the undos handed over so far, in the order the messages
// were sent (client reader).
func (s *session) runUndos() {
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
// so every Bind of it passes through Airlock: the first is what the
// approval allowed, and each later one is checked (and reviewed) again.
// Without this, one approved Parse would run any number of times.
type approvedStmt struct {
	upstream string
	cmd      *protocols.Command
	spent    bool
}

// trackBound bounds the remembered statements and portals: clients that
// never close what they prepare must not grow Airlock without limit. Past
// it they are forgotten (approved statements excepted), and an Execute of a
// forgotten statement is recorded without its text.
const trackBound = 16384

func (s *session) track() *clientTrack {
	if s.ct == nil {
		s.ct = &clientTrack{stmtCmds: map[string]*stmtCmd{}, stmtCopies: map[string]*copyList{},
			portalStmt: map[string]string{}, approved: map[string]*approvedStmt{}, private: map[string]*approvedStmt{}}
	}
	if len(s.ct.stmtCmds) > trackBound || len(s.ct.stmtCopies) > trackBound || len(s.ct.portalStmt) > trackBound {
		clear(s.ct.stmtCmds)
		clear(s.ct.stmtCopies)
		clear(s.ct.portalStmt)
	}
	return s.ct
}

// recordExecute records an Execute as a command of kind "execute" with its
// statement's text, so that a recording shows every run of a prepared
// statement and not only its Parse. Policy was applied at the Parse (and,
// for an approved statement, at the Bind).
func (s *session) recordExecute(sc *stmtCmd) error {
	if sc == nil {
		// A statement Airlock did not see parsed (PREPARE in SQL) or forgot.
		return s.recordCommand(s.command("", "execute"), "")
	}
	if sc.exec == nil {
		exec := *sc.cmd
		exec.Kind = "execute"
		sc.exec, sc.recorded = &exec, s.e.opt.Pipeline.RecordedText(s.ps, sc.cmd)
	}
	return s.recordCommand(sc.exec, sc.recorded)
}

func (s *session) recordCommand(cmd *protocols.Command, recorded string) error {
	if err := s.ps.Recorder.Command(cmd, recorded); err != nil {
		return s.checkFailed(fmt.Errorf("record command: %w", err))
	}
	return nil
}

// parseApproved handles a Parse that an approval let through, and a Parse
// that replaces an approved statement: the approved statement is created
// under a private name, and a replaced one is closed upstream. It returns
// the frame to forward; ptypes are the Parse's parameter types.
func (s *session) parseApproved(t *clientTrack, name string, cmd *protocols.Command, approved bool, frame []byte, ptypes []uint32) ([]byte, *approvedStmt, error) {
	if t.approved[name] != nil {
		// Only the unnamed statement gets here: a named one was refused
		// as a duplicate.
		s.forgetStmt(name)
	}
	if !approved {
		return frame, nil, nil
	}
	s.seq++
	a := &approvedStmt{upstream: "airlock_approved_" + s.nonce + "_" + strconv.FormatUint(s.seq, 10), cmd: cmd}
	t.approved[name], t.private[a.upstream] = a, a
	s.ps.GuardPrepared(a.upstream)
	// The Parse as decodeClient read it, under the private name.
	out, err := (&pgproto3.Parse{Name: a.upstream, Query: cmd.Text, ParameterOIDs: ptypes}).Encode(nil)
	return out, a, err
}

// bindApproved lets the first Bind of an approved statement through and
// checks each later one again; the frame it returns names the statement's
// private name. A refusal means the Bind must not run.
func (s *session) bindApproved(ctx context.Context, a *approvedStmt, frame []byte) ([]byte, *pgError, error) {
	if a.spent {
		cmd := *a.cmd
		cmd.Kind = "bind"
		v, err := s.check(ctx, &cmd)
		if err != nil {
			return nil, nil, err
		}
		if !v.allowed {
			return nil, v.refusal, nil
		}
	}
	a.spent = true
	var m pgproto3.Bind
	if err := m.Decode(frame[5:]); err != nil {
		return nil, nil, fatal(codeProtocolViolation, "invalid Bind message")
	}
	m.PreparedStatement = a.upstream
	out, err := m.Encode(nil)
	return out, nil, err
}

// recordParams records the parameter values of a Bind, from what
// parseBind found. Text values are masked like rows; a binary value of a
// masked caller is withheld, since masking reads text.
func (s *session) recordParams(portal string, b *bindHeader) error {
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
		v := vals[:l:l]
		vals = vals[l:]
		if k < len(oids) {
			p.OID = oids[k]
		}
		switch {
		case s.ps.Masker == nil:
			p.Value = v
		case p.Binary:
			p.Withheld, p.Omitted = true, l
		default:
			p.Value = s.ps.Masker.Text(v)
		}
	}
	if err := s.ps.Recorder.Parameters(portal, params); err != nil {
		return s.checkFailed(fmt.Errorf("record parameters: %w", err))
	}
	return nil
}

// forgetStmt forgets a statement the server no longer has, closing the
// private statement of an approved one.
func (s *session) forgetStmt(name string) {
	t := s.track()
	delete(t.stmtCmds, name)
	if a := t.approved[name]; a != nil {
		delete(t.approved, name)
		s.closeInternal(a.upstream)
	}
}

// closeInternal closes a statement Airlock created; its CloseComplete is
// not forwarded.
func (s *session) closeInternal(upstream string) {
	_, _ = s.up.w.Write(closeStmt(upstream))
	s.pend.push(pending{kind: pkClose, close: 'S', name: upstream, internal: true})
}

// closeStmt is a Close of the statement called name.
func closeStmt(name string) []byte {
	b, _ := (&pgproto3.Close{ObjectType: 'S', Name: name}).Encode(nil)
	return b
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

func (s *session) command(text, kind string) *protocols.Command {
	info := &s.ps.Info
	return &protocols.Command{
		Protocol: protocols.Postgres, Connection: info.Connection, Identity: info.Identity,
		SessionID: info.ID, Text: text, Kind: kind,
	}
}

// intern returns a stable string for a statement or portal name without an
// allocation per message for names already seen.
func (s *session) intern(b []byte) string {
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

// bindHeader is what Airlock needs from a Bind: the names and the result
// formats. It is parsed by hand to avoid pgproto3's per-parameter copies on
// the hottest extended-protocol message.
type bindHeader struct {
	portal, stmt []byte
	nfmt         int
	fmt0         int16
	fmtBytes     []byte
	// pfmt holds the parameter format codes, values the nvals parameter
	// values as sent (length-prefixed), for recording.parameters.
	pfmt, values []byte
	nvals        int
}

func (b bindHeader) formats() []int16 {
	out := make([]int16, b.nfmt)
	for i := range out {
		out[i] = int16(binary.BigEndian.Uint16(b.fmtBytes[2*i:]))
	}
	return out
}

func parseBind(body []byte) (bindHeader, bool) {
	var b bindHeader
	i := 0
	next := func() ([]byte, bool) {
		for j := i; j < len(body); j++ {
			if body[j] == 0 {
				v := body[i:j]
				i = j + 1
				return v, true
			}
		}
		return nil, false
	}
	u16 := func() (int, bool) {
		if i+2 > len(body) {
			return 0, false
		}
		v := int(binary.BigEndian.Uint16(body[i:]))
		i += 2
		return v, true
	}
	var ok bool
	if b.portal, ok = next(); !ok {
		return b, false
	}
	if b.stmt, ok = next(); !ok {
		return b, false
	}
	np, ok := u16()
	if !ok || i+2*np > len(body) {
		return b, false
	}
	b.pfmt = body[i : i+2*np]
	i += 2 * np
	nv, ok := u16()
	if !ok {
		return b, false
	}
	b.nvals, b.values = nv, body[i:]
	for range nv {
		if i+4 > len(body) {
			return b, false
		}
		n := int(int32(binary.BigEndian.Uint32(body[i:])))
		i += 4
		if n > 0 {
			if i+n > len(body) {
				return b, false
			}
			i += n
		} else if n < -1 {
			return b, false
		}
	}
	b.values = b.values[:len(b.values)-(len(body)-i)]
	if b.nfmt, ok = u16(); !ok || i+2*b.nfmt > len(body) {
		return b, false
	}
	b.fmtBytes = body[i : i+2*b.nfmt]
	if b.nfmt > 0 {
		b.fmt0 = int16(binary.BigEndian.Uint16(b.fmtBytes))
	}
	return b, true
}

// verdict is what check found: whether to forward (and whether a
// reviewer's approval allowed it), or the error the client gets.
type verdict struct {
	allowed, approved bool
	refusal           *pgError
}

func verdictOf(dec protocols.Decision) verdict {
	ok := dec.Action == protocols.Allow
	return verdict{allowed: ok, approved: ok && dec.ApprovalID != "", refusal: refusalError(dec)}
}

// check runs the Pipeline. err ends the session.
func (s *session) check(ctx context.Context, cmd *protocols.Command) (verdict, error) {
	p := s.e.opt.Pipeline
	if p.Approver == nil {
		dec, err := p.Check(ctx, s.ps, cmd, nil)
		if err != nil {
			return verdict{}, s.checkFailed(err)
		}
		return verdictOf(dec), nil
	}
	// One context serves every check until a hold is cancelled: creating
	// one per command cost about 4% of the CPU at 16 clients (it registers
	// with the parent's children under its lock).
	if s.holdCtx == nil || s.holdCtx.Err() != nil {
		s.holdCtx, s.holdStop = context.WithCancelCause(ctx)
	}
	hctx, cancel := s.holdCtx, s.holdStop
	s.holdMu.Lock()
	s.holdCancel = cancel
	s.holdMu.Unlock()
	var stopWatch func()
	notify := func(msg string) {
		// Let what was pipelined before the held command run, tell the
		// client, and notice if it goes away while waiting.
		_ = s.up.w.Flush()
		_ = s.writeClient(appendNotice(nil, msg), true)
		if stopWatch == nil {
			stopWatch = s.watchClient(cancel)
		}
	}
	dec, err := p.Check(hctx, s.ps, cmd, notify)
	s.holdMu.Lock()
	s.holdCancel = nil
	s.holdMu.Unlock()
	if stopWatch != nil {
		stopWatch()
	}
	if err != nil {
		if hctx.Err() != nil && errors.Is(context.Cause(hctx), errCancelRequested) {
			return verdict{refusal: &pgError{Code: codeQueryCanceled, Message: "canceling statement due to user request",
				Detail: "the command was withdrawn while it waited for approval; it did not run"}}, nil
		}
		if hctx.Err() != nil {
			return verdict{}, errStop
		}
		return verdict{}, s.checkFailed(err)
	}
	return verdictOf(dec), nil
}

func (s *session) checkFailed(err error) error {
	s.log.Error("command could not be checked; ending session", "err", err)
	return fatal(codeIOError, "Airlock could not record or decide the command; the session is closed so nothing runs unrecorded")
}

// watchClient notices a client that hangs up while its command is held. It
// peeks the client socket (the client loop is blocked in check meanwhile)
// and cancels the hold on end of input or on a Terminate.
func (s *session) watchClient(cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, err := s.cr.r.Peek(1)
		if err == nil && b[0] == 'X' || err != nil && !isTimeout(err) {
			cancel(errClientGone)
		}
	}()
	return func() {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = s.conn.SetReadDeadline(time.Time{})
	}
}

// refusalError turns a refusing decision into the client's error.
func refusalError(dec protocols.Decision) *pgError {
	if dec.Action == protocols.Allow {
		return nil
	}
	msg := "Airlock refused the command"
	if dec.Reason != "" {
		msg += ": " + dec.Reason
	}
	detail := "risk " + dec.Risk.String()
	if len(dec.Rules) > 0 {
		detail += "; rules " + strings.Join(dec.Rules, ", ")
	}
	if dec.ApprovalID != "" {
		detail += "; approval request " + dec.ApprovalID
	}
	return &pgError{Code: codeInsufficientPriv, Message: msg, Detail: detail}
}

// refuse replaces a refused Query or Parse upstream with a statement that
// fails to parse; the upstream reader swaps its error for refusal. Using the
// upstream keeps the error in its place within a pipeline and the
// transaction state exactly as PostgreSQL itself would leave it.
func (s *session) refuse(kind pendKind, stmt string, refusal *pgError) error {
	s.seq++
	tok := "airlock_refused_" + s.nonce + "_" + strconv.FormatUint(s.seq, 10)
	var out []byte
	if kind == pkQuery {
		out, _ = (&pgproto3.Query{String: tok}).Encode(nil)
		s.pend.push(pending{kind: pkQuery, start: time.Now(), refusal: refusal})
	} else {
		out, _ = (&pgproto3.Parse{Name: stmt, Query: tok}).Encode(nil)
		s.pend.push(pending{kind: pkParse, name: stmt, refusal: refusal})
	}
	_, err := s.up.w.Write(out)
	return err
}
