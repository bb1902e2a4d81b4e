package main

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/session/identity"
)

// liveAuth is the identities in force, replaced whole by a reload: every
// listener, the admin API and single sign-on authenticate through it, so a
// reload reaches them all at once.
type liveAuth struct {
	cur atomic.Pointer[identity.Authenticator]

	mu    sync.Mutex
	creds identity.CredentialStore // given to each authenticator swapped in
}

func newLiveAuth(a *identity.Authenticator) *liveAuth {
	l := &liveAuth{}
	l.cur.Store(a)
	return l
}

// swap puts a in force, with the short-lived credentials of the one before.
func (l *liveAuth) swap(a *identity.Authenticator) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.creds != nil {
		a.SetCredentials(l.creds)
	}
	l.cur.Store(a)
}

// Authenticate implements protocols.Authenticator.
func (l *liveAuth) Authenticate(ctx context.Context, name, secret string) (protocols.Identity, error) {
	return l.cur.Load().Authenticate(ctx, name, secret)
}

// AuthenticateProof implements session.ProofAuthenticator.
func (l *liveAuth) AuthenticateProof(name string, verify func([32]byte) bool) (protocols.Identity, error) {
	return l.cur.Load().AuthenticateProof(name, verify)
}

// AuthenticateProofLease implements session.ProofLeaser.
func (l *liveAuth) AuthenticateProofLease(ctx context.Context, name string, verify func([32]byte) bool) (protocols.Identity, func() error, error) {
	return l.cur.Load().AuthenticateProofLease(ctx, name, verify)
}

// Lease implements session.Leaser.
func (l *liveAuth) Lease(secret string) func() error { return l.cur.Load().Lease(secret) }

// IsStatic reports whether name is a static identity now.
func (l *liveAuth) IsStatic(name string) bool { return l.cur.Load().IsStatic(name) }

// Discover checks the OIDC issuer of the identities in force.
func (l *liveAuth) Discover(ctx context.Context) error { return l.cur.Load().Discover(ctx) }

// SetCredentials makes the authenticators accept short-lived credentials.
func (l *liveAuth) SetCredentials(st identity.CredentialStore) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.creds = st
	l.cur.Load().SetCredentials(st)
}

var (
	_ protocols.Authenticator    = (*liveAuth)(nil)
	_ session.ProofAuthenticator = (*liveAuth)(nil)
	_ session.Leaser             = (*liveAuth)(nil)
	_ session.ProofLeaser        = (*liveAuth)(nil)
)
