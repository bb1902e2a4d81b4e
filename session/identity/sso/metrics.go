package sso

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts sign-ins and credential use by provider, a bounded set
// from the configuration; never by person.
type Metrics struct {
	logins *prometheus.CounterVec
	issue  *prometheus.CounterVec
	checks *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_sso_logins_total",
			Help: "Single sign-on attempts by provider, flow (web, cli, device) and result (ok, refused, error).",
		}, []string{"provider", "flow", "result"}),
		issue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_sso_credentials_issued_total",
			Help: "Short-lived credentials issued by provider and purpose (cli, web).",
		}, []string{"provider", "purpose"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_sso_credential_checks_total",
			Help: "Logins with a short-lived credential by provider and result (ok, expired, revoked).",
		}, []string{"provider", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.logins, m.issue, m.checks)
	}
	return m
}

func (m *Metrics) login(provider, flow, result string) {
	if m != nil {
		m.logins.WithLabelValues(provider, flow, result).Inc()
	}
}

func (m *Metrics) issued(provider, purpose string) {
	if m != nil {
		m.issue.WithLabelValues(provider, purpose).Inc()
	}
}

func (m *Metrics) checked(provider, result string) {
	if m != nil {
		m.checks.WithLabelValues(provider, result).Inc()
	}
}
