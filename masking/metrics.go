package masking

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the masking collectors. A nil *Metrics is valid and counts
// nothing.
type Metrics struct {
	// Masked counts masked values by connection and entity: a detector's
	// name (email, payment_card, …) per masked occurrence, or "column" per
	// value masked by a column rule. Both labels come from config and a
	// fixed vocabulary, never from data.
	Masked *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_masked_values_total",
			Help: "Sensitive values masked in results and messages, by entity (a detector's name, or column for column rules).",
		}, []string{"connection", "entity"}),
	}
	if reg != nil {
		reg.MustRegister(m.Masked)
	}
	return m
}
