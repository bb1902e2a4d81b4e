package session

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// ErrTooManySessions: a session cap is reached (the process's, the
// identity's or the connection's). It is wrapped in a *LimitError, itself
// in an *AdmitError; each engine answers it with its protocol's own "too
// many connections" error.
var ErrTooManySessions = errors.New("too many sessions")

// Limit names which cap refused a session.
type Limit string

// The caps a session counts against.
const (
	// LimitGlobal is every session of the process (limits.sessions).
	LimitGlobal Limit = "global"
	// LimitIdentity is the sessions of one identity (limits.per_identity).
	LimitIdentity Limit = "identity"
	// LimitConnection is the sessions of one connection, each of which
	// holds an upstream session (connections[].max_sessions).
	LimitConnection Limit = "connection"
)

// LimitError is a session refused by a cap.
type LimitError struct {
	Limit Limit
	// Max is the cap that was reached.
	Max int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many sessions: the %s limit of %d is reached", e.Limit, e.Max)
}

// Unwrap returns ErrTooManySessions.
func (e *LimitError) Unwrap() error { return ErrTooManySessions }

// DefaultMaxSessions is the cap on a PostgreSQL or MySQL connection's
// sessions when its max_sessions is left out: well below the servers'
// default max_connections (100 and 151), so that the slots a server
// reserves for its superusers (superuser_reserved_connections, MySQL's
// extra SUPER/CONNECTION_ADMIN slot) and the postgres engine's idle pool
// (pool.max_idle, 16) stay clear of Airlock's clients. The engines lower it
// to what the server has (Gateway.LearnSessionCap). Other protocols have
// no default cap.
const DefaultMaxSessions = 64

// NoSessionCap as a Connection's MaxSessions turns its cap off.
const NoSessionCap = -1

// Limits are the process-wide caps; 0 is no cap.
type Limits struct {
	// Sessions caps every session of the process at once.
	Sessions int
	// PerIdentity caps the sessions of one identity at once.
	PerIdentity int
}

// Limiter counts sessions against their caps. It is shared by every
// gateway of the process (Options.Limiter); a nil *Limiter caps nothing.
// It is safe for concurrent use.
type Limiter struct {
	mu          sync.Mutex
	limits      Limits
	total       int
	identities  map[string]int
	connections map[string]int
	// learned are the caps engines read from their servers, by connection
	// (Gateway.LearnSessionCap); they lower a default cap, never a
	// configured one.
	learned map[string]int
	refused *prometheus.CounterVec // protocol, limit
}

// NewLimiter returns a Limiter with the caps l; it registers its counter
// of refused sessions and its gauge of slots held with reg when reg is not
// nil.
func NewLimiter(l Limits, reg prometheus.Registerer) *Limiter {
	lm := &Limiter{limits: l, identities: map[string]int{}, connections: map[string]int{}, learned: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_sessions_limited_total",
			Help: "Sessions refused because a cap was reached, by limit (global, identity, connection).",
		}, []string{"protocol", "limit"})}
	used := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "airlock_session_slots",
		Help: "Sessions holding a slot of the session limits: admitted and not yet ended.",
	}, func() float64 {
		total, _, _ := lm.InUse("", "")
		return float64(total)
	})
	if reg != nil {
		reg.MustRegister(lm.refused, used)
	}
	return lm
}

// SetLimits replaces the process-wide caps (a reload); sessions already
// open stay open.
func (l *Limiter) SetLimits(lim Limits) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.limits = lim
	l.mu.Unlock()
}

// InUse returns how many sessions hold a slot: in all, of identity and of
// connection.
func (l *Limiter) InUse(identity, connection string) (total, ofIdentity, ofConnection int) {
	if l == nil {
		return 0, 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.identities[identity], l.connections[connection]
}

// ConnectionCap is the cap on conn's sessions: its MaxSessions, the
// protocol's default when that is 0, and 0 (no cap) when there is none.
func ConnectionCap(conn *protocols.Connection) int {
	switch {
	case conn.MaxSessions > 0:
		return conn.MaxSessions
	case conn.MaxSessions < 0:
		return 0
	case conn.Protocol == protocols.Postgres || conn.Protocol == protocols.MySQL:
		return DefaultMaxSessions
	}
	return 0
}

// acquire takes a slot for a session of identity on conn, or returns a
// *LimitError. The function it returns gives the slot back; it may be
// called any number of times.
func (l *Limiter) acquire(identity string, conn *protocols.Connection) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	connCap := ConnectionCap(conn)
	if n := l.learned[conn.Name]; n > 0 && conn.MaxSessions == 0 && (connCap == 0 || n < connCap) {
		connCap = n
	}
	var refused *LimitError
	switch {
	case l.limits.Sessions > 0 && l.total >= l.limits.Sessions:
		refused = &LimitError{Limit: LimitGlobal, Max: l.limits.Sessions}
	case l.limits.PerIdentity > 0 && l.identities[identity] >= l.limits.PerIdentity:
		refused = &LimitError{Limit: LimitIdentity, Max: l.limits.PerIdentity}
	case connCap > 0 && l.connections[conn.Name] >= connCap:
		refused = &LimitError{Limit: LimitConnection, Max: connCap}
	}
	if refused != nil {
		l.mu.Unlock()
		l.refused.WithLabelValues(string(conn.Protocol), string(refused.Limit)).Inc()
		return nil, refused
	}
	l.total++
	l.identities[identity]++
	l.connections[conn.Name]++
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { l.put(identity, conn.Name) }) }, nil
}

// put gives back one slot of identity on connection.
func (l *Limiter) put(identity, connection string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.identities[identity]--; l.identities[identity] <= 0 {
		delete(l.identities, identity)
	}
	if l.connections[connection]--; l.connections[connection] <= 0 {
		delete(l.connections, connection)
	}
}

// LearnSessionCap gives connection's sessions a cap read from its server
// (the connection slots it leaves to clients that are not superusers, less
// what the engine keeps idle): it lowers the default cap of a connection
// without max_sessions, and does nothing to a configured one.
func (g *Gateway) LearnSessionCap(connection string, n int) {
	l := g.opt.Limiter
	if l == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	l.learned[connection] = n
	l.mu.Unlock()
}

// reserve takes the slot of an admitted caller's session, counting a
// refusal as a connection limited. A Renewal takes none.
func (g *Gateway) reserve(c Caller, id protocols.Identity, conn *protocols.Connection) (func(), *AdmitError) {
	if c.Renewal {
		return func() {}, nil
	}
	release, err := g.opt.Limiter.acquire(id.Name, conn)
	if err != nil {
		g.opt.Metrics.Connection(c.Protocol, conn.Name, "limited")
		g.log.Warn("session refused: limit reached", "protocol", string(c.Protocol), "connection", conn.Name,
			"identity", id.Name, "client", c.Peer, "err", err)
		return nil, &AdmitError{Err: err, Identity: id.Name, Connection: conn.Name}
	}
	return release, nil
}

// Release gives back the slot of an admitted session that will not start
// (its client went away before the upstream was dialed, or the caller was
// only proving its identity again). Abort, Close and a failed Start call it
// too; later calls do nothing.
func (s *Session) Release() {
	if s.release != nil {
		s.release()
	}
}
