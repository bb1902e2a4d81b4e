package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// tooManySessions words a session limit's refusal as PostgreSQL words its
// own (SQLSTATE 53300 too_many_connections): "sorry, too many clients
// already" for the process, per role for an identity, per database for a
// connection. ok is false when err is not a limit's.
func tooManySessions(err error, user, database string) (_ *pgError, ok bool) {
	var le *session.LimitError
	if !errors.As(err, &le) {
		return nil, false
	}
	e := fatal(codeTooManyConnections, "sorry, too many clients already")
	switch le.Limit {
	case session.LimitIdentity:
		e.Message = fmt.Sprintf("too many connections for role %q", user)
	case session.LimitConnection:
		e.Message = fmt.Sprintf("too many connections for database %q", database)
	}
	e.Detail = fmt.Sprintf("Airlock's %s limit of %d sessions is reached.", le.Limit, le.Max)
	e.Hint = "Try again when a session has ended."
	return e, true
}

// serverHeadroomSQL is how many sessions the server takes from clients
// that are not superusers: max_connections less the slots it reserves
// (superuser_reserved_connections, and reserved_connections from
// PostgreSQL 16 on; current_setting's missing_ok reads NULL before).
const serverHeadroomSQL = `SELECT current_setting('max_connections')::int
	- current_setting('superuser_reserved_connections')::int
	- coalesce(current_setting('reserved_connections', true)::int, 0)`

// learnSessionCap reads, at the first upstream login of a connection
// without max_sessions, the slots its server leaves to ordinary clients,
// and caps the connection's sessions below them, less the idle sessions
// the pool may keep: a client that fills Airlock's cap then leaves the
// slots reserved for superusers free, even when Airlock's upstream user is
// one. A failure to read them is logged once and keeps the default cap.
func (e *Engine) learnSessionCap(ctx context.Context, pc *pgconn.PgConn, c *protocols.Connection) {
	if c.MaxSessions != 0 || e.gateway == nil {
		return
	}
	if _, done := e.learned.LoadOrStore(c.Name, true); done {
		return
	}
	res, err := pc.Exec(ctx, serverHeadroomSQL).ReadAll()
	var headroom int
	if err == nil && len(res) == 1 && len(res[0].Rows) == 1 {
		headroom, err = strconv.Atoi(string(res[0].Rows[0][0]))
	} else if err == nil {
		err = errors.New("unexpected reply")
	}
	if err != nil {
		e.log.Warn("could not read the upstream's connection slots; the connection keeps the default session cap",
			"connection", c.Name, "err", err)
		return
	}
	n := max(headroom-e.set.Pool.maxIdle(), 1)
	e.gateway.LearnSessionCap(c.Name, n)
	e.log.Info("session cap from the upstream's connection slots", "connection", c.Name,
		"slots", headroom, "cap", min(n, session.DefaultMaxSessions))
}
