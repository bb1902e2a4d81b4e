package postgres

import (
	"errors"
	"fmt"

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
