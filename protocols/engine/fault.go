package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/airlock-gw/airlock/protocols"
)

// Fault is why a connection's upstream could not give a new session, in
// words a client, a log and a readiness probe share. Each engine reads its
// upstream's own refusals (PostgreSQL's SQLSTATE, MySQL's error codes,
// Redis's error words) into one, and words it back in its protocol.
type Fault string

// Faults.
const (
	// FaultUnreachable: nothing answered (connection refused, no route,
	// unknown host, closed during the login).
	FaultUnreachable Fault = "unreachable"
	// FaultTimeout: the upstream did not complete the login in time
	// (connect_timeout).
	FaultTimeout Fault = "timed out"
	// FaultLogin: the upstream refused the credentials Airlock holds for
	// the connection. The operator fixes the connection, not the client.
	FaultLogin Fault = "refused Airlock's login"
	// FaultFull: the upstream has no connection slot left.
	FaultFull Fault = "too many connections"
	// FaultUnavailable: the upstream answered but cannot serve now
	// (starting up, shutting down, the database missing) or failed the
	// login in a way none of the above names.
	FaultUnavailable Fault = "unavailable"
)

// UpstreamFault is a failed dial of a connection's upstream, classified.
// Its message names the connection and the fault, never the address or the
// credentials; Err, for the log only, is the upstream's own error.
type UpstreamFault struct {
	Connection string
	Fault      Fault
	// Code is the upstream's own error code when it answered with one
	// (a SQLSTATE, a MySQL error number, a Redis error word).
	Code string
	// Detail is the upstream's own message, when it says why and names
	// nothing secret (a server's "too many clients already").
	Detail string
	Err    error
}

func (f *UpstreamFault) Error() string {
	return fmt.Sprintf("upstream of connection %q %s: %v", f.Connection, f.verb(), f.Err)
}

// Unwrap returns the upstream's error.
func (f *UpstreamFault) Unwrap() error { return f.Err }

// Message is the sentence a client (and a readiness probe) is shown.
func (f *UpstreamFault) Message() string {
	switch f.Fault {
	case FaultLogin:
		return fmt.Sprintf("the upstream of connection %q refused Airlock's login; the connection's credentials in Airlock's configuration need fixing", f.Connection)
	case FaultFull:
		return fmt.Sprintf("the upstream of connection %q has too many connections", f.Connection)
	case FaultTimeout:
		return fmt.Sprintf("could not connect to the upstream of connection %q: timed out", f.Connection)
	case FaultUnreachable:
		return fmt.Sprintf("could not connect to the upstream of connection %q: unreachable", f.Connection)
	}
	if f.Detail != "" {
		return fmt.Sprintf("the upstream of connection %q is unavailable: %s", f.Connection, f.Detail)
	}
	return fmt.Sprintf("the upstream of connection %q is unavailable", f.Connection)
}

func (f *UpstreamFault) verb() string {
	if f.Fault == FaultUnavailable {
		return "is unavailable"
	}
	if f.Fault == FaultLogin {
		return string(f.Fault)
	}
	return "is " + string(f.Fault)
}

// NetFault classifies the network side of a dial error: a timeout, or an
// upstream that cannot be reached. It reports false for anything else (an
// error the upstream answered with).
func NetFault(err error) (Fault, bool) {
	var ne net.Error
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FaultTimeout, true
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ENOENT), // a Unix socket that is not there
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE),
		errors.As(err, &op) && op.Op == "dial":
		return FaultUnreachable, true
	}
	return "", false
}

// Prober is an engine that can check a connection's upstream the way a new
// session reaches it: dial, log in with the credentials Airlock holds, log
// out. A readiness check calls it; the error is an *UpstreamFault.
type Prober interface {
	Probe(ctx context.Context, c *protocols.Connection) error
}

// Reloader is an engine told that a reload replaced the connections: it
// lets go of what it keeps per connection (idle upstream sessions, what an
// upstream said of itself), so new sessions reach the new upstreams.
type Reloader interface {
	Reloaded()
}
