// Package sso signs people in with their company's single sign-on and
// issues them short-lived Airlock credentials.
//
// Two kinds of identity provider are supported, each configured by name:
//
//   - OpenID Connect (OpenID Connect Core 1.0) with the authorization code
//     flow and PKCE (RFC 7636), and the device authorization grant (RFC 8628)
//     for terminals without a browser, on github.com/coreos/go-oidc/v3 and
//     golang.org/x/oauth2. Airlock is the confidential client: the client
//     secret never leaves it.
//   - SAML 2.0 Web Browser SSO, SP-initiated, HTTP-Redirect request and
//     HTTP-POST response (saml-profiles-2.0-os §4.1), on
//     github.com/crewjam/saml. IdP-initiated responses are refused.
//
// The browser flows run on the admin listener (Handler): the reviewers' page
// signs in with them, and `airlock login` completes them through a loopback
// redirect to the CLI (RFC 8252 §7.3) with a one-time code bound to the
// CLI's PKCE challenge. The device flow is brokered: the CLI asks Airlock,
// Airlock asks the identity provider.
//
// Every successful sign-in ends in a short-lived credential (Store): a
// random secret with ShortLivedPrefix, bound to the person's name, groups
// and provider, kept in the shared SQL store only as its SHA-256, so that
// every replica accepts it. The identity.Authenticator accepts it on every
// listener, with Method "sso:<provider>" so recordings, approvals and logs
// name the provider. A credential expires after its lifetime (new logins
// refused at once); open sessions get a grace and are then refused command
// by command through the session's lease (session.Leaser). Revocation is
// immediate on the replica that revokes and reaches the others within the
// revocation poll interval.
//
// Sign-in state (OIDC state, nonce and PKCE verifier; SAML request IDs; CLI
// exchange codes; device codes) lives in the shared store too, keyed by a
// hash and taken exactly once, so a callback may land on any replica and
// none can be replayed. A browser is bound to the sign-in it started by a
// cookie whose hash the state holds, so an attacker cannot complete a
// sign-in in someone else's browser. SAML assertion IDs are remembered
// until they expire (the replay cache).
package sso
