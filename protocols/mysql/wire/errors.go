package wire

import "github.com/go-mysql-org/go-mysql/mysql"

// Error codes Airlock sends in its own ERR packets. They are MySQL's own
// codes, so clients and ORMs classify them as they would a server's: none
// invites a retry, and each SQLSTATE class says whose fault it is.
const (
	// CodeAccessDenied (1045, SQLSTATE 28000) refuses a caller's login: a
	// bad identity or token, or a client that cannot prove it (only
	// mysql_native_password). Drivers report it as bad credentials.
	CodeAccessDenied = mysql.ER_ACCESS_DENIED_ERROR
	// CodePolicyDenied (1227, SQLSTATE 42000) refuses a statement by policy.
	// ER_SPECIFIC_ACCESS_DENIED_ERROR reads as a missing privilege for the
	// operation, names no table (1142 does, and Airlock's rule may concern
	// none) and is never retried; class 42 keeps it apart from
	// connection-level failures.
	CodePolicyDenied = mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR
	// CodeNotSupported (1235, SQLSTATE 42000) refuses a command or feature
	// the gateway does not relay (replication, LOCAL INFILE, compression).
	CodeNotSupported = mysql.ER_NOT_SUPPORTED_YET
	// CodeHandshake (1043, SQLSTATE 08S01) ends a connection whose
	// handshake did not follow the protocol.
	CodeHandshake = mysql.ER_HANDSHAKE_ERROR
	// CodeGateway (1105, SQLSTATE HY000) reports a failure of Airlock
	// itself or of its upstream (unreachable, refused Airlock's
	// credentials), which the caller cannot fix.
	CodeGateway = mysql.ER_UNKNOWN_ERROR
)

// NewError returns an error for an ERR packet with code, the SQLSTATE MySQL
// gives that code, and msg.
func NewError(code uint16, msg string) *mysql.MyError { return mysql.NewError(code, msg) }
