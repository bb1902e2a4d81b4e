package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/session"
)

// Dial implements engine.Executor: an upstream session of flow's
// connection, with the credentials Airlock holds, for a frontend that runs
// commands through the session flow (the agent API, MCP). Commands run as
// COM_QUERY, so values arrive as text, as masking reads them.
func (e *Engine) Dial(ctx context.Context, flow *session.Session) (session.Runner, error) {
	dctx, cancel := context.WithTimeout(ctx, e.set.ConnectTimeout)
	defer cancel()
	// The flags of a plain client: CLIENT_NO_SCHEMA would make the server
	// read information_schema.TABLES as a table of the current database,
	// CLIENT_FOUND_ROWS count matched rows as affected, CLIENT_IGNORE_SPACE
	// parse function names differently.
	caps := wire.RelayCapabilities &^ (mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_QUERY_ATTRIBUTES | mysql.CLIENT_NO_SCHEMA |
		mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_ODBC | mysql.CLIENT_INTERACTIVE)
	attrs := map[string]string{"_client_name": "airlock", "program_name": "airlock agent", "airlock_identity": flow.Info.Identity.Name}
	up, err := wire.Dial(dctx, dialConfig(flow.Conn, caps, 0, attrs))
	if err != nil {
		flow.UpstreamError()
		return nil, fault(flow.Conn.Name, err)
	}
	return &runner{flow: flow, up: up, limit: int(e.set.MaxPacketSize)}, nil
}

// runner runs a frontend's commands on one upstream session, one at a
// time.
type runner struct {
	flow  *session.Session
	up    *wire.Upstream
	limit int
	seq   uint8 // after the last packet read
	// binary is set while a prepared statement's result is read: its rows
	// are in the binary protocol, described by defs.
	binary bool
	defs   []binaryDef
	types  []byte // of defs, made at the first row
}

// Run implements session.Runner. A command with parameters runs as a
// prepared statement (params.go).
func (r *runner) Run(ctx context.Context, cmd *protocols.Command, res *session.Results) error {
	stop := context.AfterFunc(ctx, func() { _ = r.up.Conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	params, err := engine.CommandParams(cmd)
	if err != nil {
		return err
	}
	if params != nil {
		err := r.runParams(cmd.Text, params, res)
		if ctx.Err() != nil && err != nil {
			return ctx.Err()
		}
		return err
	}
	if _, err := wire.WritePacket(r.up.Conn, 0, wire.AppendQuery(nil, r.up.Capabilities, []byte(cmd.Text))); err != nil {
		return r.lost(err)
	}
	for {
		more, err := r.result(res)
		if err != nil || !more {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// result reads one result of the command and reports whether another
// follows.
func (r *runner) result(res *session.Results) (bool, error) {
	start := time.Now()
	p, err := r.read()
	if err != nil {
		return false, err
	}
	switch wire.ClassifyResponse(p) {
	case wire.ResponseOK:
		ok, err := wire.ParseOK(p, r.up.Capabilities)
		if err != nil {
			return false, r.lost(err)
		}
		return wire.MoreResults(ok.Status), res.End(protocols.Result{Tag: "OK", Rows: int64(ok.AffectedRows)}, start)
	case wire.ResponseERR:
		return false, r.failed(p, res)
	case wire.ResponseLocalFile:
		// A frontend has no files to send: answer with none.
		if _, err := wire.WritePacket(r.up.Conn, r.seq, nil); err != nil {
			return false, r.lost(err)
		}
		return r.result(res)
	}
	n, err := wire.ParseColumnCount(p)
	if err != nil {
		return false, r.lost(err)
	}
	cols := make([]protocols.Column, n)
	for i := range cols {
		if p, err = r.read(); err != nil {
			return false, err
		}
		c, err := wire.ParseColumn(p)
		if err != nil {
			return false, r.lost(err)
		}
		cols[i] = column(c, false)
		if r.binary {
			r.defs = append(r.defs, binaryDef{typ: c.Type, unsigned: c.Flags&mysql.UNSIGNED_FLAG != 0, decimals: c.Decimals})
		}
	}
	if r.up.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
		if _, err := r.read(); err != nil {
			return false, err
		}
	}
	if err := res.Begin(cols, start); err != nil {
		return false, err
	}
	return r.rows(res, n, start)
}

// rows reads a result set's rows through res.
func (r *runner) rows(res *session.Results, n int, start time.Time) (bool, error) {
	var values [][]byte
	for {
		p, err := r.read()
		if err != nil {
			return false, err
		}
		end, status, err := wire.ResultEnd(p, r.up.Capabilities)
		if end {
			var me *mysql.MyError
			if errors.As(err, &me) {
				return false, r.failed(p, res)
			}
			if err != nil {
				return false, r.lost(err)
			}
			return wire.MoreResults(status), res.End(protocols.Result{Tag: "SELECT", Rows: res.Rows()}, start)
		}
		if values, err = r.decodeRow(p, n, values); err != nil {
			return false, r.lost(err)
		}
		if err := res.Row(values); err != nil {
			return false, err
		}
	}
}

func (r *runner) read() ([]byte, error) {
	p, err := wire.ReadPacket(r.up.Conn, r.limit)
	if err != nil {
		return nil, r.lost(err)
	}
	r.seq = p.NextSeq()
	return p.Payload, nil
}

// failed records an upstream error as the command's outcome and returns
// it masked, as the client of the wire would have seen it.
func (r *runner) failed(p []byte, res *session.Results) error {
	e, err := wire.ParseERR(p)
	if err != nil {
		return r.lost(err)
	}
	msg := string(r.flow.Text([]byte(e.Message)))
	if err := res.End(protocols.Result{Error: msg, Code: e.State}, time.Time{}); err != nil {
		return err
	}
	return &UpstreamError{Code: e.Code, State: e.State, Message: msg}
}

func (r *runner) lost(err error) error {
	r.flow.UpstreamError()
	return fmt.Errorf("upstream of connection %q: %w", r.flow.Conn.Name, err)
}

// UpstreamError is an error the upstream answered a frontend's command
// with, masked.
type UpstreamError struct {
	Code    uint16
	State   string // SQLSTATE
	Message string
}

func (e *UpstreamError) Error() string { return fmt.Sprintf("%d (%s): %s", e.Code, e.State, e.Message) }

// UpstreamCode implements engine.UpstreamError: the MySQL error number,
// which says more than its SQLSTATE (1146 rather than 42S02).
func (e *UpstreamError) UpstreamCode() string { return strconv.Itoa(int(e.Code)) }

// UpstreamMessage implements engine.UpstreamError.
func (e *UpstreamError) UpstreamMessage() string { return e.Message }

var _ engine.UpstreamError = (*UpstreamError)(nil)

// Close implements session.Runner.
func (r *runner) Close() error {
	quit(r.up.Conn)
	return nil
}
