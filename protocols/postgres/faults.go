package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

// SQLSTATE codes of upstream faults, as libpq and PostgreSQL use them.
const (
	codeCannotConnect    = "08001" // sqlclient_unable_to_establish_sqlconnection
	codeRejectedConnect  = "08004" // sqlserver_rejected_establishment_of_sqlconnection
	codeCannotConnectNow = "57P03"
	codeUnknownDatabase  = "3D000"
)

// fault classifies a failed dial of c's upstream.
func fault(conn string, err error) *engine.UpstreamFault {
	f := &engine.UpstreamFault{Connection: conn, Err: err, Fault: engine.FaultUnavailable}
	var pge *pgconn.PgError
	if errors.As(err, &pge) {
		f.Code = pge.Code
		switch {
		case pge.Code == codeTooManyConnections || pge.Code == "53000":
			f.Fault, f.Detail = engine.FaultFull, pge.Message
		case pge.Code == codeInvalidPassword || pge.Code == codeInvalidAuthSpec || pge.Code == codeInsufficientPriv:
			// The server's message names the upstream user: not shown.
			f.Fault = engine.FaultLogin
		case pge.Code == codeCannotConnectNow || pge.Code == codeUnknownDatabase:
			f.Detail = pge.Message
		}
		return f
	}
	if k, ok := engine.NetFault(err); ok {
		f.Fault = k
	}
	return f
}

// faultError is the client's error for an upstream that could not give its
// session: the upstream's own SQLSTATE where clients act on it (53300,
// 57P03), else libpq's connection classes.
func faultError(f *engine.UpstreamFault) *pgError {
	code := codeConnectionFailure
	switch f.Fault {
	case engine.FaultFull:
		code = codeTooManyConnections
	case engine.FaultLogin:
		code = codeRejectedConnect
	case engine.FaultUnreachable, engine.FaultTimeout:
		code = codeCannotConnect
	case engine.FaultUnavailable:
		if f.Code == codeCannotConnectNow || f.Code == codeUnknownDatabase {
			code = f.Code
		}
	}
	return fatal(code, f.Message())
}

// Probe implements engine.Prober: a login to c's upstream and a Terminate.
func (e *Engine) Probe(ctx context.Context, c *protocols.Connection) error {
	up, err := e.dial(ctx, c, map[string]string{"application_name": "airlock readiness"}, false)
	if err != nil {
		return fault(c.Name, err)
	}
	_ = up.conn.SetWriteDeadline(time.Now().Add(time.Second))
	b, _ := (&pgproto3.Terminate{}).Encode(nil)
	_, _ = up.conn.Write(b)
	return up.conn.Close()
}

// Reloaded implements engine.Reloader: idle upstream sessions and preview
// catalogs of the old connections are let go.
func (e *Engine) Reloaded() {
	e.reloads.Add(1)
	e.learned.Clear() // a connection's upstream may have changed: read its slots again
	e.mu.Lock()
	pool, cats := e.pool, e.catalogs
	e.catalogs = nil
	e.mu.Unlock()
	if pool != nil {
		pool.drain()
	}
	for _, k := range cats {
		k.close()
	}
}

var (
	_ engine.Prober   = (*Engine)(nil)
	_ engine.Reloader = (*Engine)(nil)
)

// watched returns the open sessions, for the query timeout.
func (e *Engine) watched() []engine.Watched {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Watched
	for _, l := range e.sessions {
		for _, s := range l {
			out = append(out, s)
		}
	}
	return out
}

// Progress implements engine.Watched.
func (s *relay) Progress() uint64 { return s.progress.Load() }

// Stalled implements engine.Watched: the command is cancelled upstream,
// and if the upstream stays silent the session ends.
func (s *relay) Stalled(again bool) {
	timeout := s.engine.set.QueryTimeout
	if !again {
		s.log.Warn("the upstream has not answered within postgres.query_timeout: cancelling the command", "timeout", timeout)
		if err := s.up.cancel(s.engine.set.ConnectTimeout); err != nil {
			s.log.Warn("cancelling the command failed", "err", err)
		}
		return
	}
	s.flow.UpstreamError()
	s.terminate(fatal(codeConnectionFailure, fmt.Sprintf("the upstream of connection %q did not answer within postgres.query_timeout (%s)", s.flow.Conn.Name, timeout)),
		"upstream did not answer")
}

var _ engine.Watched = (*relay)(nil)
