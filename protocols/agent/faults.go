package agent

import (
	"errors"
	"net/http"

	"github.com/airlock-gw/airlock/protocols/engine"
)

// upstreamProblem words an upstream that could not give a session by its
// cause: 503 when it is full or cannot serve now (worth a retry later), 504
// when it timed out, 502 when it is unreachable or refused Airlock's login.
// The detail names the connection, never its address or credentials.
func upstreamProblem(err error) (status int, kind, title, detail string, ok bool) {
	var f *engine.UpstreamFault
	if !errors.As(err, &f) {
		return 0, "", "", "", false
	}
	switch f.Fault {
	case engine.FaultFull:
		status, kind, title = http.StatusServiceUnavailable, "upstream-full", "Database has too many connections"
	case engine.FaultUnavailable:
		status, kind, title = http.StatusServiceUnavailable, "upstream-unavailable", "Database unavailable"
	case engine.FaultTimeout:
		status, kind, title = http.StatusGatewayTimeout, "upstream-timeout", "Database timed out"
	case engine.FaultLogin:
		status, kind, title = http.StatusBadGateway, "upstream-login-refused", "Database refused Airlock's login"
	default:
		status, kind, title = http.StatusBadGateway, "upstream-unreachable", "Database unreachable"
	}
	return status, kind, title, f.Message(), true
}
