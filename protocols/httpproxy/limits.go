package httpproxy

import (
	"errors"
	"net/http"

	"github.com/airlock-gw/airlock/session"
)

// admit is Gateway.Admit for one request. Idle sessions kept for reuse
// hold slots of the session limits: when a limit refuses the caller, one
// idle session that counts against that limit is ended and the caller
// admitted again, so that a caller whose own idle session fills its slot
// is not refused for it.
func (p *proxy) admit(r *http.Request, g *session.Gateway, c session.Caller) (*session.Session, error) {
	s, err := g.Admit(r.Context(), c)
	var ae *session.AdmitError
	var le *session.LimitError
	if err == nil || !errors.As(err, &le) || !errors.As(err, &ae) {
		return s, err
	}
	if !p.pools.evict(le.Limit, ae.Identity, ae.Connection) {
		return nil, err
	}
	return g.Admit(r.Context(), c)
}

// evict ends one idle session that counts against limit for identity on
// connection; it reports false when there is none.
func (p *pools) evict(limit session.Limit, identity, connection string) bool {
	p.mu.Lock()
	var found *lease
	for k, ls := range p.idle {
		if (limit == session.LimitIdentity && k.identity != identity) ||
			(limit == session.LimitConnection && k.connection != connection) || len(ls) == 0 {
			continue
		}
		found = ls[0] // the longest idle
		if p.idle[k] = ls[1:]; len(p.idle[k]) == 0 {
			delete(p.idle, k)
		}
		break
	}
	p.mu.Unlock()
	if found == nil {
		return false
	}
	found.s.Close("idle, its slot needed")
	return true
}

// refuseLimited answers a request whose session a limit refused: 429 when
// the caller's own identity is at its cap, 503 when the process or the
// connection is. It reports false when err is not a limit's.
func refuseLimited(w http.ResponseWriter, err error) bool {
	var le *session.LimitError
	if !errors.As(err, &le) {
		return false
	}
	pr := newProblem(http.StatusServiceUnavailable, "too-many-sessions", "Too many sessions", "")
	if le.Limit == session.LimitIdentity {
		pr = newProblem(http.StatusTooManyRequests, "too-many-sessions-for-identity", "Too many sessions for this identity", "")
	}
	pr.Detail = "Airlock's " + string(le.Limit) + " limit of sessions is reached; try again when a session has ended"
	pr.RetryAfter = 1
	pr.write(w)
	return true
}
