package session

import (
	"context"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Runner runs commands on one upstream session with the protocol's own
// client library (pgx for PostgreSQL, the MySQL and Redis engines' upstream
// clients), for a frontend that is not the connection's wire: the agent
// API and the MCP endpoint. Each protocol's engine provides one
// (engine.Executor); the frontend never sees the upstream.
type Runner interface {
	// Run runs an allowed command and takes each of its result sets
	// through res: Begin, Row for each row, End with the outcome (an
	// upstream error is an outcome, recorded; Run returns it too, masked).
	Run(ctx context.Context, cmd *protocols.Command, res *Results) error
	// Close ends the upstream session.
	Close() error
}

// Execute is the whole flow of one command for a frontend: Check, and if
// the command is allowed, run it on r with its results going through
// mask, record and sink. It returns the decision; a refused command did
// not run. Errors are Check's, or the run's.
func (s *Session) Execute(ctx context.Context, r Runner, cmd *protocols.Command, sink RowSink) (protocols.Decision, error) {
	dec, err := s.Check(ctx, cmd)
	if err != nil || dec.Action != protocols.Allow {
		return dec, err
	}
	start := time.Now()
	res := s.Results(sink)
	err = r.Run(ctx, cmd, res)
	res.Done(start)
	return dec, err
}
