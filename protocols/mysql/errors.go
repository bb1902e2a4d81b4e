package mysql

import (
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// Error codes Airlock answers with beyond those of the wire package. They
// are the server's (or, for an upstream that cannot be reached, the client
// library's) own codes, so clients classify them as they would a server's.
const (
	codeTooMany        = mysql.ER_CON_COUNT_ERROR       // 1040: the upstream has no free connection slot
	codeBadDB          = mysql.ER_BAD_DB_ERROR          // 1049: unknown or forbidden connection
	codeDBAccess       = mysql.ER_DBACCESS_DENIED_ERROR // 1044: USE outside the connection's scope
	codeUnknownCommand = mysql.ER_UNKNOWN_COM_ERROR     // 1047
	codeShutdown       = mysql.ER_SERVER_SHUTDOWN       // 1053
	codeNoThread       = mysql.ER_NO_SUCH_THREAD        // 1094: KILL of an unknown id
	codeKillDenied     = mysql.ER_KILL_DENIED_ERROR     // 1095: KILL of another identity's session
	codeTooLarge       = mysql.ER_NET_PACKET_TOO_LARGE  // 1153
	codeOutOfOrder     = mysql.ER_NET_PACKETS_OUT_OF_ORDER
	codeUnknownStmt    = mysql.ER_UNKNOWN_STMT_HANDLER // 1243
	codeInterrupted    = mysql.ER_QUERY_INTERRUPTED    // 1317: a held command withdrawn
	codeMalformed      = mysql.ER_MALFORMED_PACKET     // 1835
	// codeCantConnect (CR_CONN_HOST_ERROR) and codeLost (CR_SERVER_LOST)
	// are the client library's codes for a server it cannot reach or lost;
	// Airlock sends them for its upstream.
	codeCantConnect = 2003
	codeLost        = 2013
)

// myError is an error for an ERR packet.
func myError(code uint16, format string, args ...any) *mysql.MyError {
	return wire.NewError(code, fmt.Sprintf(format, args...))
}

// errPacket frames e as a response at sequence id seq.
func errPacket(seq uint8, e *mysql.MyError) []byte {
	out, _ := wire.AppendPacket(nil, seq, wire.AppendERR(nil, e))
	return out
}

func shutdownError() *mysql.MyError {
	return myError(codeShutdown, "Airlock is shutting down")
}

func upstreamLost(conn string) *mysql.MyError {
	return myError(codeLost, "Lost connection to the upstream of connection '%s'", conn)
}

// refusal is a refusing decision as the client reads it: error 1227 (a
// missing privilege, never retried), naming the risk, the rules and the
// approval request.
func refusal(dec protocols.Decision) *mysql.MyError {
	msg := "Airlock refused the command"
	if dec.Reason != "" {
		msg += ": " + dec.Reason
	}
	msg += " (risk " + dec.Risk.String()
	if len(dec.Rules) > 0 {
		msg += "; rules " + strings.Join(dec.Rules, ", ")
	}
	if dec.ApprovalID != "" {
		msg += "; approval request " + dec.ApprovalID
	}
	return wire.NewError(wire.CodePolicyDenied, msg+")")
}
