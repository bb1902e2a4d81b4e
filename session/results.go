package session

import (
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// RowSink is where an engine's results go once masked and recorded: the
// client. ForwardRow gets the row's values, masked in place where changed
// says so; with changed false the engine may forward the row's original
// bytes.
type RowSink interface {
	ForwardRow(values [][]byte, changed bool) error
}

// Results is a session's result path: for each result set it plans
// masking once, then takes every row through mask, record and forward, in
// that order, so that no row reaches the client or the recording unmasked
// and none reaches the client unrecorded. It also records each command's
// outcome and duration. It belongs to the engine's side that reads the
// upstream; one result set is open at a time.
type Results struct {
	s    *Session
	sink RowSink

	active bool
	rows   int64
	start  time.Time
	mask   protocols.RowMasker

	// The columns planned last, and their plan: a prepared statement or a
	// repeated query describes the same columns every time, and an engine
	// that hands the same slice again skips planning.
	planCols []protocols.Column
	planMask protocols.RowMasker
	// planFrom is the masker planMask was planned with: a reload that
	// replaces the masker plans again.
	planFrom *maskerRef
}

// Results returns the session's result path, forwarding to sink.
func (s *Session) Results(sink RowSink) *Results {
	s.results.sink = sink
	return &s.results
}

// Begin starts a result set of cols whose command started at start: it
// plans masking and records the columns.
func (r *Results) Begin(cols []protocols.Column, start time.Time) error {
	return r.BeginAt(cols, start, time.Time{})
}

// BeginAt is Begin for an engine that has read the clock already: now
// (from time.Now) is when the columns arrived; zero is now.
func (r *Results) BeginAt(cols []protocols.Column, start, now time.Time) error {
	r.active, r.rows, r.start = true, 0, start
	ref := r.s.maskRef.Load()
	if !sameColumns(cols, r.planCols) || ref != r.planFrom {
		r.planMask = nil
		if ref != nil {
			r.planMask = ref.m.Plan(cols)
		}
		r.planCols, r.planFrom = cols, ref
	}
	r.mask = r.planMask
	var err error
	if r.s.clocked != nil && !now.IsZero() {
		err = r.s.clocked.ColumnsAt(cols, now)
	} else {
		err = r.s.recorder.Columns(cols)
	}
	if err != nil {
		return r.s.recordFailed("columns", err)
	}
	if cs, ok := r.sink.(ColumnSink); ok {
		return cs.ForwardColumns(cols)
	}
	return nil
}

// sameColumns reports whether a and b are the same slice.
func sameColumns(a, b []protocols.Column) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// Reset forgets an open result set without recording an outcome: the
// protocol says the command ended without one (an error recorded its own).
func (r *Results) Reset() { r.active, r.mask = false, nil }

// Active reports whether a result set is open.
func (r *Results) Active() bool { return r.active }

// Rows is the count of rows of the open (or last) result set.
func (r *Results) Rows() int64 { return r.rows }

// NeedsValues reports whether rows must be decoded for Row: they are
// masked or recorded. When it is false the engine may forward a row's
// bytes as they are and call Pass instead.
func (r *Results) NeedsValues() bool { return r.mask != nil || r.s.Records() }

// Pass counts a row that needed no values (NeedsValues false).
func (r *Results) Pass() { r.rows++ }

// Row takes one row of the open result set through mask, record and
// forward. values are the row's fields (nil is NULL); masking replaces
// entries in place, valid until the next call.
func (r *Results) Row(values [][]byte) error {
	r.rows++
	changed := r.mask != nil && r.mask.MaskRow(values)
	if err := r.s.recorder.Row(values); err != nil {
		return r.s.recordFailed("row", err)
	}
	return r.sink.ForwardRow(values, changed)
}

// Text masks one value that is not in a result set (a Redis bulk string,
// a notice) with the session's detectors; it returns b itself when nothing
// changed.
func (r *Results) Text(b []byte) []byte { return r.s.Text(b) }

// End records the outcome of the command whose result set (if any) is
// open, with its duration since start (zero: unknown), and closes the
// result set.
func (r *Results) End(res protocols.Result, start time.Time) error {
	if !start.IsZero() {
		res.Duration = time.Since(start)
	}
	return r.end(res, time.Time{})
}

// EndAt is End for an engine that has read the clock already: now is when
// the command's end arrived.
func (r *Results) EndAt(res protocols.Result, start, now time.Time) error {
	if !start.IsZero() {
		res.Duration = now.Sub(start)
	}
	return r.end(res, now)
}

func (r *Results) end(res protocols.Result, now time.Time) error {
	r.active, r.mask = false, nil
	var err error
	if r.s.clocked != nil && !now.IsZero() {
		err = r.s.clocked.ResultAt(res, now)
	} else {
		err = r.s.recorder.Result(res)
	}
	if err != nil {
		return r.s.recordFailed("result", err)
	}
	if rs, ok := r.sink.(ResultSink); ok {
		return rs.ForwardResult(res)
	}
	return nil
}

// Reply records one reply of a protocol whose results are not row sets,
// already masked.
func (r *Results) Reply(rep protocols.Reply) error {
	if err := r.s.recorder.Reply(rep); err != nil {
		return r.s.recordFailed("reply", err)
	}
	return nil
}

// Exchange records one HTTP exchange, credentials removed and bodies
// masked.
func (r *Results) Exchange(x protocols.Exchange) error {
	if err := r.s.recorder.Exchange(x); err != nil {
		return r.s.recordFailed("exchange", err)
	}
	return nil
}

// Done counts a command complete after d in the command duration metric:
// the time from its arrival to the end of its result, as Airlock saw it.
func (r *Results) Done(start time.Time) { r.s.g.opt.Metrics.observeCommand(r.s, time.Since(start)) }

// DoneAt is Done for an engine that has read the clock already: now is
// when the command's result ended.
func (r *Results) DoneAt(start, now time.Time) { r.s.g.opt.Metrics.observeCommand(r.s, now.Sub(start)) }

// ColumnSink is a RowSink that is told each result set's columns, after
// they are recorded: a frontend that builds its own answer (the agent API's
// JSON) needs them; an engine that relays the upstream's own description
// does not.
type ColumnSink interface {
	RowSink
	ForwardColumns(cols []protocols.Column) error
}

// ResultSink is a RowSink that is told each command's outcome (its tag,
// the rows a write affected, its error), after it is recorded: a frontend
// that builds its own answer reports it; an engine relays the upstream's.
type ResultSink interface {
	RowSink
	ForwardResult(res protocols.Result) error
}
