// Package ssotest runs real identity providers in a test's process: an
// OpenID provider on github.com/zitadel/oidc's example server (code flow
// with PKCE, device authorization, userinfo) and a SAML identity provider on
// github.com/crewjam/saml's samlidp. Only tests import it.
package ssotest
