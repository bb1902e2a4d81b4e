package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// field is the part of a RowDescription field Airlock keeps.
type field struct {
	name     string
	tableOID uint32
	typeOID  uint32
	format   int16
}

// portalState is what the upstream reader knows of a bound portal.
type portalState struct {
	stmt    string
	formats []int16
	fields  []field // from Describe P, when the client asked
	known   bool
}

// resultState is the upstream reader's view of the session's statements,
// portals and the result set being streamed; the session flow's Results
// plans masking and records.
type resultState struct {
	stmts   map[string][]field
	portals map[string]*portalState

	copyOut   bool
	copyBin   bool
	copyAbort *pgError // a COPY whose rows cannot be masked: swallow the rest
	copyMask  func(line []byte) ([]byte, error)
	copyText  bool // mask whole lines with the detectors only
	copySkip  int  // header lines to pass

	dr    pgproto3.DataRow
	rd    pgproto3.RowDescription
	buf   []byte
	frame []byte // the DataRow being taken through Results

	// A prepared statement or a repeated query describes the same columns
	// every time; then neither decoding nor describing is repeated.
	// rdFields are the fields of the last RowDescription (rd), plan* the
	// columns begin described last (the flow's Results reuses its masking
	// plan for the same slice), and derived the fields of each statement
	// as last bound.
	lastRD     []byte
	rdFields   []field
	planFields []field
	planCols   []protocols.Column
	derived    map[string]derivedFields
	// lastTag is the last CommandComplete's tag, which the next one
	// usually repeats ("SELECT 1").
	lastTag string
}

// tag returns b as a string, the last tag's string when it repeats: the
// copy would be the only allocation of a cached statement's run.
func (r *resultState) tag(b []byte) string {
	if string(b) != r.lastTag {
		r.lastTag = string(b)
	}
	return r.lastTag
}

// derivedFields are a statement's columns with the formats of a Bind.
type derivedFields struct {
	formats []int16
	fields  []field
}

// upstreamLoop relays upstream messages to the client. It owns the upstream
// socket's read side.
func (s *relay) upstreamLoop() {
	for {
		if !s.up.r.buffered() {
			s.upstreamAt = time.Time{} // the next message comes from a new read
		}
		typ, frame, body, err := s.up.r.next()
		if s.engine.set.QueryTimeout > 0 {
			s.progress.Add(1)
		}
		if err != nil {
			if !s.isEnded() {
				s.flow.UpstreamError()
				s.terminate(fatal(codeConnectionFailure, fmt.Sprintf("lost the upstream of connection %q", s.flow.Conn.Name)), "upstream closed")
			}
			return
		}
		if s.engine.relayOnly {
			err = s.forward(frame)
		} else {
			err = s.upstreamMessage(typ, frame, body)
		}
		s.lastUp = typ
		if typ == 'Z' && len(body) == 1 {
			s.lastTx = body[0]
			s.txIdle.Store(body[0] == 'I')
		}
		s.upIdle.Store(typ == 'Z')
		if err == nil && !s.up.r.buffered() {
			err = s.flushClient()
		}
		if err != nil {
			if pe, ok := err.(*pgError); ok {
				s.terminate(pe, pe.Message)
			} else {
				s.clientGone()
			}
			return
		}
		s.up.r.shrink()
	}
}

func (s *relay) forward(b []byte) error { return s.writeClient(b, false) }

func (s *relay) flushClient() error {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.clientOut == nil {
		return errSessionEnded
	}
	return s.clientOut.Flush()
}

// upstreamMessage handles one upstream message in inspecting mode.
func (s *relay) upstreamMessage(typ byte, frame, body []byte) error {
	r := &s.res
	switch typ {
	case 'D':
		return s.dataRow(frame, body)
	case 'T':
		return s.rowDescription(frame, body)
	case 't': // ParameterDescription answers a Describe of a statement
		return s.parameterDescription(frame, body)
	case 'n': // NoData answers a Describe
		head, _ := s.pending.pop()
		if head.kind == pkDescribeP {
			r.portal(head.name).setFields(nil)
		} else if head.kind == pkDescribeS {
			r.setStmt(head.name, nil)
		}
		return s.forward(frame)
	case '1': // ParseComplete
		head, _ := s.pending.pop()
		delete(r.stmts, head.name)
		delete(r.derived, head.name)
		return s.forward(frame)
	case '2': // BindComplete
		head, _ := s.pending.pop()
		p := r.portal(head.name)
		*p = portalState{stmt: head.stmt, formats: head.formats}
		return s.forward(frame)
	case '3':
		return s.closeComplete(frame)
	case 'C':
		return s.commandComplete(frame, body)
	case 's': // PortalSuspended: the Execute ends, the portal lives on
		head, _ := s.pending.pop()
		if err := s.finish(protocols.Result{Tag: "SUSPENDED", Rows: s.results.Rows()}, head.start); err != nil {
			return err
		}
		return s.forward(frame)
	case 'I': // EmptyQueryResponse
		if head, _ := s.pending.peek(); head.kind == pkExecute {
			s.pending.pop()
		}
		return s.forward(frame)
	case 'E':
		return s.errorResponse(frame, body)
	case 'N':
		return s.notice(frame, body)
	case 'A':
		return s.notification(frame, body)
	case 'Z':
		return s.readyForQuery(frame)
	}
	return s.copyMessage(typ, frame, body)
}

// rowDescription starts a result set, or answers a Describe.
func (s *relay) rowDescription(frame, body []byte) error {
	r := &s.res
	fields := r.rdFields
	if r.lastRD == nil || !bytes.Equal(body, r.lastRD) {
		if err := r.rd.Decode(body); err != nil {
			return upstreamProtocol("RowDescription")
		}
		fields = copyFields(r.rd.Fields)
		r.lastRD = append(r.lastRD[:0:0], body...)
		r.rdFields = fields
	}
	head, _ := s.pending.peek()
	switch head.kind {
	case pkDescribeS:
		s.pending.pop()
		r.setStmt(head.name, fields)
	case pkDescribeP:
		s.pending.pop()
		r.portal(head.name).setFields(fields)
	default:
		if err := s.begin(fields, head.start); err != nil {
			return err
		}
	}
	return s.forward(frame)
}

// parameterDescription keeps a statement's parameter types for the
// recording of its parameters.
func (s *relay) parameterDescription(frame, body []byte) error {
	if head, _ := s.pending.peek(); head.kind == pkDescribeS && s.engine.recordParams {
		var pd pgproto3.ParameterDescription
		if err := pd.Decode(body); err != nil {
			return upstreamProtocol("ParameterDescription")
		}
		s.setParamTypes(head.name, pd.ParameterOIDs)
	}
	return s.forward(frame)
}

// closeComplete forgets a closed statement or portal.
func (s *relay) closeComplete(frame []byte) error {
	r := &s.res
	head, _ := s.pending.pop()
	if head.internal {
		return nil
	}
	if head.close == 'S' {
		delete(r.stmts, head.name)
		delete(r.derived, head.name)
	} else {
		delete(r.portals, head.name)
	}
	return s.forward(frame)
}

// readyForQuery ends what the upstream owed up to the Sync or Query it
// answers, counting the command's duration.
func (s *relay) readyForQuery(frame []byte) error {
	for {
		p, ok := s.pending.pop()
		if !ok {
			break
		}
		if p.kind == pkSync || p.kind == pkQuery {
			s.results.DoneAt(p.start, s.upstreamNow())
			break
		}
	}
	s.results.Reset()
	return s.forward(frame)
}

func upstreamProtocol(msg string) error {
	return fatal(codeConnectionFailure, "invalid "+msg+" from upstream")
}

// sameFields reports whether a and b are the same slice.
func sameFields(a, b []field) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

func copyFields(in []pgproto3.FieldDescription) []field {
	out := make([]field, len(in))
	for i, f := range in {
		out[i] = field{name: string(f.Name), tableOID: f.TableOID, typeOID: f.DataTypeOID, format: f.Format}
	}
	return out
}

func (r *resultState) setStmt(name string, f []field) {
	if r.stmts == nil {
		r.stmts = map[string][]field{}
	}
	r.stmts[name] = f
	delete(r.derived, name)
}

func (r *resultState) portal(name string) *portalState {
	if r.portals == nil {
		r.portals = map[string]*portalState{}
	}
	p := r.portals[name]
	if p == nil {
		p = &portalState{}
		r.portals[name] = p
	}
	return p
}

func (p *portalState) setFields(f []field) { p.fields, p.known = f, true }

// portalFields returns the columns an Execute of the portal yields: those
// of its Describe, or of its statement's Describe with the Bind's formats.
func (r *resultState) portalFields(name string) ([]field, bool) {
	p := r.portals[name]
	if p == nil {
		return nil, false
	}
	if p.known {
		return p.fields, true
	}
	sf, ok := r.stmts[p.stmt]
	if !ok {
		return nil, false
	}
	if d, ok := r.derived[p.stmt]; ok && slices.Equal(d.formats, p.formats) && len(d.fields) == len(sf) {
		p.fields, p.known = d.fields, true
		return d.fields, true
	}
	out := make([]field, len(sf))
	for i, f := range sf {
		f.format = 0
		switch {
		case len(p.formats) == 1:
			f.format = p.formats[0]
		case i < len(p.formats):
			f.format = p.formats[i]
		}
		out[i] = f
	}
	p.fields, p.known = out, true
	if r.derived == nil || len(r.derived) > 1024 {
		r.derived = map[string]derivedFields{}
	}
	r.derived[p.stmt] = derivedFields{formats: p.formats, fields: out}
	return out, true
}

// begin starts a result set of fields: the flow's Results plans masking
// once and records the columns. The same fields as last time reuse their
// columns, and with them the plan.
func (s *relay) begin(fields []field, start time.Time) error {
	r := &s.res
	if !sameFields(fields, r.planFields) {
		r.planCols = s.columns(nil, fields)
		r.planFields = fields
	}
	return s.resultErr(s.results.BeginAt(r.planCols, start, s.upstreamNow()))
}

// resultErr maps an error of the flow's Results: a recording that failed
// ends the session with an error; anything else is the client's socket.
func (s *relay) resultErr(err error) error {
	if err != nil && errors.Is(err, session.ErrRecordingFailed) {
		return fatal(codeIOError, "session recording failed; Airlock ends the session so nothing runs unrecorded")
	}
	return err
}

// columns describes fields for the masker. With masking on, the catalog
// names the source tables (for table.column rules) and the types created in
// the database; when it cannot, tables stay unknown and such types opaque,
// which the masker treats strictly (fail closed).
func (s *relay) columns(dst []protocols.Column, fields []field) []protocols.Column {
	return s.engine.describe(dst, s.flow, fields)
}

// describe turns the fields of a result set of flow's connection into
// columns. For a masked caller the catalog names the source tables (for
// table.column rules) and the types created in the database; when it
// cannot, tables stay unknown and such types opaque, which the masker
// treats strictly (fail closed).
func (e *Engine) describe(dst []protocols.Column, flow *session.Session, fields []field) []protocols.Column {
	var k *catalog
	if m := flow.Masker(); m != nil {
		k = e.catalogFor(flow.Conn)
		var tables, types []uint32
		if hasColumnRules(m) {
			for _, f := range fields {
				tables = append(tables, f.tableOID)
			}
		}
		for _, f := range fields {
			if f.typeOID >= firstNormalOID {
				types = append(types, f.typeOID)
			}
		}
		if err := k.resolve(tables, types); err != nil {
			flow.Log.Warn("catalog lookup failed; masking treats unknown tables and types strictly", "err", err)
		}
	}
	for _, f := range fields {
		col := protocols.Column{Name: f.name, Type: valueType(f.typeOID), Binary: f.format == 1,
			TextOffset: textOffset(f.typeOID, f.format == 1), Native: f.typeOID}
		if k != nil {
			col.Type = k.valueType(f.typeOID)
			col.Table = k.table(f.tableOID)
		}
		dst = append(dst, col)
	}
	return dst
}

// hasColumnRules asks a masker whether it masks columns by name or table;
// a masker that cannot say is assumed to.
func hasColumnRules(m protocols.Masker) bool {
	if h, ok := m.(protocols.ColumnRuler); ok {
		return h.HasColumnRules()
	}
	return true
}

// dataRow takes one row through the flow's Results: masked, recorded,
// then forwarded (ForwardRow). A row nothing masks or records passes as
// it came, undecoded.
func (s *relay) dataRow(frame, body []byte) error {
	r := &s.res
	if !s.results.Active() {
		if err := s.beginFromHead(body); err != nil {
			return err
		}
	}
	if !s.results.NeedsValues() {
		s.results.Pass()
		return s.forward(frame)
	}
	if err := r.dr.Decode(body); err != nil {
		return upstreamProtocol("DataRow")
	}
	r.frame = frame
	return s.resultErr(s.results.Row(r.dr.Values))
}

// ForwardRow implements session.RowSink: the row as it came, or encoded
// again with its masked values.
func (s *relay) ForwardRow(values [][]byte, changed bool) error {
	r := &s.res
	if !changed {
		return s.forward(r.frame)
	}
	r.dr.Values = values
	r.buf, _ = r.dr.Encode(r.buf[:0])
	return s.forward(r.buf)
}

// beginFromHead starts the result set of an Execute whose rows arrive
// without a RowDescription (the client described the statement earlier).
// When the columns are unknown every value is treated as opaque, so the
// masker can still fail closed.
func (s *relay) beginFromHead(row []byte) error {
	head, _ := s.pending.peek()
	if head.kind == pkExecute {
		if f, ok := s.res.portalFields(head.name); ok {
			return s.begin(f, head.start)
		}
	}
	n := 0
	if len(row) >= 2 {
		n = int(binary.BigEndian.Uint16(row))
	}
	f := make([]field, n)
	for i := range f {
		f[i] = field{name: "?column?", format: 1}
	}
	if s.flow.Masker() != nil {
		s.log.Warn("rows without a known row description; masking treats every value as opaque")
	}
	return s.begin(f, head.start)
}

func (s *relay) commandComplete(frame, body []byte) error {
	r := &s.res
	head, _ := s.pending.peek()
	if head.kind == pkExecute {
		s.pending.pop()
	}
	if r.copyAbort != nil {
		pe := r.copyAbort
		r.copyAbort, r.copyOut = nil, false
		if err := s.finish(protocols.Result{Error: pe.Message, Code: pe.Code}, head.start); err != nil {
			return err
		}
		return s.forward(pe.encode(nil))
	}
	tag := r.tag(cstring(body))
	rows := s.results.Rows()
	if !s.results.Active() || rows == 0 || r.copyOut {
		rows = tagRows(tag)
	}
	r.copyOut = false
	if err := s.finish(protocols.Result{Tag: tag, Rows: rows}, head.start); err != nil {
		return err
	}
	return s.forward(frame)
}

// finish records the end of one statement's result.
func (s *relay) finish(res protocols.Result, start time.Time) error {
	return s.resultErr(s.results.EndAt(res, start, s.upstreamNow()))
}

// tagRows reads the row count at the end of a command tag ("UPDATE 3").
func tagRows(tag string) int64 {
	i := len(tag)
	for i > 0 && tag[i-1] >= '0' && tag[i-1] <= '9' {
		i--
	}
	n, _ := strconv.ParseInt(tag[i:], 10, 64)
	return n
}

// sameSlice reports whether a masker handed back its input unchanged, as
// Masker.Text does when nothing matched.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// errorResponse forwards an upstream error, masked, or Airlock's refusal in
// place of the error its refusal statement provoked.
func (s *relay) errorResponse(frame, body []byte) error {
	r := &s.res
	head, _ := s.pending.peek()
	var skipped []time.Time // starts of the Executes the server skips
	if head.kind != pkQuery && head.kind != pkSync {
		first := true
		s.pending.skipToSync(func(p *pending) {
			if p.undo != nil {
				s.undoLater(p.undo)
			}
			if !first && p.kind == pkExecute {
				skipped = append(skipped, p.start)
			}
			first = false
		})
	}
	r.copyOut, r.copyAbort = false, nil
	out, err := s.recordError(head, body)
	if err != nil {
		return err
	}
	// Each Execute recorded as sent and then skipped gets a result that
	// says it did not run. When a Parse, Bind or Describe failed, the error
	// stands for the first of them (its statement or portal failed).
	if head.kind != pkExecute && len(skipped) > 0 {
		skipped = skipped[1:]
	}
	for _, start := range skipped {
		if err := s.finish(protocols.Result{Error: skippedExecute}, start); err != nil {
			return err
		}
	}
	if out == nil {
		out = frame
	}
	return s.forward(out)
}

// skippedExecute is the recorded error of an Execute the server skipped.
const skippedExecute = "not run: PostgreSQL skips the rest of a pipeline after an error"

// recordError records the result of the failed message at head: Airlock's
// refusal, or the server's error, masked. It returns what to forward in
// place of the server's frame, or nil to forward it unchanged.
func (s *relay) recordError(head pending, body []byte) ([]byte, error) {
	if pe := head.refusal; pe != nil {
		return pe.encode(nil), s.finish(protocols.Result{Error: pe.Message, Code: pe.Code}, head.start)
	}
	var er pgproto3.ErrorResponse
	if err := er.Decode(body); err != nil {
		return nil, upstreamProtocol("ErrorResponse")
	}
	changed := s.maskFields(&er.Message, &er.Detail, &er.Hint, &er.Where, &er.InternalQuery)
	if err := s.finish(protocols.Result{Error: er.Message, Code: er.Code}, head.start); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	out, err := er.Encode(nil)
	if err != nil {
		return nil, upstreamProtocol("ErrorResponse")
	}
	return out, nil
}

func (s *relay) notice(frame, body []byte) error {
	if s.flow.Masker() == nil {
		return s.forward(frame)
	}
	var n pgproto3.NoticeResponse
	if err := n.Decode(body); err != nil {
		return upstreamProtocol("NoticeResponse")
	}
	if !s.maskFields(&n.Message, &n.Detail, &n.Hint, &n.Where, &n.InternalQuery) {
		return s.forward(frame)
	}
	out, err := n.Encode(nil)
	if err != nil {
		return upstreamProtocol("NoticeResponse")
	}
	return s.forward(out)
}

// maskFields masks free-text fields in place and reports a change.
func (s *relay) maskFields(fields ...*string) bool {
	m := s.flow.Masker()
	if m == nil {
		return false
	}
	changed := false
	for _, f := range fields {
		if *f == "" {
			continue
		}
		in := []byte(*f)
		if out := m.Text(in); !sameSlice(out, in) {
			*f = string(out)
			changed = true
		}
	}
	return changed
}

// notification masks a NOTIFY payload. Its process id needs no change:
// the client knows its session by its upstream's own.
func (s *relay) notification(frame, body []byte) error {
	if s.flow.Masker() == nil {
		return s.forward(frame)
	}
	var n pgproto3.NotificationResponse
	if err := n.Decode(body); err != nil {
		return upstreamProtocol("NotificationResponse")
	}
	if !s.maskFields(&n.Payload) {
		return s.forward(frame)
	}
	out, err := n.Encode(nil)
	if err != nil {
		return upstreamProtocol("NotificationResponse")
	}
	return s.forward(out)
}
