package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

// flow is one session on one connection for this frontend, with the
// upstream its engine dials when the first command is allowed. It runs one
// command at a time; it is the session.Runner its commands run on.
type flow struct {
	sess *session.Session
	exec engine.Executor

	mu       sync.Mutex // one command at a time; guards upstream
	upstream session.Runner
	ended    atomic.Bool // set under mu
}

// errUnreachable: the connection's upstream could not be dialled or was
// lost. The cause may name the upstream: it is logged, never shown.
var errUnreachable = errors.New("the connection's database could not be reached")

// errEnded: the session ended (its MCP session closed) while a call was on
// its way.
var errEnded = errors.New("the session has ended")

// open admits c to a session on conn and starts it (its recording opened).
func (s *Server) open(ctx context.Context, c *caller, conn *protocols.Connection) (*flow, error) {
	sess, err := s.gateway.Admit(ctx, session.Caller{Protocol: conn.Protocol, User: c.id.Name, Secret: c.secret,
		Connection: conn.Name, Peer: c.peer, TLS: c.tls, Local: c.local})
	if err != nil {
		return nil, err
	}
	if err := sess.Start(); err != nil {
		return nil, err
	}
	return &flow{sess: sess, exec: s.executors[conn.Protocol]}, nil
}

// execute runs cmd through the session flow (session.Execute) with its
// rows going to sink and each statement's outcome to outcome.
func (f *flow) execute(ctx context.Context, cmd *protocols.Command, sink session.RowSink, outcome func(protocols.Result)) (protocols.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended.Load() {
		return protocols.Decision{}, errEnded
	}
	return f.sess.Execute(ctx, f, cmd, outcomeSink{RowSink: sink, outcome: outcome})
}

// Run implements session.Runner: it dials the upstream on first use and
// again after a loss, so a refused command never costs a connection.
func (f *flow) Run(ctx context.Context, cmd *protocols.Command, res *session.Results) error {
	if f.upstream == nil {
		r, err := f.exec.Dial(ctx, f.sess)
		if err != nil {
			f.sess.Log.Warn("agent: upstream unreachable", "err", err)
			if rerr := res.End(protocols.Result{Error: errUnreachable.Error()}, time.Time{}); rerr != nil {
				return rerr
			}
			return fmt.Errorf("%w: %w", errUnreachable, err)
		}
		f.upstream = r
	}
	err := f.upstream.Run(ctx, cmd, res)
	var ue engine.UpstreamError
	if err != nil && !errors.As(err, &ue) && !errors.Is(err, session.ErrRecordingFailed) {
		// The upstream session is in doubt (lost, or cut by a cancel):
		// the next command dials a new one.
		_ = f.upstream.Close()
		f.upstream = nil
		return fmt.Errorf("%w: %w", errUnreachable, err)
	}
	return err
}

// Close implements session.Runner; end calls it.
func (f *flow) Close() error {
	if f.upstream == nil {
		return nil
	}
	err := f.upstream.Close()
	f.upstream = nil
	return err
}

// isEnded reports whether the session has ended (its recording failed, or
// its MCP session closed): a new one takes its place.
func (f *flow) isEnded() bool { return f.ended.Load() }

// end closes the session with reason once its running command is done.
func (f *flow) end(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended.Load() {
		return
	}
	f.ended.Store(true)
	_ = f.Close()
	f.sess.Close(reason)
}

// outcomeSink passes rows and columns to the answer's sink and each
// command's recorded outcome to outcome.
type outcomeSink struct {
	session.RowSink
	outcome func(protocols.Result)
}

// ForwardColumns implements session.ColumnSink when the answer's sink does.
func (o outcomeSink) ForwardColumns(cols []protocols.Column) error {
	if cs, ok := o.RowSink.(session.ColumnSink); ok {
		return cs.ForwardColumns(cols)
	}
	return nil
}

// ForwardResult implements session.ResultSink.
func (o outcomeSink) ForwardResult(r protocols.Result) error {
	if o.outcome != nil {
		o.outcome(r)
	}
	return nil
}

// note records a tool call that runs nothing on the upstream, and its
// outcome as a result's tag.
func (f *flow) note(cmd *protocols.Command, res protocols.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended.Load() {
		return
	}
	start := time.Now()
	if err := f.sess.Record(cmd, ""); err != nil {
		return
	}
	_ = f.sess.Results(nil).End(res, start)
}
