package approvals

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the approvals collectors. Label values come from fixed sets.
type metrics struct {
	total    *prometheus.CounterVec   // decision
	pending  prometheus.Gauge         //
	wait     *prometheus.HistogramVec // decision
	webhooks *prometheus.CounterVec   // outcome
	access   *prometheus.CounterVec   // event
	grants   prometheus.Gauge         //
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_approvals_total",
			Help: "Approval request events by decision (requested, approved, denied, expired, cancelled, consumed), counted by the replica that made the change.",
		}, []string{"decision"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_approvals_pending",
			Help: "Approval requests waiting for a decision in the store (all replicas).",
		}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_approval_wait_seconds",
			Help:    "Time from an approval request to its decision (approved, denied, expired or cancelled).",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}, []string{"decision"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_approval_webhooks_total",
			Help: "Webhook deliveries by outcome (delivered, failed, dropped).",
		}, []string{"outcome"}),
	}
	m.access = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airlock_access_requests_total",
		Help: "Access request events by event (requested, approved, denied, expired, ended, revoked), counted by the replica that made the change.",
	}, []string{"event"})
	m.grants = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "airlock_access_grants_active",
		Help: "Access grants in force, as this replica's view of the store holds them.",
	})
	for _, e := range []string{"requested", "approved", "denied", "expired", "ended", "revoked"} {
		m.access.WithLabelValues(e)
	}
	for _, d := range []string{"requested", "approved", "denied", "expired", "cancelled", "consumed"} {
		m.total.WithLabelValues(d)
	}
	for _, o := range []string{"delivered", "failed", "dropped"} {
		m.webhooks.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.total, m.pending, m.wait, m.webhooks, m.access, m.grants)
	}
	return m
}

// event counts one transition and, for decisions, how long it took.
func (m *metrics) event(decision string, r *Request, at time.Time) {
	m.total.WithLabelValues(decision).Inc()
	switch decision {
	case "approved", "denied", "expired", "cancelled":
		if r != nil && !r.CreatedAt.IsZero() {
			m.wait.WithLabelValues(decision).Observe(max(at.Sub(r.CreatedAt).Seconds(), 0))
		}
	}
}
