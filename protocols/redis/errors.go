package redis

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// Errors Airlock answers with, in Redis's own words where Redis has them.
const (
	msgNoAuth    = "NOAUTH Authentication required."
	msgWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	msgHelloAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	msgNoProto   = "NOPROTO unsupported protocol version"
	msgExecAbort = "EXECABORT Transaction discarded because of previous errors."
	msgTLS       = "ERR Airlock accepts tokens only over TLS from a non-local address: connect with TLS (redis-cli --tls)"
	msgBadName   = "ERR Client names cannot contain spaces, newlines or special characters."
	// msgTooMany answers a session past one of Airlock's limits, as Redis
	// answers a client past maxclients, before closing the connection.
	msgTooMany = "ERR max number of clients reached"
)

// wrongArgs is Redis's error for a command with the wrong number of
// arguments.
func wrongArgs(name string) string {
	return "ERR wrong number of arguments for '" + strings.ToLower(name) + "' command"
}

// refusalText is the error a refused command gets: NOPERM, as Redis answers
// a command the user's ACL does not allow, naming the rules and, when the
// policy asked for one, the approval request.
func refusalText(dec protocols.Decision) string {
	var b strings.Builder
	b.WriteString("NOPERM Airlock refused the command")
	if dec.Reason != "" {
		b.WriteString(": ")
		b.WriteString(dec.Reason)
	}
	b.WriteString(" (risk ")
	b.WriteString(dec.Risk.String())
	if len(dec.Rules) > 0 {
		b.WriteString("; rules ")
		b.WriteString(strings.Join(dec.Rules, ", "))
	}
	if dec.ApprovalID != "" && !strings.Contains(dec.Reason, dec.ApprovalID) {
		b.WriteString("; approval request ")
		b.WriteString(dec.ApprovalID)
	}
	b.WriteString(")")
	return b.String()
}

// errorCode is the first word of a Redis error, its class (ERR, WRONGTYPE).
func errorCode(msg []byte) string {
	for i, c := range msg {
		if c == ' ' {
			return string(msg[:i])
		}
		if i > 32 || c < 'A' || c > 'Z' {
			break
		}
	}
	return ""
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errHandled)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errHandled marks a connection that ended as the protocol intends (QUIT
// before authenticating).
var errHandled = errors.New("handled")
