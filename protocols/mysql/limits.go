package mysql

import (
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"

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
