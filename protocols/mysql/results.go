package mysql

import (
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/session"
)

// phase is where the upstream reader is in a response.
type phase uint8

const (
	phFirst      phase = iota // a result's first packet: OK, ERR, LOCAL INFILE or a column count
	phColumns                 // column definitions
	phColumnsEOF              // the EOF after them (without CLIENT_DEPRECATE_EOF)
	phRows                    // rows, up to an EOF, an OK marker or an ERR
	phCount                   // packets relayed as they are, counted down (a prepare's definitions)
	phFieldList               // column definitions up to an EOF (COM_FIELD_LIST)
)

// resultState is the upstream reader's view of the response it reads.
type resultState struct {
	active bool // a response has begun
	head   pending
	phase  phase
	// shift is added to the sequence id of every packet forwarded: a
	// masked row re-encoded into a different number of frames moves the
	// ids of the packets after it.
	shift uint8
	// discard drops the rest of the response: the client has already been
	// answered (a refused file request).
	discard bool
	files   []string // LOCAL INFILE names still expected

	ncols, left int
	binary      bool
	defs        []byte // this result's column definitions, as sent
	cols        []protocols.Column
	types       []byte
	// The columns described last: a prepared statement or a repeated
	// query describes the same ones, and Results reuses its masking plan
	// for the same slice.
	lastDefs   []byte
	lastCols   []protocols.Column
	lastTypes  []byte
	lastBinary bool

	row    wire.Packet // the row being taken through Results
	values [][]byte
	buf    []byte
}

// upstreamLoop relays the upstream's responses to the client. It owns the
// upstream socket's read side.
func (s *relay) upstreamLoop() {
	for {
		p, err := s.upIn.Next()
		if s.engine.set.QueryTimeout > 0 {
			s.progress.Add(1)
		}
		if err != nil {
			switch {
			case s.isEnded():
			case s.quitting.Load():
				// The upstream's answer to the client's COM_QUIT, read
				// before the client loop has ended the session.
				s.terminate(nil, "client quit")
			default:
				s.flow.UpstreamError()
				s.terminate(upstreamLost(s.flow.Conn.Name), "upstream closed")
			}
			return
		}
		err = s.upstreamPacket(p)
		if err == nil && s.upR.Buffered() == 0 {
			err = s.flushClient()
		}
		if err != nil {
			var me *mysql.MyError
			if errors.As(err, &me) {
				s.terminate(me, me.Message)
			} else {
				s.clientGone()
			}
			return
		}
	}
}

// upstreamPacket handles one packet of the response at the head of the
// queue.
func (s *relay) upstreamPacket(p wire.Packet) error {
	r := &s.res
	if !r.active {
		head, ok := s.pending.peek()
		if !ok {
			// An upstream speaks unasked only to say it is ending the
			// session (a timeout, a KILL from elsewhere).
			s.flow.UpstreamError()
			return upstreamLost(s.flow.Conn.Name)
		}
		*r = resultState{active: true, head: head, files: head.files, lastDefs: r.lastDefs, lastCols: r.lastCols,
			lastTypes: r.lastTypes, lastBinary: r.lastBinary, values: r.values, buf: r.buf, defs: r.defs[:0]}
		r.binary = head.kind == pkExecute || head.kind == pkFetch
		if head.kind == pkFieldList {
			r.phase = phFieldList
		}
	}
	switch r.head.kind {
	case pkPrepare:
		return s.prepareResponse(p)
	case pkSimple:
		return s.simpleResponse(p)
	case pkFetch:
		if r.phase == phFirst && !wire.IsERR(p.Payload) {
			st := r.head.stmt
			r.cols, r.types, r.phase = st.cursorCols, st.cursorTypes, phRows
			if err := s.begin(); err != nil {
				return err
			}
		}
	}
	switch r.phase {
	case phFirst:
		return s.firstPacket(p)
	case phColumns:
		return s.columnDef(p)
	case phColumnsEOF:
		return s.columnsEnd(p)
	case phFieldList:
		if end, _, _ := wire.ResultEnd(p.Payload, s.caps); end {
			return s.finish(p)
		}
		return s.relayPacket(p)
	case phCount:
		if err := s.relayPacket(p); err != nil {
			return err
		}
		if r.left--; r.left == 0 {
			return s.done()
		}
		return nil
	}
	return s.rowPacket(p)
}

// firstPacket reads what starts a result: OK, ERR, a file request or the
// column count of a result set.
func (s *relay) firstPacket(p wire.Packet) error {
	r := &s.res
	switch wire.ClassifyResponse(p.Payload) {
	case wire.ResponseOK:
		ok, err := wire.ParseOK(p.Payload, s.caps)
		if err != nil {
			return badUpstream("OK packet")
		}
		s.status.Store(uint32(ok.Status))
		if err := s.end(protocols.Result{Tag: "OK", Rows: int64(ok.AffectedRows)}); err != nil {
			return err
		}
		if wire.MoreResults(ok.Status) {
			return s.relayPacket(p)
		}
		return s.finish(p)
	case wire.ResponseERR:
		return s.errorPacket(p)
	case wire.ResponseLocalFile:
		return s.fileRequest(p)
	}
	n, err := wire.ParseColumnCount(p.Payload)
	if err != nil {
		return badUpstream("column count")
	}
	r.ncols, r.left, r.defs, r.phase = n, n, r.defs[:0], phColumns
	return s.relayPacket(p)
}

// columnDef takes one column definition of a result set.
func (s *relay) columnDef(p wire.Packet) error {
	r := &s.res
	r.defs = appendDef(r.defs, p.Payload)
	if r.left--; r.left > 0 {
		return s.relayPacket(p)
	}
	if err := s.describe(); err != nil {
		return err
	}
	if err := s.relayPacket(p); err != nil {
		return err
	}
	if s.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		r.phase = phColumnsEOF
		return nil
	}
	r.phase = phRows
	return s.begin()
}

// columnsEnd reads the EOF after the column definitions: rows follow, or a
// cursor was opened and the execution's response ends here.
func (s *relay) columnsEnd(p wire.Packet) error {
	r := &s.res
	e, err := wire.ParseEOF(p.Payload)
	if err != nil {
		return badUpstream("EOF packet")
	}
	s.status.Store(uint32(e.Status))
	if err := s.begin(); err != nil {
		return err
	}
	if r.head.kind == pkExecute && e.Status&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
		return s.cursorOpened(p)
	}
	r.phase = phRows
	return s.relayPacket(p)
}

// cursorOpened ends an execution that opened a cursor: its rows come with
// COM_STMT_FETCH, described by the columns kept here.
func (s *relay) cursorOpened(p wire.Packet) error {
	r := &s.res
	st := r.head.stmt
	st.cursorCols, st.cursorTypes = r.cols, r.types
	if err := s.end(protocols.Result{Tag: "CURSOR"}); err != nil {
		return err
	}
	return s.finish(p)
}

// rowPacket takes a row, or the end of the rows.
func (s *relay) rowPacket(p wire.Packet) error {
	r := &s.res
	end, status, err := wire.ResultEnd(p.Payload, s.caps)
	if !end {
		return s.row(p)
	}
	var me *mysql.MyError
	switch {
	case errors.As(err, &me):
		return s.errorPacket(p)
	case err != nil:
		return badUpstream("end of rows")
	}
	s.status.Store(uint32(status))
	if r.head.kind == pkExecute && status&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 && s.results.Rows() == 0 {
		return s.cursorOpened(p)
	}
	if err := s.end(protocols.Result{Tag: "SELECT", Rows: s.results.Rows()}); err != nil {
		return err
	}
	if r.head.kind != pkFetch && wire.MoreResults(status) {
		r.phase = phFirst
		return s.relayPacket(p)
	}
	return s.finish(p)
}

// errorPacket relays an upstream error, its message masked; it ends the
// response.
func (s *relay) errorPacket(p wire.Packet) error {
	e, err := wire.ParseERR(p.Payload)
	if err != nil {
		return badUpstream("ERR packet")
	}
	in := []byte(e.Message)
	msg := s.flow.Text(in)
	if err := s.end(protocols.Result{Error: string(msg), Code: e.State}); err != nil {
		return err
	}
	if !sameSlice(msg, in) {
		e.Message = string(msg)
		payload := wire.AppendERR(nil, e)
		p = wire.Packet{Seq: p.Seq, Frames: 1, Payload: payload}
		p.Raw, _ = wire.AppendPacket(nil, p.Seq, payload)
	}
	if s.res.head.kind == pkPrepare {
		s.stmts.failed()
	}
	return s.finish(p)
}

// begin starts the result set of the columns described: the flow's
// Results plans masking and records them.
func (s *relay) begin() error {
	return resultErr(s.results.Begin(s.res.cols, s.res.head.start))
}

// end records the outcome of the result read.
func (s *relay) end(res protocols.Result) error {
	if s.res.discard {
		return nil
	}
	return resultErr(s.results.End(res, s.res.head.start))
}

// resultErr maps an error of the flow's Results: a recording that failed
// ends the session with an error; anything else is the client's socket.
func resultErr(err error) error {
	if err != nil && errors.Is(err, session.ErrRecordingFailed) {
		return recordingFailed()
	}
	return err
}

// row takes one row through the flow's Results: masked, recorded, then
// forwarded (ForwardRow). A row nothing masks or records passes as it
// came, undecoded.
func (s *relay) row(p wire.Packet) error {
	r := &s.res
	if !s.results.NeedsValues() {
		s.results.Pass()
		return s.relayPacket(p)
	}
	var err error
	if r.binary {
		r.values, err = wire.DecodeBinaryRow(p.Payload, r.types, r.values)
	} else {
		r.values, err = wire.DecodeTextRow(p.Payload, len(r.cols), r.values)
	}
	if err != nil {
		return badUpstream("row")
	}
	r.row = p
	return resultErr(s.results.Row(r.values))
}

// ForwardRow implements session.RowSink: the row as it came, or encoded
// again with its masked values, valid for its columns' types (a value
// masked to NULL sets the binary row's NULL bitmap).
func (s *relay) ForwardRow(values [][]byte, changed bool) error {
	r := &s.res
	if !changed {
		return s.relayPacket(r.row)
	}
	var payload []byte
	if r.binary {
		var err error
		if payload, err = wire.AppendBinaryRow(r.buf[:0], r.types, values); err != nil {
			return badUpstream("masked row")
		}
	} else {
		payload = wire.AppendTextRow(r.buf[:0], values)
	}
	r.buf = payload
	seq := r.row.Seq + r.shift
	out, next := wire.AppendPacket(nil, seq, payload)
	r.shift += next - seq - uint8(r.row.Frames)
	return s.writeClient(out, false)
}

// relayPacket forwards an upstream packet as it came, its sequence ids
// moved by the response's shift.
func (s *relay) relayPacket(p wire.Packet) error {
	r := &s.res
	if r.discard {
		return nil
	}
	if r.shift != 0 {
		for off := 0; off+4 <= len(p.Raw); {
			p.Raw[off+3] += r.shift
			off += 4 + (int(p.Raw[off]) | int(p.Raw[off+1])<<8 | int(p.Raw[off+2])<<16)
		}
	}
	return s.writeClient(p.Raw, false)
}

// finish relays the response's last packet and ends it.
func (s *relay) finish(p wire.Packet) error {
	if err := s.relayPacket(p); err != nil {
		return err
	}
	return s.done()
}

// done ends the response at the head of the queue, counting its duration,
// and writes Airlock's own answers that waited behind it.
func (s *relay) done() error {
	r := &s.res
	if r.head.kind != pkSimple {
		s.results.Done(r.head.start)
	}
	s.results.Reset()
	r.active = false
	return s.pending.finish(func(b []byte) error { return s.writeClient(b, false) })
}

func badUpstream(what string) error {
	return myError(codeLost, "Airlock read an invalid %s from the upstream and ended the session", what)
}

// sameSlice reports whether a masker handed back its input unchanged.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
