package redis

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/session"
)

// maxExecReply bounds the reply to one command of an agent frontend, which
// is read whole: the frontend answers with one document.
const maxExecReply = 32 << 20

// Dial implements engine.Executor: an upstream session of flow's
// connection, in RESP3 (maps keep their keys' order and name their
// values), dialled and set up exactly as a wire session's upstream. Each
// command's reply is read whole and handed to the frontend as a result
// set: a hash or map as one row with a column per field, so that masking
// rules by column name apply to its fields; a list or set as a row per
// element; a scalar as one row.
func (e *Engine) Dial(ctx context.Context, flow *session.Session) (session.Runner, error) {
	up, err := e.dial(ctx, flow.Conn, dialOptions{proto: resp.RESP3})
	if err != nil {
		flow.UpstreamError()
		return nil, fault(flow.Conn.Name, err)
	}
	return &runner{engine: e, flow: flow, up: up}, nil
}

// runner runs a frontend's commands on one upstream session.
type runner struct {
	engine *Engine
	flow   *session.Session
	up     *upstream
}

// UpstreamError is an error the upstream answered a frontend's command
// with, masked.
type UpstreamError struct {
	Code    string // the error's class: ERR, WRONGTYPE…
	Message string
}

func (e *UpstreamError) Error() string { return e.Message }

// UpstreamCode implements engine.UpstreamError: the error's class.
func (e *UpstreamError) UpstreamCode() string { return e.Code }

// UpstreamMessage implements engine.UpstreamError.
func (e *UpstreamError) UpstreamMessage() string { return e.Message }

var _ engine.UpstreamError = (*UpstreamError)(nil)

// Run implements session.Runner.
func (r *runner) Run(ctx context.Context, cmd *protocols.Command, res *session.Results) error {
	args, err := commandArgs(cmd)
	if err != nil {
		return err
	}
	var nameBuf [24]byte
	name := upperName(nameBuf[:0], args[0])
	if msg := r.unsupported(name, args); msg != "" {
		return &UpstreamError{Code: errorCode([]byte(msg)), Message: msg}
	}
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { _ = r.up.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := r.up.w.Write(resp.AppendArgs(nil, args)); err == nil {
		err = r.up.w.Flush()
	}
	v, err := readValue(r.up.dec, maxExecReply)
	if err != nil {
		// The session can no longer be trusted to be at a reply's start.
		r.flow.UpstreamError()
		_ = r.up.conn.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("upstream of connection %q: %w", r.flow.Conn.Name, err)
	}
	if msg, ok := v.errorText(); ok {
		msg = string(r.flow.Text([]byte(msg)))
		code := errorCode([]byte(msg))
		if err := res.End(protocols.Result{Error: msg, Code: code}, start); err != nil {
			return err
		}
		return &UpstreamError{Code: code, Message: msg}
	}
	cols, rows, kind := tabulate(v, shapeOf(name, args, resp.RESP3))
	if err := res.Begin(cols, start); err != nil {
		return err
	}
	for _, row := range rows {
		if err := res.Row(row); err != nil {
			return err
		}
	}
	return res.End(protocols.Result{Tag: kind, Rows: int64(len(rows))}, start)
}

// commandArgs is the command's argument vector; a command given as text is
// split as Redis splits an inline command.
func commandArgs(cmd *protocols.Command) ([][]byte, error) {
	if len(cmd.Args) > 0 {
		out := make([][]byte, len(cmd.Args))
		for i, a := range cmd.Args {
			out[i] = []byte(a)
		}
		return out, nil
	}
	d := resp.NewRequestDecoder(bufio.NewReader(strings.NewReader(cmd.Text+"\n")), resp.RequestLimits{})
	args, _, err := d.Next()
	if err != nil || len(args) == 0 {
		return nil, errors.New("the command is empty or its quotes are unbalanced")
	}
	return args, nil
}

// unsupported refuses what a frontend cannot run: commands that change the
// session's protocol or login, and those whose answers do not come one per
// command.
func (r *runner) unsupported(name string, args [][]byte) string {
	switch name {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
		"MONITOR", "SYNC", "PSYNC", "REPLCONF", "HELLO", "AUTH", "RESET", "QUIT":
		return "ERR " + name + " is not available through the agent API"
	case "CLIENT":
		if len(args) >= 2 && (strings.EqualFold(string(args[1]), "REPLY") || strings.EqualFold(string(args[1]), "TRACKING")) {
			return "ERR CLIENT " + strings.ToUpper(string(args[1])) + " is not available through the agent API"
		}
	}
	return databaseGuard(r.flow.Conn, name, args)
}

// Close implements session.Runner.
func (r *runner) Close() error { return r.up.conn.Close() }

// tabulate turns a reply into a result set, and names how the result set
// holds it (the result's tag, which a frontend reads to rebuild the reply
// with its types):
//
//   - "map": one row, a column per key;
//   - "array", "set" or "push": a column "value" with a row per element, or
//     one row with a column per element when the command named them (HMGET);
//   - a scalar's type (bulk, simple, verbatim, integer, double, bignum,
//     bool, null): one row of one column.
//
// Columns keep the values' types: numbers and booleans are TypeNumber and
// TypeBool, nested aggregates TypeJSON (each value its JSON), and a column
// of elements whose types differ TypeJSON too.
func tabulate(v *value, sh shape) ([]protocols.Column, [][][]byte, string) {
	column := func(name string, e *value) protocols.Column {
		return protocols.Column{Name: name, Table: sh.table, Type: columnType(e)}
	}
	switch {
	case v.kind == resp.Map:
		var cols []protocols.Column
		var row [][]byte
		for i := 0; i+1 < len(v.elems); i += 2 {
			k, val := v.elems[i], v.elems[i+1]
			cols = append(cols, column(string(cell(k)), val))
			row = append(row, cell(val))
		}
		return cols, [][][]byte{row}, "map"
	case sh.names != nil && sh.namesAt == 0 && !v.kind.Aggregate():
		return []protocols.Column{column(sh.names[0], v)}, [][][]byte{{cell(v)}}, kindOf(v)
	case sh.names != nil && sh.namesAt == 1 && v.kind == resp.Array && len(v.elems) == len(sh.names):
		cols := make([]protocols.Column, len(v.elems))
		row := make([][]byte, len(v.elems))
		for i, e := range v.elems {
			cols[i], row[i] = column(sh.names[i], e), cell(e)
		}
		return cols, [][][]byte{row}, kindOf(v)
	case sh.pairs == 2 && v.kind == resp.Array && pairsOnly(v):
		m := &value{kind: resp.Map}
		for _, p := range v.elems {
			m.elems = append(m.elems, p.elems...)
		}
		return tabulate(m, shape{table: sh.table})
	case v.kind.Aggregate() && !v.null:
		col := protocols.Column{Name: "value", Table: sh.table, Type: elementsType(v.elems)}
		rows := make([][][]byte, len(v.elems))
		for i, e := range v.elems {
			if col.Type == protocols.TypeJSON {
				rows[i] = [][]byte{jsonOf(e)}
			} else {
				rows[i] = [][]byte{cell(e)}
			}
		}
		return []protocols.Column{col}, rows, kindOf(v)
	}
	return []protocols.Column{column("value", v)}, [][][]byte{{cell(v)}}, kindOf(v)
}

// kindOf names a reply's type as the recording does.
func kindOf(v *value) string {
	if v.null {
		return "null"
	}
	return replyKind(resp.Token{Kind: v.kind})
}

// elementsType is the one column type of an aggregate's elements: their
// common type, nulls aside, or TypeJSON when they differ, so that no
// element's type is lost.
func elementsType(elems []*value) protocols.ValueType {
	t, seen := protocols.TypeText, false
	for _, e := range elems {
		if e.null {
			continue
		}
		et := columnType(e)
		switch {
		case !seen:
			t, seen = et, true
		case et != t:
			return protocols.TypeJSON
		}
	}
	return t
}

func pairsOnly(v *value) bool {
	for _, e := range v.elems {
		if e.kind != resp.Array || len(e.elems) != 2 {
			return false
		}
	}
	return true
}

func columnType(v *value) protocols.ValueType {
	switch {
	case v.kind.Aggregate():
		return protocols.TypeJSON
	case v.kind == resp.Integer, v.kind == resp.Double, v.kind == resp.BigNumber:
		return protocols.TypeNumber
	case v.kind == resp.Boolean:
		return protocols.TypeBool
	}
	return protocols.TypeText
}

// cell is a value as a result set's field: nil for a null, an aggregate as
// JSON, a boolean as t or f.
func cell(v *value) []byte {
	switch {
	case v.null:
		return nil
	case v.kind.Aggregate():
		return jsonOf(v)
	}
	return v.str
}

// jsonOf renders a value as JSON for a frontend.
func jsonOf(v *value) []byte {
	b, _ := json.Marshal(jsonValue(v))
	return b
}

func jsonValue(v *value) any {
	switch {
	case v.null:
		return nil
	case v.kind == resp.Map:
		m := make(map[string]any, len(v.elems)/2)
		for i := 0; i+1 < len(v.elems); i += 2 {
			m[string(cell(v.elems[i]))] = jsonValue(v.elems[i+1])
		}
		return m
	case v.kind.Aggregate():
		out := make([]any, len(v.elems))
		for i, e := range v.elems {
			out[i] = jsonValue(e)
		}
		return out
	case v.kind == resp.Integer:
		n, _ := strconv.ParseInt(string(v.str), 10, 64)
		return n
	case v.kind == resp.Double:
		f, err := strconv.ParseFloat(string(v.str), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return string(v.str)
		}
		return f
	case v.kind == resp.Boolean:
		return string(v.str) == "t"
	}
	return string(v.str)
}
