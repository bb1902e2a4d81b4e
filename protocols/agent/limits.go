package agent

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/airlock-gw/airlock/session"
)

// limitRetryAfter is the Retry-After, in seconds, of a session refused by
// a limit: sessions of this frontend last one request, so a slot is
// usually free again within a second.
const limitRetryAfter = "1"

// writeLimited answers a session refused by a limit: 429 when the
// caller's own identity is at its cap, 503 when the process or the
// connection is. It reports false when err is not a limit's.
func writeLimited(w http.ResponseWriter, err error) bool {
	var le *session.LimitError
	if !errors.As(err, &le) {
		return false
	}
	status, kind, title := http.StatusServiceUnavailable, "too-many-sessions", "Too many sessions"
	if le.Limit == session.LimitIdentity {
		status, kind, title = http.StatusTooManyRequests, "too-many-sessions-for-identity", "Too many sessions for this identity"
	}
	w.Header().Set("Retry-After", limitRetryAfter)
	writeProblem(w, status, kind, title, limitDetail(le))
	return true
}

// limitDetail says which limit refused a session, for a client.
func limitDetail(le *session.LimitError) string {
	return fmt.Sprintf("Airlock's %s limit of %d sessions is reached; try again when a session has ended", le.Limit, le.Max)
}
