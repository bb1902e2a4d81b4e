package mysql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	myrisk "github.com/airlock-gw/airlock/sqlrisk/mysql"
)

var _ protocols.Previewer = (*Engine)(nil)

// defaultPreviewTimeout bounds a preview whose context has no deadline.
const defaultPreviewTimeout = 3 * time.Second

// Preview implements protocols.Previewer: a blast-radius preview of a
// command held for review, made on a session of its own with the
// credentials Airlock holds, inside START TRANSACTION READ ONLY that is
// rolled back, with the server's statement and lock-wait limits set to
// what is left of ctx.
//
// The write itself is never sent, not even to EXPLAIN: MariaDB refuses to
// EXPLAIN an UPDATE or DELETE in a read-only transaction, and its plan of
// a single-table write is a scan count without the conditions'
// selectivity. What is planned with EXPLAIN FORMAT=JSON is the read the
// parse tree gives (package sqlrisk/mysql): a SELECT over the write's FROM,
// joins and WHERE, or the SELECT of an INSERT … SELECT; its estimate of
// the rows that read yields is the estimate of the rows the write
// touches. With o.ExactCount the rows are counted with the derived
// SELECT COUNT(*), a multi-table write's target by target on the target's
// key. DROP, TRUNCATE, ALTER and RENAME get the table's size, the
// catalog's row estimate and what depends on it.
//
// A session of its own, closed after each preview: a preview may wait for
// a lock until its limits end it, which must stall no client's session,
// and nothing a planned function might leave in a session outlives the
// preview. The session has the connection's database and the server's
// defaults, not what the client's session may have changed.
func (e *Engine) Preview(ctx context.Context, conn *protocols.Connection, cmd *protocols.Command, cls *protocols.Classification, o protocols.PreviewOptions) *protocols.Preview {
	start := time.Now()
	if cmd == nil || cmd.Text == "" {
		return nil
	}
	targets, err := myrisk.PreviewTargets(cmd.Text)
	if err != nil || len(targets) == 0 {
		return nil // a read, or nothing the parser can say
	}
	done := func(p *protocols.Preview) *protocols.Preview {
		p.Elapsed = time.Since(start)
		return p
	}
	if skip := protocols.NotPlanned(cls); skip != nil {
		return done(skip)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPreviewTimeout)
		defer cancel()
	}
	var pc *previewConn
	if needsServer(targets) {
		if pc, err = e.dialPreview(ctx, conn); err != nil {
			return done(e.previewDialFailure(ctx, conn, err))
		}
		defer pc.close()
		if err := pc.begin(ctx); err != nil {
			if timedOut(ctx, err) {
				return done(&protocols.Preview{Status: protocols.PreviewTimeout, Note: "could not start a read-only transaction: timed out"})
			}
			return done(&protocols.Preview{Status: protocols.PreviewFailed, Note: "could not start a read-only transaction: " + previewErrText(err)})
		}
	}
	p := &protocols.Preview{}
	ok, failed := 0, 0
	var last error
	for i := range targets {
		t := &targets[i]
		effects, err := previewTarget(ctx, pc, t, o)
		p.Effects = append(p.Effects, effects...)
		switch {
		case err != nil:
			failed++
			last = err
		case t.Note != "":
			failed++
		default:
			ok++
		}
		if err != nil && timedOut(ctx, err) {
			break
		}
	}
	settle(ctx, p, ok, failed, last, start)
	return done(p)
}

// settle gives a preview its status from how many statements could be
// estimated, and the last error.
func settle(ctx context.Context, p *protocols.Preview, ok, failed int, last error, start time.Time) {
	switch {
	case last != nil && timedOut(ctx, last):
		p.Status = protocols.PreviewTimeout
		p.Note = fmt.Sprintf("timed out after %s (the server may be waiting for a lock another session holds)",
			time.Since(start).Round(10*time.Millisecond))
	case failed == 0:
		p.Status = protocols.PreviewOK
	case ok > 0:
		p.Status = protocols.PreviewPartial
	default:
		p.Status = protocols.PreviewFailed
		switch {
		case last != nil:
			p.Note = previewErrText(last)
		case len(p.Effects) == 1:
			p.Note = p.Effects[0].Note
		}
	}
}

// needsServer reports whether any target asks the server something (an
// INSERT … VALUES is counted from its text).
func needsServer(targets []myrisk.PreviewTarget) bool {
	for _, t := range targets {
		if t.Explain != "" || t.ObjectType != "" && len(t.Tables) > 0 {
			return true
		}
	}
	return false
}

// previewDialFailure says why the preview's session could not be opened;
// the details (address, user) go to the log, not to reviewers.
func (e *Engine) previewDialFailure(ctx context.Context, conn *protocols.Connection, err error) *protocols.Preview {
	if timedOut(ctx, err) {
		return &protocols.Preview{Status: protocols.PreviewTimeout, Note: "could not connect: timed out"}
	}
	if e.log != nil {
		e.log.Warn("preview: connect to the upstream", "connection", conn.Name, "error", err)
	}
	return &protocols.Preview{Status: protocols.PreviewFailed, Note: "could not connect: the upstream did not accept the connection"}
}

// previewTarget estimates one statement.
func previewTarget(ctx context.Context, pc *previewConn, t *myrisk.PreviewTarget, o protocols.PreviewOptions) ([]protocols.PreviewEffect, error) {
	switch {
	case t.ObjectType != "":
		return describeObjects(ctx, pc, t)
	case t.Explain == "" && t.Rows >= 0:
		e := protocols.PreviewEffect{Statement: t.Statement, Kind: t.Kind, ObjectType: "table", ExactRows: &t.Rows,
			Note: joinNote(t.CountNote, t.Caution)}
		if len(t.Tables) > 0 {
			e.Object = pc.objectName(t.Tables[0].Schema, t.Tables[0].Name)
		}
		return []protocols.PreviewEffect{e}, nil
	case t.Explain == "":
		e := protocols.PreviewEffect{Statement: t.Statement, Kind: t.Kind, Note: joinNote(t.Note, t.Caution)}
		if len(t.Tables) == 1 {
			e.Object, e.ObjectType = pc.objectName(t.Tables[0].Schema, t.Tables[0].Name), "table"
		}
		return []protocols.PreviewEffect{e}, nil
	}
	return previewWrite(ctx, pc, t, o)
}

// previewWrite plans a write's derived read and, if asked, counts the
// rows: one effect per table the write changes.
func previewWrite(ctx context.Context, pc *previewConn, t *myrisk.PreviewTarget, o protocols.PreviewOptions) ([]protocols.PreviewEffect, error) {
	targets, unresolved := t.Tables, ""
	if len(t.Unresolved) > 0 {
		resolved, note, err := pc.resolveColumns(ctx, t)
		if err != nil {
			return []protocols.PreviewEffect{{Statement: t.Statement, Kind: t.Kind, Note: "not planned: " + previewErrText(err)}}, err
		}
		for _, r := range resolved {
			if !containsTable(targets, r) {
				targets = append(targets, r)
			}
		}
		unresolved = note
	}
	effects := make([]protocols.PreviewEffect, max(len(targets), 1))
	for i := range effects {
		effects[i] = protocols.PreviewEffect{Statement: t.Statement, Kind: t.Kind, ObjectType: "table"}
		if i < len(targets) {
			effects[i].Object = pc.objectName(targets[i].Schema, targets[i].Name)
		}
	}
	effects[0].Note = unresolved
	rows, err := pc.query(ctx, "EXPLAIN FORMAT=JSON "+t.Explain)
	if err == nil && (len(rows) == 0 || len(rows[0]) == 0) {
		err = errors.New("no plan")
	}
	if err != nil {
		effects[0].Note = "not planned: " + previewErrText(err)
		return effects[:1], err
	}
	estimate, err := planRows(rows[0][0])
	if err != nil {
		effects[0].Note = "plan not understood: " + err.Error()
		return effects[:1], err
	}
	if t.Limit >= 0 {
		estimate = min(estimate, float64(t.Limit))
	}
	n := int64(math.Round(estimate))
	for i := range effects {
		effects[i].EstimatedRows = &n
	}
	note := t.Caution
	if t.MultiTable() {
		note = joinNote("the estimate is of the rows the join yields: a row joined to several rows counts once for each", note)
	}
	for i := range effects {
		effects[i].Note = joinNote(effects[i].Note, note)
	}
	if o.ExactCount {
		if err := exactCounts(ctx, pc, t, targets, effects); err != nil && timedOut(ctx, err) {
			return effects, err
		}
	}
	return effects, nil
}

// exactCounts counts the rows each target loses or changes: with the
// derived count of a single-table write, or target by target on its key.
func exactCounts(ctx context.Context, pc *previewConn, t *myrisk.PreviewTarget, targets []myrisk.Table, effects []protocols.PreviewEffect) error {
	if !t.MultiTable() {
		if t.Count == "" {
			effects[0].Note = joinNote(effects[0].Note, t.CountNote)
			return nil
		}
		n, err := pc.count(ctx, t.Count)
		if err != nil {
			effects[0].Note = joinNote(effects[0].Note, "exact count failed: "+previewErrText(err))
			return err
		}
		effects[0].ExactRows = &n
		effects[0].Note = joinNote(effects[0].Note, t.CountNote)
		return nil
	}
	if t.CountNote != "" {
		effects[0].Note = joinNote(effects[0].Note, t.CountNote)
	}
	for i, target := range targets {
		key, err := pc.key(ctx, target)
		if err == nil {
			var q string
			if q, err = t.CountTarget(target, key); err == nil {
				var n int64
				if n, err = pc.count(ctx, q); err == nil {
					effects[i].ExactRows = &n
					continue
				}
			}
		}
		effects[i].Note = joinNote(effects[i].Note, "exact count failed: "+previewErrText(err))
		if timedOut(ctx, err) {
			return err
		}
	}
	return nil
}

// count runs a derived SELECT COUNT(*).
func (pc *previewConn) count(ctx context.Context, q string) (int64, error) {
	rows, err := pc.query(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, errors.New("the count answered no number")
	}
	return strconv.ParseInt(string(rows[0][0]), 10, 64)
}

// objectName is schema.name as people read it, schema defaulting to the
// session's database.
func (pc *previewConn) objectName(schema, name string) string {
	if schema == "" && pc != nil {
		schema = pc.database
	}
	if schema == "" {
		return identName(name)
	}
	return identName(schema) + "." + identName(name)
}

// schemaOf is the database a table written with schema is in.
func (pc *previewConn) schemaOf(schema string) string {
	if schema != "" {
		return schema
	}
	return pc.database
}

func containsTable(l []myrisk.Table, t myrisk.Table) bool {
	for _, have := range l {
		if have == t {
			return true
		}
	}
	return false
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
