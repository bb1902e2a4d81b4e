package identity

import (
	"context"
	"errors"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// ShortLivedPrefix starts every short-lived login credential, so that the
// Authenticator asks the credential store only about secrets of that shape
// and people and secret scanners can tell one from a static token.
const ShortLivedPrefix = "airlock_sso_"

// IsShortLived reports whether secret has the shape of a short-lived
// credential.
func IsShortLived(secret string) bool { return strings.HasPrefix(secret, ShortLivedPrefix) }

// ErrUnknownCredential is returned by a CredentialStore for a secret it
// never issued; the Authenticator then tries the secret as a static token.
var ErrUnknownCredential = errors.New("unknown short-lived credential")

// CredentialStore checks short-lived login credentials, which single sign-on
// issues (package sso) and which are kept in the shared store as hashes.
type CredentialStore interface {
	// Check returns the identity secret was issued to and its lease: a
	// cheap check, safe for concurrent use, of whether it may still run
	// commands (not revoked, not past its expiry and the grace open
	// sessions get). A revoked or expired credential is an error other
	// than ErrUnknownCredential.
	Check(ctx context.Context, secret string) (protocols.Identity, func() error, error)
	// Lease returns the lease of a credential Check accepted, or nil when
	// secret is not one.
	Lease(secret string) func() error
}

// CredentialProver is a CredentialStore that can check a proof of knowing
// a short-lived credential without the credential itself (MySQL's
// caching_sha2_password scramble), against the SHA-256 it stores.
type CredentialProver interface {
	// Prove returns the identity and lease of the live credential of name
	// that verify accepts; ErrUnknownCredential when none does. It calls
	// verify at least once whether or not name has credentials.
	Prove(ctx context.Context, name string, verify func(tokenSHA256 [32]byte) bool) (protocols.Identity, func() error, error)
}

// AuthenticateProofLease is AuthenticateProof that also accepts a proof of
// one of name's short-lived credentials, when the credential store can
// check one, and returns the lease of the session it admits (nil for a
// static token). The store is asked whenever no static token matches,
// whatever the name, so that the time taken does not tell a static
// identity's name from another. It implements session.ProofLeaser.
func (a *Authenticator) AuthenticateProofLease(ctx context.Context, name string, verify func(tokenSHA256 [32]byte) bool) (protocols.Identity, func() error, error) {
	if id, ok := a.tokens.prove(name, verify); ok {
		return id, nil, nil
	}
	p, ok := a.creds.(CredentialProver)
	if !ok || name == "" {
		_, err := a.refuse(ctx, "static token proof does not match", "")
		return protocols.Identity{}, nil, err
	}
	id, lease, err := p.Prove(ctx, name, verify)
	switch {
	case errors.Is(err, ErrUnknownCredential):
		_, err = a.refuse(ctx, "proof matches no static token or short-lived credential", "")
		return protocols.Identity{}, nil, err
	case err != nil:
		a.log.DebugContext(ctx, "authentication refused", "method", "short-lived proof", "reason", err.Error())
		return protocols.Identity{}, nil, protocols.ErrAuthFailed
	case a.tokens.has(id.Name) || id.Name != name:
		_, err = a.refuse(ctx, "short-lived credential's name does not match", id.Name)
		return protocols.Identity{}, nil, err
	}
	return id, lease, nil
}

// SetCredentials makes a accept the short-lived credentials of store, on
// every listener. Call it before a is used.
func (a *Authenticator) SetCredentials(store CredentialStore) { a.creds = store }

// authenticateShortLived checks a short-lived credential. ok is false when
// the store does not know it, so that the caller tries it as a static
// token.
func (a *Authenticator) authenticateShortLived(ctx context.Context, name, secret string) (id protocols.Identity, ok bool, err error) {
	id, _, err = a.creds.Check(ctx, secret)
	switch {
	case errors.Is(err, ErrUnknownCredential):
		return protocols.Identity{}, false, nil
	case err != nil:
		if ctx.Err() != nil {
			return protocols.Identity{}, true, errors.Join(protocols.ErrAuthFailed, ctx.Err())
		}
		a.log.DebugContext(ctx, "authentication refused", "method", "short-lived", "reason", err.Error())
		return protocols.Identity{}, true, protocols.ErrAuthFailed
	case a.tokens.has(id.Name):
		// Issuing refuses such a name; this guards a store shared with a
		// configuration that has since gained the static identity.
		_, err = a.refuse(ctx, "short-lived credential names a static identity", id.Name)
		return protocols.Identity{}, true, err
	case name != "" && name != id.Name:
		_, err = a.refuse(ctx, "given name does not match the short-lived credential's", id.Name)
		return protocols.Identity{}, true, err
	}
	return id, true, nil
}

// Lease returns the check an open session runs before each command when it
// was admitted with secret: nil for static tokens and JWTs, whose sessions
// are not ended by Airlock, and for short-lived credentials the store's
// lease. It implements session.Leaser.
func (a *Authenticator) Lease(secret string) func() error {
	if a.creds == nil || !IsShortLived(secret) {
		return nil
	}
	if l := a.creds.Lease(secret); l != nil {
		return l
	}
	if _, static := a.tokens.find(secret); static {
		return nil // a static token that happens to have the prefix
	}
	// Accepted a moment ago but no longer known (purged meanwhile): fail
	// closed rather than run without a lease.
	return func() error {
		return errors.New("the login credential is no longer valid; sign in again (airlock login)")
	}
}

// IsStatic reports whether name belongs to a static identity: single
// sign-on refuses to issue credentials under such a name.
func (a *Authenticator) IsStatic(name string) bool { return a.tokens.has(name) }
