package mysql

import (
	"context"
	"errors"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// tooManySessions words a session limit's refusal as MySQL words its own:
// ER_TOO_MANY_USER_CONNECTIONS (1203, SQLSTATE 42000) for an identity's
// limit, ER_CON_COUNT_ERROR (1040, SQLSTATE 08004) for the process's and
// the connection's. ok is false when err is not a limit's.
func tooManySessions(err error, user string) (_ *mysql.MyError, ok bool) {
	var le *session.LimitError
	if !errors.As(err, &le) {
		return nil, false
	}
	if le.Limit == session.LimitIdentity {
		return myError(mysql.ER_TOO_MANY_USER_CONNECTIONS,
			"User %s already has more than 'max_user_connections' active connections (Airlock's identity limit of %d)", user, le.Max), true
	}
	return myError(mysql.ER_CON_COUNT_ERROR, "Too many connections (Airlock's %s limit of %d)", le.Limit, le.Max), true
}

// learnSessionCap reads, once per connection without max_sessions and in
// a session of its own beside the first client's, the server's
// max_connections, and caps the connection's sessions one below it: a
// server keeps one slot beyond max_connections for SUPER (MariaDB) or
// CONNECTION_ADMIN (MySQL), which Airlock's clients then never take even
// when Airlock's upstream user holds that privilege, and one more stays for
// Airlock's own readiness checks and previews. The idle sessions the pool
// may keep hold slots too and are left out of the cap. A failure is
// logged once and keeps the default cap.
func (e *Engine) learnSessionCap(c *protocols.Connection) {
	if c.MaxSessions != 0 {
		return
	}
	if _, done := e.learned.LoadOrStore(c.Name, true); done {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.set.ConnectTimeout)
		defer cancel()
		n, err := e.maxConnections(ctx, c)
		if err != nil {
			e.log.Warn("could not read the upstream's max_connections; the connection keeps the default session cap",
				"connection", c.Name, "err", err)
			return
		}
		capped := max(n-1-e.set.Pool.maxIdle(), 1)
		e.gateway.LearnSessionCap(c.Name, capped)
		e.log.Info("session cap from the upstream's connection slots", "connection", c.Name,
			"slots", n, "cap", min(capped, session.DefaultMaxSessions))
	}()
}

// maxConnections logs in to c's upstream and reads @@max_connections.
func (e *Engine) maxConnections(ctx context.Context, c *protocols.Connection) (int, error) {
	pc, err := e.dialPreview(ctx, c)
	if err != nil {
		return 0, err
	}
	defer quit(pc.up.Conn)
	rows, err := pc.query(ctx, "SELECT @@max_connections")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, errors.New("unexpected reply")
	}
	return strconv.Atoi(string(rows[0][0]))
}
