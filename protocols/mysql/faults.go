package mysql

import (
	"context"
	"errors"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// fault classifies a failed login to c's upstream.
func fault(conn string, err error) *engine.UpstreamFault {
	f := &engine.UpstreamFault{Connection: conn, Err: err, Fault: engine.FaultUnavailable}
	var me *mysql.MyError
	if errors.As(err, &me) {
		f.Code = strconv.Itoa(int(me.Code))
		switch me.Code {
		case mysql.ER_CON_COUNT_ERROR, mysql.ER_TOO_MANY_USER_CONNECTIONS, mysql.ER_USER_LIMIT_REACHED:
			f.Fault = engine.FaultFull
		case mysql.ER_ACCESS_DENIED_ERROR, mysql.ER_DBACCESS_DENIED_ERROR, mysql.ER_ACCESS_DENIED_NO_PASSWORD_ERROR,
			mysql.ER_NOT_SUPPORTED_AUTH_MODE:
			// The server's message names the upstream user: not shown.
			f.Fault = engine.FaultLogin
		case mysql.ER_BAD_DB_ERROR, mysql.ER_HOST_IS_BLOCKED, mysql.ER_SERVER_SHUTDOWN:
			f.Detail = me.Message
		}
		return f
	}
	if k, ok := engine.NetFault(err); ok {
		f.Fault = k
	}
	return f
}

// faultError is the client's error for an upstream that could not give its
// session: the server's own code where clients act on it (1040 too many
// connections, 1045 access denied), else the client library's 2003.
func faultError(f *engine.UpstreamFault) *mysql.MyError {
	code := uint16(codeCantConnect)
	switch f.Fault {
	case engine.FaultFull:
		// The server's own words first, which pools know to wait on.
		return myError(mysql.ER_CON_COUNT_ERROR, "Too many connections: %s", f.Message())
	case engine.FaultLogin:
		code = mysql.ER_ACCESS_DENIED_ERROR
	case engine.FaultUnavailable:
		if n, err := strconv.Atoi(f.Code); err == nil && n > 0 && n < 2000 {
			code = uint16(n)
		}
	}
	return myError(code, "%s", f.Message())
}

// Probe implements engine.Prober: a login to c's upstream and COM_QUIT.
func (e *Engine) Probe(ctx context.Context, c *protocols.Connection) error {
	dctx, cancel := context.WithTimeout(ctx, e.set.ConnectTimeout)
	defer cancel()
	up, err := wire.Dial(dctx, dialConfig(c, 0, 0, map[string]string{"_client_name": "airlock", "airlock_probe": "1"}))
	if err != nil {
		return fault(c.Name, err)
	}
	e.learn(c.Name, up)
	quit(up.Conn)
	return nil
}

// Reloaded implements engine.Reloader: what the old upstreams said of
// themselves is forgotten, and their idle sessions let go.
func (e *Engine) Reloaded() {
	e.reloads.Add(1)
	e.noReset.Clear()
	e.mu.Lock()
	pool := e.pool
	e.mu.Unlock()
	if pool != nil {
		pool.drain()
	}
	e.mu.Lock()
	clear(e.upstreams)
	e.mu.Unlock()
	e.learned.Clear() // a connection's upstream may have changed: read its slots again
}

var (
	_ engine.Prober   = (*Engine)(nil)
	_ engine.Reloader = (*Engine)(nil)
)

// watched returns the open sessions, for the query timeout.
func (e *Engine) watched() []engine.Watched {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]engine.Watched, 0, len(e.sessions))
	for _, s := range e.sessions {
		out = append(out, s)
	}
	return out
}

// Progress implements engine.Watched.
func (s *relay) Progress() uint64 { return s.progress.Load() }

// Stalled implements engine.Watched: the command is killed upstream (KILL
// QUERY), and if the upstream stays silent the session ends.
func (s *relay) Stalled(again bool) {
	timeout := s.engine.set.QueryTimeout
	if !again {
		s.log.Warn("the upstream has not answered within mysql.query_timeout: killing the command", "timeout", timeout)
		s.killInBackground(true)
		return
	}
	s.flow.UpstreamError()
	s.terminate(myError(codeLost, "Lost connection to the upstream of connection '%s': no answer within mysql.query_timeout (%s)", s.flow.Conn.Name, timeout),
		"upstream did not answer")
}

var _ engine.Watched = (*relay)(nil)
