// Package login is the client side of single sign-on: `airlock login` and
// `airlock logout`.
//
// login asks the admin listener which identity providers it offers, signs
// the person in through the browser (a loopback redirect to 127.0.0.1 and a
// one-time code redeemed with a PKCE verifier, RFC 8252 §7.3 and RFC 7636)
// or, with --device, through the OAuth device authorization grant (RFC
// 8628) that Airlock brokers, and receives a short-lived credential. It
// then writes client settings that carry only that credential, each file
// created with mode 0600: a ~/.pgpass entry and a ~/.pg_service.conf
// service per PostgreSQL connection, a ~/.my.cnf option group per MySQL
// connection, a REDISCLI_AUTH line for redis-cli and an MCP client
// snippet. In files people share with other tools only Airlock's own
// marked block is ever changed. logout revokes the credential and removes
// what login wrote.
package login
