package postgres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
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
// portals and the result set being streamed.
type resultState struct {
	stmts   map[string][]field
	portals map[string]*portalState

	active bool // a result set is being streamed
	cols   []protocols.Column
	mask   protocols.RowMasker
	rows   int64
	start  time.Time

	copyOut   bool
	copyBin   bool
	copyAbort *pgError // a COPY whose rows cannot be masked: swallow the rest
	copyMask  func(line []byte) ([]byte, error)
	copyText  bool // mask whole lines with the detectors only
	copySkip  int  // header lines to pass

	dr  pgproto3.DataRow
	rd  pgproto3.RowDescription
	buf []byte

	// A prepared statement or a repeated query describes the same columns
	// every time; then neither decoding nor planning is repeated. rdFields
	// are the fields of the last RowDescription (rd), plan* what begin
	// planned last, and derived the fields of each statement as last bound.
	lastRD     []byte
	rdFields   []field
	planFields []field
	planCols   []protocols.Column
	planMask   protocols.RowMasker
	derived    map[string]derivedFields
}

// derivedFields are a statement's columns with the formats of a Bind.
type derivedFields struct {
	formats []int16
	fields  []field
}

// upstreamLoop relays upstream messages to the client. It owns the upstream
// socket's read side.
func (s *session) upstreamLoop() {
	for {
		typ, frame, body, err := s.up.r.next()
		if err != nil {
			if !s.isEnded() {
				s.e.opt.Metrics.UpstreamError(protocols.Postgres, s.c.Name)
				s.terminate(fatal(codeConnectionFailure, fmt.Sprintf("lost the upstream of connection %q", s.c.Name)), "upstream closed")
			}
			return
		}
		if s.e.opt.Relay {
			err = s.forward(frame)
		} else {
			err = s.upstreamMessage(typ, frame, body)
		}
		s.lastUp = typ
		if typ == 'Z' && len(body) == 1 {
			s.lastTx = body[0]
		}
		if err == nil && !s.up.r.buffered() {
			err = s.flushClient()
		}
		if err != nil {
			if pe, ok := err.(*pgError); ok {
				s.terminate(pe, pe.Message)
			} else {
				s.terminate(nil, "client disconnected")
			}
			return
		}
		s.up.r.shrink()
	}
}

func (s *session) forward(b []byte) error { return s.writeClient(b, false) }

func (s *session) flushClient() error {
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	if s.cw == nil {
		return errSessionEnded
	}
	return s.cw.Flush()
}

func (s *session) upstreamMessage(typ byte, frame, body []byte) error {
	r := &s.res
	switch typ {
	case 'D':
		return s.dataRow(frame, body)
	case 'T':
		fields := r.rdFields
		if r.lastRD == nil || !bytes.Equal(body, r.lastRD) {
			if err := r.rd.Decode(body); err != nil {
				return upstreamProtocol("RowDescription")
			}
			fields = copyFields(r.rd.Fields)
			r.lastRD = append(r.lastRD[:0:0], body...)
			r.rdFields = fields
		}
		head, _ := s.pend.peek()
		switch head.kind {
		case pkDescribeS:
			s.pend.pop()
			r.setStmt(head.name, fields)
		case pkDescribeP:
			s.pend.pop()
			r.portal(head.name).setFields(fields)
			if head.internal {
				return nil
			}
		default:
			if err := s.begin(fields, head.start); err != nil {
				return err
			}
		}
		return s.forward(frame)
	case 't': // ParameterDescription answers a Describe of a statement
		if head, _ := s.pend.peek(); head.kind == pkDescribeS && s.e.opt.RecordParameters {
			var pd pgproto3.ParameterDescription
			if err := pd.Decode(body); err != nil {
				return upstreamProtocol("ParameterDescription")
			}
			s.setParamTypes(head.name, pd.ParameterOIDs)
		}
		return s.forward(frame)
	case 'n': // NoData answers a Describe
		head, _ := s.pend.pop()
		if head.kind == pkDescribeP {
			r.portal(head.name).setFields(nil)
			if head.internal {
				return nil
			}
		} else if head.kind == pkDescribeS {
			r.setStmt(head.name, nil)
		}
		return s.forward(frame)
	case '1': // ParseComplete
		head, _ := s.pend.pop()
		delete(r.stmts, head.name)
		delete(r.derived, head.name)
		return s.forward(frame)
	case '2': // BindComplete
		head, _ := s.pend.pop()
		p := r.portal(head.name)
		*p = portalState{stmt: head.stmt, formats: head.formats}
		return s.forward(frame)
	case '3': // CloseComplete
		head, _ := s.pend.pop()
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
	case 'C':
		return s.commandComplete(frame, body)
	case 's': // PortalSuspended: the Execute ends, the portal lives on
		head, _ := s.pend.pop()
		if err := s.finish(protocols.Result{Tag: "SUSPENDED", Rows: r.rows}, head.start); err != nil {
			return err
		}
		return s.forward(frame)
	case 'I': // EmptyQueryResponse
		if head, _ := s.pend.peek(); head.kind == pkExecute {
			s.pend.pop()
		}
		return s.forward(frame)
	case 'E':
		return s.errorResponse(frame, body)
	case 'N':
		return s.notice(frame, body)
	case 'A':
		return s.notification(frame, body)
	case 'Z':
		for {
			p, ok := s.pend.pop()
			if !ok {
				break
			}
			if p.kind == pkSync || p.kind == pkQuery {
				s.e.opt.Metrics.ObserveCommand(s.ps, time.Since(p.start))
				break
			}
		}
		r.active = false
		return s.forward(frame)
	case 'H', 'G', 'W':
		if typ == 'H' {
			r.copyOut, r.copyBin = true, len(body) > 0 && body[0] == 1
			if err := s.beginCopy(body); err != nil {
				return err
			}
		}
		return s.forward(frame)
	case 'd':
		if r.copyOut {
			return s.copyData(frame, body)
		}
		return s.forward(frame)
	case 'c':
		if r.copyAbort != nil {
			return nil
		}
		return s.forward(frame)
	}
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

// begin starts a result set: plan masking once, record its columns.
func (s *session) begin(fields []field, start time.Time) error {
	r := &s.res
	r.active, r.rows, r.start = true, 0, start
	if sameFields(fields, r.planFields) {
		// The columns planned for the last result set, again.
		r.cols, r.mask = r.planCols, r.planMask
	} else {
		r.cols = s.columns(nil, fields)
		r.mask = nil
		if s.ps.Masker != nil {
			r.mask = s.ps.Masker.Plan(r.cols)
		}
		r.planFields, r.planCols, r.planMask = fields, r.cols, r.mask
	}
	if err := s.ps.Recorder.Columns(r.cols); err != nil {
		return s.recordFailed(err)
	}
	return nil
}

// columns describes fields for the masker. With masking on, the catalog
// names the source tables (for table.column rules) and the types created in
// the database; when it cannot, tables stay unknown and such types opaque,
// which the masker treats strictly (fail closed).
func (s *session) columns(dst []protocols.Column, fields []field) []protocols.Column {
	var k *catalog
	if s.ps.Masker != nil {
		k = s.e.catalogFor(s.c)
		var tables, types []uint32
		if hasColumnRules(s.ps.Masker) {
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
			s.log.Warn("catalog lookup failed; masking treats unknown tables and types strictly", "err", err)
		}
	}
	for _, f := range fields {
		col := protocols.Column{Name: f.name, Type: valueType(f.typeOID), Binary: f.format == 1,
			TextOffset: textOffset(f.typeOID, f.format == 1), OID: f.typeOID}
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
	if h, ok := m.(interface{ HasColumnRules() bool }); ok {
		return h.HasColumnRules()
	}
	return true
}

func (s *session) dataRow(frame, body []byte) error {
	r := &s.res
	if !r.active {
		if err := s.beginFromHead(body); err != nil {
			return err
		}
	}
	r.rows++
	if r.mask == nil && !s.ps.Records() {
		return s.forward(frame)
	}
	if err := r.dr.Decode(body); err != nil {
		return upstreamProtocol("DataRow")
	}
	changed := r.mask != nil && r.mask.MaskRow(r.dr.Values)
	if err := s.ps.Recorder.Row(r.dr.Values); err != nil {
		return s.recordFailed(err)
	}
	if !changed {
		return s.forward(frame)
	}
	r.buf, _ = r.dr.Encode(r.buf[:0])
	return s.forward(r.buf)
}

// beginFromHead starts the result set of an Execute whose rows arrive
// without a RowDescription (the client described the statement earlier).
// When the columns are unknown every value is treated as opaque, so the
// masker can still fail closed.
func (s *session) beginFromHead(row []byte) error {
	head, _ := s.pend.peek()
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
	if s.ps.Masker != nil {
		s.log.Warn("rows without a known row description; masking treats every value as opaque")
	}
	return s.begin(f, head.start)
}

func (s *session) commandComplete(frame, body []byte) error {
	r := &s.res
	head, _ := s.pend.peek()
	if head.kind == pkExecute {
		s.pend.pop()
	}
	if r.copyAbort != nil {
		pe := r.copyAbort
		r.copyAbort, r.copyOut = nil, false
		if err := s.finish(protocols.Result{Error: pe.Message, Code: pe.Code}, head.start); err != nil {
			return err
		}
		return s.forward(pe.encode(nil))
	}
	r.copyOut = false
	tag := string(cstring(body))
	rows := r.rows
	if !r.active || rows == 0 {
		rows = tagRows(tag)
	}
	if err := s.finish(protocols.Result{Tag: tag, Rows: rows}, head.start); err != nil {
		return err
	}
	return s.forward(frame)
}

// finish records the end of one statement's result.
func (s *session) finish(res protocols.Result, start time.Time) error {
	s.res.active = false
	s.res.mask = nil
	if !start.IsZero() {
		res.Duration = time.Since(start)
	}
	if err := s.ps.Recorder.Result(res); err != nil {
		return s.recordFailed(err)
	}
	return nil
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

func (s *session) recordFailed(err error) error {
	s.log.Error("recording failed; ending session", "err", err)
	return fatal(codeIOError, "session recording failed; Airlock ends the session so nothing runs unrecorded")
}

// errorResponse forwards an upstream error, masked, or Airlock's refusal in
// place of the error its refusal statement provoked.
func (s *session) errorResponse(frame, body []byte) error {
	r := &s.res
	head, _ := s.pend.peek()
	var skipped []time.Time // starts of the Executes the server skips
	if head.kind != pkQuery && head.kind != pkSync {
		first := true
		s.pend.skipToSync(func(p *pending) {
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
func (s *session) recordError(head pending, body []byte) ([]byte, error) {
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

func (s *session) notice(frame, body []byte) error {
	if s.ps.Masker == nil {
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
func (s *session) maskFields(fields ...*string) bool {
	m := s.ps.Masker
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

// notification masks a NOTIFY payload and shows Airlock's own process id
// for notifications the client's own session raised.
func (s *session) notification(frame, body []byte) error {
	var n pgproto3.NotificationResponse
	if err := n.Decode(body); err != nil {
		return upstreamProtocol("NotificationResponse")
	}
	changed := false
	if n.PID == s.up.pid {
		n.PID, changed = s.pid, true
	}
	if s.maskFields(&n.Payload) {
		changed = true
	}
	if !changed {
		return s.forward(frame)
	}
	out, err := n.Encode(nil)
	if err != nil {
		return upstreamProtocol("NotificationResponse")
	}
	return s.forward(out)
}

// beginCopy prepares masking for COPY ... TO STDOUT: it learns which
// columns the COPY sends and plans masking per line, so column rules apply
// as they do to query results. Binary COPY rows are opaque to the masker;
// with masking on they are refused, as is a COPY whose columns cannot be
// known while column rules apply.
func (s *session) beginCopy(body []byte) error {
	r := &s.res
	head, _ := s.pend.peek()
	r.active, r.rows, r.start = true, 0, head.start
	r.mask, r.copyMask, r.copyText, r.copySkip = nil, nil, false, 0
	m := s.ps.Masker
	if m == nil {
		return nil
	}
	if r.copyBin {
		r.copyAbort = &pgError{Code: codeInsufficientPriv,
			Message: "binary COPY TO STDOUT is not allowed while masking applies to you",
			Hint:    "use COPY ... TO STDOUT in text or CSV format"}
		return nil
	}
	ncols := 0
	if len(body) >= 3 {
		ncols = int(binary.BigEndian.Uint16(body[1:]))
	}
	spec := head.copies.take()
	if spec != nil {
		fields, err := s.e.catalogFor(s.c).copyColumns(spec)
		if err == nil && len(fields) == ncols {
			cols := s.columns(nil, fields)
			if p, ok := m.(interface {
				PlanCopyLines(cols []protocols.Column, csv bool, delimiter byte, null []byte) func(line []byte) ([]byte, error)
			}); ok {
				r.copyMask = p.PlanCopyLines(cols, spec.csv, spec.delim, spec.null)
				if spec.header {
					r.copySkip = 1
				}
				return nil
			}
		} else {
			s.log.Warn("cannot tell the columns of a COPY", "err", err, "columns", ncols, "found", len(fields))
		}
	}
	if hasColumnRules(m) {
		r.copyAbort = &pgError{Code: codeInsufficientPriv,
			Message: "Airlock cannot tell which columns this COPY sends, and column masking rules apply to you",
			Hint:    "name the table or use COPY (SELECT ...) TO STDOUT"}
		return nil
	}
	r.copyText = true
	return nil
}

func (s *session) copyData(frame, body []byte) error {
	r := &s.res
	if r.copyAbort != nil {
		return nil
	}
	r.rows++
	out := body
	switch {
	case r.copySkip > 0:
		r.copySkip--
		r.rows--
	case r.copyMask != nil:
		var err error
		out, err = r.copyMask(body)
		if err != nil {
			// A line the plan cannot split is never sent unmasked.
			r.copyAbort = &pgError{Code: codeInsufficientPriv,
				Message: "Airlock stopped a COPY whose line it could not mask: " + err.Error()}
			return nil
		}
	case r.copyText:
		out = s.ps.Masker.Text(body)
	}
	if sameSlice(out, body) {
		return s.forward(frame)
	}
	buf, sp := beginMessage(r.buf[:0], 'd')
	buf = append(buf, out...)
	r.buf = finishMessage(buf, sp)
	return s.forward(r.buf)
}
