package postgres

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes Airlock answers with.
const (
	codeInvalidPassword    = "28P01" // wrong token
	codeInvalidAuthSpec    = "28000" // unknown or forbidden connection, TLS required
	codeProtocolViolation  = "08P01" // malformed or oversized message
	codeConnectionFailure  = "08006" // upstream unreachable
	codeInsufficientPriv   = "42501" // refused by policy
	codeDuplicatePstmt     = "42P05" // a named statement parsed again
	codeQueryCanceled      = "57014" // held command cancelled
	codeFeatureUnsupported = "0A000" // replication, fast-path calls
	codeIOError            = "58030" // recording unavailable
	codeAdminShutdown      = "57P01" // Airlock shutting down
	// codeTooManyConnections is the upstream's answer when its slots are
	// full; idle reused sessions are then given back (pool.go).
	codeTooManyConnections = "53300"
)

// pgError is an error Airlock sends to a client in the protocol's own form.
type pgError struct {
	Severity string // ERROR or FATAL
	Code     string
	Message  string
	Detail   string
	Hint     string
}

func (e *pgError) Error() string { return e.Code + ": " + e.Message }

func fatal(code, msg string) *pgError { return &pgError{Severity: "FATAL", Code: code, Message: msg} }

func (e *pgError) response() *pgproto3.ErrorResponse {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	return &pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
}

// encode appends the ErrorResponse frame to dst.
func (e *pgError) encode(dst []byte) []byte {
	out, err := e.response().Encode(dst)
	if err != nil {
		// Encoding a fixed-shape message cannot fail; keep the frame intact.
		return dst
	}
	return out
}

func appendNotice(dst []byte, msg string) []byte {
	n := &pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000", Message: msg}
	out, err := n.Encode(dst)
	if err != nil {
		return dst
	}
	return out
}

func appendReadyForQuery(dst []byte, status byte) []byte {
	dst, sp := beginMessage(dst, 'Z')
	dst = append(dst, status)
	return finishMessage(dst, sp)
}
