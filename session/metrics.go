package session

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// Metrics are the engines' and the session flow's Prometheus collectors. Labels
// are bounded sets: protocol, connection (from config), action, risk and a
// fixed reason vocabulary; never a statement, user input or an error string.
// A nil *Metrics is valid and counts nothing.
type Metrics struct {
	Connections *prometheus.CounterVec // protocol, connection, outcome
	Active      *prometheus.GaugeVec   // protocol, connection
	Commands    *prometheus.CounterVec // protocol, connection, action, risk, enforced
	// GrantedCommands counts commands decided under an access grant, by
	// effect: lifted (the grant changed the policy's action) or unchanged.
	GrantedCommands *prometheus.CounterVec   // protocol, connection, effect
	CommandSeconds  *prometheus.HistogramVec // protocol, connection
	Classify        *prometheus.HistogramVec // protocol
	UpstreamErrors  *prometheus.CounterVec   // protocol, connection
	AuthFailures    *prometheus.CounterVec   // protocol, reason
	// UpstreamSessions counts upstream sessions handed to clients, by
	// source: dialed (a new upstream session) or reused (kept from a
	// client that ended cleanly); UpstreamIdle is how many are kept idle.
	UpstreamSessions *prometheus.CounterVec // protocol, connection, source
	UpstreamIdle     *prometheus.GaugeVec   // protocol
	// HandshakesDropped counts connections closed, before they had
	// authenticated, to make room under the cap on such connections.
	HandshakesDropped *prometheus.CounterVec // protocol
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_connections_total",
			Help: "Client connections by outcome (accepted, rejected, limited, error).",
		}, []string{"protocol", "connection", "outcome"}),
		Active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "airlock_active_sessions",
			Help: "Client sessions currently open.",
		}, []string{"protocol", "connection"}),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_commands_total",
			Help: "Commands decided, by action and risk; enforced=\"false\" counts audit mode's decisions by the policy's action, though the commands ran.",
		}, []string{"protocol", "connection", "action", "risk", "enforced"}),
		GrantedCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_granted_commands_total",
			Help: "Commands decided under an access grant, by effect: lifted (the grant changed the policy's action) or unchanged.",
		}, []string{"protocol", "connection", "effect"}),
		CommandSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_command_duration_seconds",
			Help:    "Time from a command's arrival to the end of its result, as seen by Airlock.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"protocol", "connection"}),
		Classify: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_classify_duration_seconds",
			Help:    "Time to classify one command (cache hits included).",
			Buckets: prometheus.ExponentialBuckets(0.000001, 4, 10),
		}, []string{"protocol"}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_upstream_errors_total",
			Help: "Failures to reach or talk to an upstream.",
		}, []string{"protocol", "connection"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_auth_failures_total",
			Help: "Rejected client authentications by reason: token (wrong name or secret), connection (unknown or not allowed), tls (a secret in clear from another machine), protocol (a malformed handshake).",
		}, []string{"protocol", "reason"}),
		UpstreamSessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_upstream_sessions_total",
			Help: "Upstream sessions handed to clients, by source (dialed, reused).",
		}, []string{"protocol", "connection", "source"}),
		UpstreamIdle: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "airlock_upstream_idle_sessions",
			Help: "Upstream sessions kept idle for reuse.",
		}, []string{"protocol"}),
		HandshakesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_handshakes_dropped_total",
			Help: "Connections closed before they authenticated, the oldest first, to stay under the cap on such connections (handshake.max_pending).",
		}, []string{"protocol"}),
	}
	if reg != nil {
		reg.MustRegister(m.Connections, m.Active, m.Commands, m.GrantedCommands, m.CommandSeconds, m.Classify, m.UpstreamErrors, m.AuthFailures,
			m.UpstreamSessions, m.UpstreamIdle, m.HandshakesDropped)
	}
	return m
}

func (m *Metrics) observeClassify(s *Session, d time.Duration) {
	if m == nil {
		return
	}
	if s.classifyObs == nil {
		s.classifyObs = m.Classify.WithLabelValues(string(s.Info.Protocol))
	}
	s.classifyObs.Observe(d.Seconds())
}

func (m *Metrics) countCommand(s *Session, a protocols.Action, r protocols.Risk) {
	if m == nil {
		return
	}
	ai := 0
	switch a {
	case protocols.Review:
		ai = 1
	case protocols.Deny:
		ai = 2
	}
	enforced := "true"
	if s.audit {
		enforced = "false"
	}
	if r > protocols.RiskCritical {
		m.Commands.WithLabelValues(string(s.Info.Protocol), s.Info.Connection, string(a), r.String(), enforced).Inc()
		return
	}
	// A session's commands are all enforced or all audited, so the
	// resolved children need no enforced index.
	c := s.commands[ai][r]
	if c == nil {
		c = m.Commands.WithLabelValues(string(s.Info.Protocol), s.Info.Connection, string(a), r.String(), enforced)
		s.commands[ai][r] = c
	}
	c.Inc()
}

func (m *Metrics) countGranted(s *Session, lifted bool) {
	if m == nil {
		return
	}
	effect := "unchanged"
	if lifted {
		effect = "lifted"
	}
	m.GrantedCommands.WithLabelValues(string(s.Info.Protocol), s.Info.Connection, effect).Inc()
}

// observeCommand records the duration of a command whose result completed.
// It is called from one goroutine per session (the one reading results).
func (m *Metrics) observeCommand(s *Session, d time.Duration) {
	if m == nil {
		return
	}
	if s.duration == nil {
		s.duration = m.CommandSeconds.WithLabelValues(string(s.Info.Protocol), s.Info.Connection)
	}
	s.duration.Observe(d.Seconds())
}

// Connection counts a client connection attempt's outcome on connection
// (empty when the client never named a valid one).
func (m *Metrics) Connection(p protocols.Protocol, connection, outcome string) {
	if m == nil {
		return
	}
	m.Connections.WithLabelValues(string(p), connection, outcome).Inc()
}

// SessionOpened and SessionClosed track the active sessions gauge.
func (m *Metrics) SessionOpened(p protocols.Protocol, connection string) {
	if m == nil {
		return
	}
	m.Active.WithLabelValues(string(p), connection).Inc()
}

// SessionClosed decrements the active sessions gauge.
func (m *Metrics) SessionClosed(p protocols.Protocol, connection string) {
	if m == nil {
		return
	}
	m.Active.WithLabelValues(string(p), connection).Dec()
}

// UpstreamError counts a failure to reach or talk to an upstream.
func (m *Metrics) UpstreamError(p protocols.Protocol, connection string) {
	if m == nil {
		return
	}
	m.UpstreamErrors.WithLabelValues(string(p), connection).Inc()
}

// AuthFailure counts a rejected authentication; reason is one of a fixed set.
func (m *Metrics) AuthFailure(p protocols.Protocol, reason string) {
	if m == nil {
		return
	}
	m.AuthFailures.WithLabelValues(string(p), reason).Inc()
}

// UpstreamSession counts an upstream session handed to a client.
func (m *Metrics) UpstreamSession(p protocols.Protocol, connection string, reused bool) {
	if m == nil {
		return
	}
	source := "dialed"
	if reused {
		source = "reused"
	}
	m.UpstreamSessions.WithLabelValues(string(p), connection, source).Inc()
}

// UpstreamIdleSessions sets how many upstream sessions are kept idle.
func (m *Metrics) UpstreamIdleSessions(p protocols.Protocol, n int) {
	if m == nil {
		return
	}
	m.UpstreamIdle.WithLabelValues(string(p)).Set(float64(n))
}

// HandshakeDropped counts a connection dropped before it authenticated.
func (m *Metrics) HandshakeDropped(p protocols.Protocol) {
	if m == nil {
		return
	}
	m.HandshakesDropped.WithLabelValues(string(p)).Inc()
}
