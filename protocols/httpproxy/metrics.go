package httpproxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// metrics are the HTTP connections' own collectors, beside the session
// flow's (commands, durations, sessions, all labelled protocol="http").
// Labels are bounded: connection names and identity names come from the
// configuration (a caller known only from an OIDC token counts as
// "oidc"), model names from a connection's models list or "other".
type metrics struct {
	responses *prometheus.CounterVec // connection, code: 2xx, 3xx, 4xx, 5xx
	tokens    *prometheus.CounterVec // connection, identity, model, kind: input or output
	toolCalls *prometheus.CounterVec // connection, risk
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airlock_http_responses_total",
			Help: "Responses to requests on HTTP connections, by status class."}, []string{"protocol", "connection", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airlock_llm_tokens_total",
			Help: "Tokens an LLM provider reported using, by identity and model."}, []string{"protocol", "connection", "identity", "model", "kind"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airlock_llm_tool_calls_total",
			Help: "Tool calls models returned, by the risk of the SQL they carry (none without SQL)."}, []string{"protocol", "connection", "risk"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.responses, m.tokens, m.toolCalls} {
			if err := reg.Register(c); err != nil {
				if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
					switch c {
					case m.responses:
						m.responses = are.ExistingCollector.(*prometheus.CounterVec)
					case m.tokens:
						m.tokens = are.ExistingCollector.(*prometheus.CounterVec)
					case m.toolCalls:
						m.toolCalls = are.ExistingCollector.(*prometheus.CounterVec)
					}
				}
			}
		}
	}
	return m
}

var codeClasses = [...]string{"1xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) response(conn string, status int) {
	c := status / 100
	if c < 1 || c > 5 {
		return
	}
	m.responses.WithLabelValues(string(protocols.HTTP), conn, codeClasses[c]).Inc()
}

// identityLabel is the identity's name where the configuration names it,
// "oidc" for callers known from a token's claims only.
func identityLabel(id protocols.Identity) string {
	if id.Method == "oidc" {
		return "oidc"
	}
	return id.Name
}
