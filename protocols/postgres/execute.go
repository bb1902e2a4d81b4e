package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

var _ engine.Executor = (*Engine)(nil)

// Dial implements engine.Executor: an upstream session of flow's
// connection, with the credentials Airlock holds, for a frontend that
// runs commands through the session flow (the agent API, MCP). Commands
// run with pgconn's simple protocol, so values arrive as text, as masking
// reads them.
func (e *Engine) Dial(ctx context.Context, flow *session.Session) (session.Runner, error) {
	cfg, err := e.upstreamConfig(flow.Conn, map[string]string{"application_name": "airlock agent"})
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, e.set.ConnectTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(dctx, &cfg.Config)
	if err != nil {
		flow.UpstreamError()
		return nil, fault(flow.Conn.Name, err)
	}
	return &runner{engine: e, flow: flow, conn: pc}, nil
}

// runner runs a frontend's commands on one upstream session.
type runner struct {
	engine *Engine
	flow   *session.Session
	conn   *pgconn.PgConn
}

// Run implements session.Runner. A command with parameters runs with the
// extended protocol: one statement, its values sent in a Bind of their
// own, never written into the text.
func (r *runner) Run(ctx context.Context, cmd *protocols.Command, res *session.Results) error {
	params, err := engine.CommandParams(cmd)
	if err != nil {
		return err
	}
	if params != nil {
		return r.runParams(ctx, cmd.Text, params, res)
	}
	mrr := r.conn.Exec(ctx, cmd.Text)
	for mrr.NextResult() {
		if err := r.result(mrr.ResultReader(), res); err != nil {
			_ = mrr.Close()
			return err
		}
	}
	if err := mrr.Close(); err != nil {
		return r.failed(err, res)
	}
	return nil
}

// runParams runs one statement with its parameters in text format; the
// server infers their types from the statement, as for an untyped literal.
func (r *runner) runParams(ctx context.Context, sql string, params []engine.Param, res *session.Results) error {
	values := make([][]byte, len(params))
	for i, p := range params {
		if p.Kind != engine.ParamNull {
			values[i] = []byte(p.Text)
		}
	}
	return r.result(r.conn.ExecParams(ctx, sql, values, nil, nil, nil), res)
}

// result takes one statement's result through res.
func (r *runner) result(rr *pgconn.ResultReader, res *session.Results) error {
	start := time.Now()
	if fds := rr.FieldDescriptions(); len(fds) > 0 {
		fields := make([]field, len(fds))
		for i, f := range fds {
			fields[i] = field{name: f.Name, tableOID: f.TableOID, typeOID: f.DataTypeOID, format: f.Format}
		}
		if err := res.Begin(r.engine.describe(nil, r.flow, fields), start); err != nil {
			return err
		}
		for rr.NextRow() {
			if err := res.Row(rr.Values()); err != nil {
				return err
			}
		}
	}
	tag, err := rr.Close()
	if err != nil {
		return r.failed(err, res)
	}
	rows := res.Rows()
	if !res.Active() || rows == 0 {
		rows = tag.RowsAffected()
	}
	return res.End(protocols.Result{Tag: tag.String(), Rows: rows}, start)
}

// failed records an upstream error as the command's outcome and returns
// it masked, as the client of the wire would have seen it.
func (r *runner) failed(err error, res *session.Results) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		r.flow.UpstreamError()
		return fmt.Errorf("upstream of connection %q: %w", r.flow.Conn.Name, err)
	}
	msg := string(r.flow.Text([]byte(pe.Message)))
	if rerr := res.End(protocols.Result{Error: msg, Code: pe.Code}, time.Time{}); rerr != nil {
		return rerr
	}
	return &UpstreamError{Code: pe.Code, Message: msg}
}

// UpstreamError is an error the upstream answered a frontend's command
// with, masked.
type UpstreamError struct {
	Code    string // SQLSTATE
	Message string
}

func (e *UpstreamError) Error() string { return e.Code + ": " + e.Message }

// UpstreamCode implements engine.UpstreamError: the SQLSTATE.
func (e *UpstreamError) UpstreamCode() string { return e.Code }

// UpstreamMessage implements engine.UpstreamError.
func (e *UpstreamError) UpstreamMessage() string { return e.Message }

var _ engine.UpstreamError = (*UpstreamError)(nil)

// Close implements session.Runner.
func (r *runner) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.conn.Close(ctx)
}
