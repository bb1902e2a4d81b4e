package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
)

// refusedError is the upstream's error reply to Airlock's own login
// (HELLO with AUTH, SELECT).
type refusedError struct {
	command, msg string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("upstream refused %s: %s", e.command, e.msg)
}

// fault classifies a failed login to c's upstream.
func fault(conn string, err error) *engine.UpstreamFault {
	f := &engine.UpstreamFault{Connection: conn, Err: err, Fault: engine.FaultUnavailable}
	var re *refusedError
	if errors.As(err, &re) {
		f.Code = errorCode([]byte(re.msg))
		switch {
		case f.Code == "WRONGPASS", f.Code == "NOAUTH", f.Code == "NOPERM":
			f.Fault = engine.FaultLogin
		case strings.HasPrefix(re.msg, "ERR max number of clients reached"):
			f.Fault = engine.FaultFull
		case f.Code == "LOADING", f.Code == "MASTERDOWN", f.Code == "BUSY":
			f.Detail = re.msg
		}
		return f
	}
	if k, ok := engine.NetFault(err); ok {
		f.Fault = k
	}
	return f
}

// faultError is the client's error for an upstream that could not give its
// session, in Redis's words where Redis has them.
func faultError(f *engine.UpstreamFault) string {
	switch f.Fault {
	case engine.FaultFull:
		return "ERR max number of clients reached: " + f.Message()
	case engine.FaultUnavailable:
		if f.Code == "LOADING" || f.Code == "MASTERDOWN" || f.Code == "BUSY" {
			return f.Code + " " + f.Message()
		}
	}
	return "ERR " + f.Message()
}

// Probe implements engine.Prober: a login to c's upstream and QUIT.
func (e *Engine) Probe(ctx context.Context, c *protocols.Connection) error {
	up, err := e.dial(ctx, c, dialOptions{proto: resp.RESP2})
	if err != nil {
		return fault(c.Name, err)
	}
	return up.conn.Close()
}

var _ engine.Prober = (*Engine)(nil)

// watched returns the open sessions, for the query timeout.
func (e *Engine) watched() []engine.Watched {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]engine.Watched, 0, len(e.sessions))
	for s := range e.sessions {
		out = append(out, s)
	}
	return out
}

// Progress implements engine.Watched.
func (s *relay) Progress() uint64 { return s.progress.Load() }

// Stalled implements engine.Watched. A Redis command cannot be cancelled:
// a command that waits a second timeout ends the session, a blocking read
// (BLPOP) included, so the timeout is set above the blocking reads'.
func (s *relay) Stalled(again bool) {
	if !again {
		s.log.Warn("the upstream has not answered within redis.query_timeout", "timeout", s.engine.set.QueryTimeout)
		return
	}
	s.flow.UpstreamError()
	s.fail(fmt.Sprintf("ERR the upstream of connection %q did not answer within redis.query_timeout (%s)", s.flow.Conn.Name, s.engine.set.QueryTimeout),
		"upstream did not answer")
}

var _ engine.Watched = (*relay)(nil)
