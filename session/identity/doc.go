// Package identity authenticates Airlock's callers. It implements
// protocols.Authenticator for every engine and an HTTP middleware for the
// admin API and the HTTP gateway.
//
// A caller proves who they are with a secret handed over by their own client:
// the Postgres or MySQL password, the token of Redis `AUTH identity token`, or
// an HTTP `Authorization: Bearer` header (RFC 6750). The secret is one of:
//
//   - a static token of a machine identity listed in the configuration. Only
//     its SHA-256 is stored (see HashToken) and it is compared in constant
//     time; a lookup for an unknown name costs the same as one for a known
//     name, and a lookup without a name (HTTP) compares against every
//     identity without stopping early.
//   - an OpenID Connect JWT (RFC 7519) signed by the configured issuer and
//     verified with github.com/coreos/go-oidc/v3 against the issuer's JWKS,
//     found by discovery (OpenID Connect Discovery 1.0) or configured
//     directly. The identity's name and groups come from configurable claims.
//   - a short-lived credential (ShortLivedPrefix) that single sign-on issued
//     (package sso), checked by the CredentialStore set with SetCredentials;
//     its lease (Lease, session.Leaser) ends the sessions it opened when it
//     expires or is revoked. A store that is a CredentialProver also checks
//     proofs of knowing one (AuthenticateProofLease, MySQL's scramble).
//
// A secret shaped like a compact JWS (three base64url segments, the first a
// JSON header) is tried only as an OIDC token when OIDC is configured; any
// other secret only as a static token. Either way a failure is reported as
// protocols.ErrAuthFailed and never says whether the name or the secret was
// wrong; the reason goes to the injected logger at debug level, without the
// secret.
//
// OIDC discovery and key fetches never crash the process: a failure at
// startup is logged and retried on a later authentication (at most every
// few seconds), and JWTs fail closed meanwhile with an error that wraps both
// protocols.ErrAuthFailed and ErrUnavailable. Key fetches for unknown key ids
// are throttled, so a stream of forged tokens cannot turn Airlock into a load
// generator against the identity provider.
//
// An Authenticator is safe for concurrent use. Authentication results are not
// cached.
package identity
