package main

import (
	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// limitsOf is the configuration's limits block with its defaults: the
// process's sessions are capped, when the file leaves it, at a quarter of
// the open-file limit (transport.DefaultMax), as the handshakes are, so
// that sessions and handshakes together cannot exhaust the descriptors.
func limitsOf(cfg *config.Config) session.Limits {
	l := session.Limits{Sessions: cfg.Limits.Sessions, PerIdentity: cfg.Limits.PerIdentity}
	if l.Sessions == 0 {
		l.Sessions = transport.DefaultMax()
	}
	return l
}
