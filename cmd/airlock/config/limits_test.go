package config

import (
	"testing"

	"github.com/airlock-gw/airlock/session"
)

func TestMaxSessionsReachesTheEngines(t *testing.T) {
	five, zero := 5, 0
	for _, tc := range []struct {
		name string
		max  *int
		want int
	}{
		{"left out: the protocol's default", nil, 0},
		{"0: no cap", &zero, session.NoSessionCap},
		{"a cap", &five, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cn := &Connection{Name: "main", Protocol: "postgres", MaxSessions: tc.max}
			if got := cn.ProtocolConnection().MaxSessions; got != tc.want {
				t.Fatalf("MaxSessions = %d, want %d", got, tc.want)
			}
		})
	}
}
