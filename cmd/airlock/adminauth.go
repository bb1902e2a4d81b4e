package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/session/identity"
)

// adminProtocol labels the admin API's failed authentications in metrics
// and logs.
const adminProtocol = protocols.Protocol("admin")

type peerKey struct{}

// withPeer keeps each admin request's client address in its context, for
// adminAuth to count its failures by.
func withPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, r.RemoteAddr)))
	})
}

// adminAuth is the authenticator of the admin API (reviewers, reload,
// single sign-on's API): a wrong token is counted
// (airlock_auth_failures_total{protocol="admin"}), logged at a bounded
// rate and answered late by the gateway's throttle, as on the listeners.
type adminAuth struct {
	auth     protocols.Authenticator
	throttle *session.Throttle
	metrics  *session.Metrics
}

// Authenticate implements protocols.Authenticator.
func (a *adminAuth) Authenticate(ctx context.Context, name, secret string) (protocols.Identity, error) {
	id, err := a.auth.Authenticate(ctx, name, secret)
	if err != nil && !errors.Is(err, identity.ErrUnavailable) {
		peer, _ := ctx.Value(peerKey{}).(string)
		a.metrics.AuthFailure(adminProtocol, "token")
		a.throttle.Fail(ctx, adminProtocol, peer, name)
	}
	return id, err
}

var _ protocols.Authenticator = (*adminAuth)(nil)

// newAdminAuth makes the throttle the gateway and the admin API share
// (none when auth_throttle.disabled is set).
func (s *server) newAdminAuth() *adminAuth {
	a := &adminAuth{auth: s.auth, metrics: s.metrics}
	if !s.cfg.AuthThrottle.Disabled {
		a.throttle = session.NewThrottle(s.cfg.Throttle(), s.log.With("component", "auth"), s.reg)
		s.closers = append(s.closers, func() error { a.throttle.Flush(); return nil })
	}
	return a
}

// servesPprof reports whether the admin listener serves /debug/pprof/,
// and says why not when debug.pprof asked for it.
func (s *server) servesPprof() bool {
	if s.cfg.ServesPprof() {
		return true
	}
	if s.cfg.Debug.Pprof {
		s.log.Warn("debug.pprof is set but /debug/pprof/ is not served: the admin listener is not on loopback (set debug.pprof_any_address to serve it there)",
			"addr", s.cfg.Listen["admin"])
	}
	return false
}
