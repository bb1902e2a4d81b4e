package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols"
	pgrisk "github.com/airlock-gw/airlock/sqlrisk/postgres"
)

var _ protocols.Previewer = (*Engine)(nil)

// Preview implements protocols.Previewer: a blast-radius preview of a
// command held for review, made on a connection of its own with the
// credentials Airlock holds, inside a READ ONLY transaction that is
// rolled back, with statement_timeout and lock_timeout set to what is
// left of ctx. Writes are planned with EXPLAIN (never ANALYZE): the
// estimate of the rows each ModifyTable node would touch; with
// o.ExactCount, the rows are also counted with the read-only query
// derived from the statement's parse tree. DROP, TRUNCATE and ALTER get
// the relation's size, the catalog's row estimate and what depends on it.
//
// A connection of its own, closed after each preview, rather than the
// catalog's: a preview may wait for a lock until its timeout, which would
// stall the masking lookups that share the catalog's connection, and
// nothing a planned function might leave behind in a session (an
// advisory lock) outlives the preview. Previews are made once per
// reviewed command, so the dial is cheap at that rate.
//
// The side connection sees the server's default search_path and
// settings, not those the client's session may have changed.
func (e *Engine) Preview(ctx context.Context, conn *protocols.Connection, cmd *protocols.Command, cls *protocols.Classification, o protocols.PreviewOptions) *protocols.Preview {
	start := time.Now()
	if cmd == nil || cmd.Text == "" {
		return nil
	}
	targets, err := pgrisk.PreviewTargets(cmd.Text)
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
	pc, err := e.previewConn(ctx, conn)
	if err != nil {
		return done(previewFailure(ctx, "could not connect", err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = pc.Close(cctx)
	}()
	if err := beginPreview(ctx, pc); err != nil {
		return done(previewFailure(ctx, "could not start a read-only transaction", err))
	}
	p := &protocols.Preview{}
	ok, failed := 0, 0
	var last error
	for _, t := range targets {
		effects, err := previewTarget(ctx, pc, t, o)
		p.Effects = append(p.Effects, effects...)
		switch {
		case err != nil:
			failed++
			last = err
		case t.Note != "" && t.Explain == "" && len(t.Objects) == 0:
			failed++
		default:
			ok++
		}
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case last != nil && timedOut(ctx, last):
		p.Status, p.Note = protocols.PreviewTimeout, timeoutNote(start)
	case failed == 0:
		p.Status = protocols.PreviewOK
	case ok > 0:
		p.Status = protocols.PreviewPartial
	default:
		p.Status = protocols.PreviewFailed
		switch {
		case last != nil:
			p.Note = errText(last)
		case len(p.Effects) == 1:
			p.Note = p.Effects[0].Note
		}
	}
	return done(p)
}

// previewConn dials a connection for one preview.
func (e *Engine) previewConn(ctx context.Context, c *protocols.Connection) (*pgconn.PgConn, error) {
	cfg, err := e.upstreamConfig(c, map[string]string{"application_name": "airlock preview"})
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		cfg.ConnectTimeout = max(time.Until(dl), time.Millisecond)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return conn.PgConn(), nil
}

// beginPreview opens the READ ONLY transaction every preview query runs
// in. Its timeouts end a little before ctx does, so that the server gives
// up a lock wait and answers, rather than keep waiting after the
// connection is gone.
func beginPreview(ctx context.Context, pc *pgconn.PgConn) error {
	ms := int64(0)
	if dl, ok := ctx.Deadline(); ok {
		ms = max(time.Until(dl).Milliseconds()*4/5, 1)
	}
	q := "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = " + strconv.FormatInt(ms, 10) +
		"; SET LOCAL lock_timeout = " + strconv.FormatInt(ms, 10) + "; SET LOCAL idle_in_transaction_session_timeout = 0"
	_, err := pc.Exec(ctx, q).ReadAll()
	return err
}

// query runs one read in a savepoint, so that its failure leaves the
// transaction usable for the next; it returns the first row's values.
func query(ctx context.Context, pc *pgconn.PgConn, sql string, args ...string) ([][]byte, error) {
	if _, err := pc.Exec(ctx, "SAVEPOINT airlock_preview").ReadAll(); err != nil {
		return nil, err
	}
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	// The extended protocol: one statement, never a list of them.
	res := pc.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		if _, err := pc.Exec(ctx, "ROLLBACK TO SAVEPOINT airlock_preview").ReadAll(); err != nil {
			return nil, errors.Join(res.Err, err)
		}
		return nil, res.Err
	}
	if len(res.Rows) == 0 {
		return nil, nil
	}
	return res.Rows[0], nil
}

// previewTarget estimates one statement.
func previewTarget(ctx context.Context, pc *pgconn.PgConn, t pgrisk.PreviewTarget, o protocols.PreviewOptions) ([]protocols.PreviewEffect, error) {
	if len(t.Objects) > 0 {
		return previewObjects(ctx, pc, t)
	}
	if t.Explain == "" {
		return []protocols.PreviewEffect{{Statement: t.Statement, Kind: t.Kind, ObjectType: t.ObjectType, Note: t.Note}}, nil
	}
	row, err := query(ctx, pc, "EXPLAIN (VERBOSE, FORMAT JSON) "+t.Explain)
	if err != nil {
		return []protocols.PreviewEffect{{Statement: t.Statement, Kind: t.Kind, Note: "not planned: " + errText(err)}}, err
	}
	effects, err := planEffects(t.Statement, row)
	if err != nil {
		return []protocols.PreviewEffect{{Statement: t.Statement, Kind: t.Kind, Note: "plan not understood: " + err.Error()}}, err
	}
	if len(effects) == 0 {
		effects = []protocols.PreviewEffect{{Statement: t.Statement, Kind: t.Kind, Note: "the plan modifies no table"}}
	}
	main := &effects[0]
	for i := range effects {
		if effects[i].Kind == t.Kind {
			main = &effects[i]
			break
		}
	}
	switch {
	case t.Rows >= 0:
		n := t.Rows
		main.ExactRows = &n
	case !o.ExactCount:
	case t.Count == "":
		main.Note = joinNote(main.Note, t.CountNote)
	default:
		row, err := query(ctx, pc, t.Count)
		if err != nil {
			main.Note = joinNote(main.Note, "exact count failed: "+errText(err))
			if timedOut(ctx, err) {
				return effects, err
			}
			break
		}
		if n, err := strconv.ParseInt(string(row[0]), 10, 64); err == nil {
			main.ExactRows = &n
		}
		main.Note = joinNote(main.Note, t.CountNote)
	}
	return effects, nil
}

// planNode is the part of EXPLAIN (FORMAT JSON)'s plan a preview reads.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	Operation string     `json:"Operation"`
	Relation  string     `json:"Relation Name"`
	Schema    string     `json:"Schema"`
	Rows      float64    `json:"Plan Rows"`
	Plans     []planNode `json:"Plans"`
}

// planEffects finds the ModifyTable nodes of a plan: each one's input
// (its first child) is the planner's estimate of the rows it touches.
func planEffects(stmt int, row [][]byte) ([]protocols.PreviewEffect, error) {
	if len(row) == 0 {
		return nil, errors.New("no plan")
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(row[0], &plans); err != nil {
		return nil, err
	}
	var out []protocols.PreviewEffect
	var walk func(n *planNode, depth int)
	walk = func(n *planNode, depth int) {
		if depth > 64 {
			return
		}
		if n.NodeType == "ModifyTable" {
			e := protocols.PreviewEffect{Statement: stmt, Kind: strings.ToLower(n.Operation), ObjectType: "table",
				Object: identName(n.Schema) + "." + identName(n.Relation)}
			if len(n.Plans) > 0 {
				rows := int64(n.Plans[0].Rows)
				e.EstimatedRows = &rows
			}
			out = append(out, e)
		}
		for i := range n.Plans {
			walk(&n.Plans[i], depth+1)
		}
	}
	for i := range plans {
		walk(&plans[i].Plan, 0)
	}
	return out, nil
}

// objectQuery describes one relation: its qualified name, kind, size with
// indexes and TOAST, the catalog's row estimate (-1 when never analysed)
// and, at most 50, the objects that depend on it normally (views, other
// tables' foreign keys, functions), views named for their rewrite rules.
const objectQuery = `SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text, pg_total_relation_size(c.oid),
	c.reltuples::bigint,
	coalesce((SELECT string_agg(d, E'\n' ORDER BY d) FROM (
		SELECT DISTINCT CASE WHEN dep.classid = 'pg_catalog.pg_rewrite'::regclass
			THEN (SELECT 'view ' || r.ev_class::regclass::text FROM pg_catalog.pg_rewrite r WHERE r.oid = dep.objid)
			ELSE pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid) END AS d
		FROM pg_catalog.pg_depend dep
		WHERE dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.refobjid = c.oid AND dep.deptype = 'n'
			AND NOT (dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objid = c.oid)
		LIMIT 50) deps WHERE d IS NOT NULL AND d <> 'view ' || c.oid::regclass::text), '')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1)`

var relkinds = map[string]string{"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
	"i": "index", "I": "partitioned index", "S": "sequence", "f": "foreign table", "t": "TOAST table", "c": "composite type"}

// previewObjects describes the relations a DDL statement names.
func previewObjects(ctx context.Context, pc *pgconn.PgConn, t pgrisk.PreviewTarget) ([]protocols.PreviewEffect, error) {
	var out []protocols.PreviewEffect
	var last error
	for _, name := range t.Objects {
		e := protocols.PreviewEffect{Statement: t.Statement, Kind: t.Kind, Object: name, ObjectType: t.ObjectType}
		row, err := query(ctx, pc, objectQuery, name)
		switch {
		case err != nil:
			e.Note, last = "not described: "+errText(err), err
		case row == nil:
			e.Note = "no such relation (on the server's default search_path)"
		default:
			e.Object = string(row[0])
			if k, ok := relkinds[string(row[1])]; ok {
				e.ObjectType = k
			}
			if n, err := strconv.ParseInt(string(row[2]), 10, 64); err == nil {
				e.Bytes = &n
			}
			if n, err := strconv.ParseInt(string(row[3]), 10, 64); err == nil && n >= 0 {
				e.EstimatedRows = &n
			} else if err == nil {
				e.Note = "row count unknown: never analysed"
			}
			if deps := string(row[4]); deps != "" {
				e.Dependents = strings.Split(deps, "\n")
			}
		}
		out = append(out, e)
		if last != nil && timedOut(ctx, last) {
			return out, last
		}
	}
	return out, last
}

// timedOut reports whether err is the preview running out of time: the
// context's deadline, or the server's statement or lock timeout.
func timedOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "57014" || pe.Code == "55P03")
}

func timeoutNote(start time.Time) string {
	return fmt.Sprintf("timed out after %s (the server may be waiting for a lock another session holds)",
		time.Since(start).Round(10*time.Millisecond))
}

func previewFailure(ctx context.Context, what string, err error) *protocols.Preview {
	if timedOut(ctx, err) {
		return &protocols.Preview{Status: protocols.PreviewTimeout, Note: what + ": timed out"}
	}
	return &protocols.Preview{Status: protocols.PreviewFailed, Note: what + ": " + errText(err)}
}

// errText is an error as a preview says it: a server error's message and
// SQLSTATE, never the connection details a dial error carries.
func errText(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return "the upstream did not accept the connection"
	}
	return err.Error()
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

// identName quotes an identifier only where PostgreSQL would need it, as
// format('%I') does for names that are not keywords.
func identName(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return quoteIdent(s)
}
