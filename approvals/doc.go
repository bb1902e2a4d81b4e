// Package approvals holds risky commands for a human's approval, one exact
// statement at a time.
//
// When a connection's policy answers review, the engine calls
// Service.Review (a protocols.Approver). The Service records an approval
// Request carrying the caller, the connection, the redacted command text and
// the SHA-256 of the exact command, then either holds the command on the wire
// until reviewers decide (hold mode, the default) or refuses it at once and
// lets the caller retry the identical command once it is approved (retry
// mode, for agents). An approval is bound to one identity, one connection and
// one command hash, and it is used at most once.
//
// # Reviewers' channels
//
// Service.Handler serves, on the admin listener:
//
//	GET  /api/approvals?status=pending[,…]&limit=N   {"approvals": [Request…]}
//	GET  /api/approvals/{id}                        Request
//	POST /api/approvals/{id}/approve  {"reason": "…"} (body optional)
//	POST /api/approvals/{id}/deny     {"reason": "…"} (reason required)
//	GET  /approvals, /approvals/{id}                the review pages
//	GET  /approvals/login, POST /approvals/login, POST /approvals/logout
//
// Errors are JSON {"error": "…"}: 400 malformed input, 401 no or bad token,
// 403 not a reviewer (or self-approval, or a CSRF failure), 404 unknown id,
// 409 already decided, expired or already voted, 503 identity provider
// down. A decision is committed before it is acknowledged.
//
// API clients send "Authorization: Bearer <identity token or OIDC JWT>".
// Browsers sign in once through the form; the token then lives in an
// HttpOnly, SameSite=Strict cookie (Secure with the __Host- prefix when the
// admin URL is https), re-verified on every request. State changes made
// with the cookie carry a CSRF token derived from it by HMAC and pass
// net/http's CrossOriginProtection. Tokens never appear in URLs. RunCLI is
// the core of "airlock approvals list|show|approve|deny", a client of the
// same API. A webhook notifier announces new requests and their outcomes
// (JSON or Slack-compatible payloads) without ever delaying a session.
//
// # Storage
//
// Requests live in a Store. OpenStore keeps them in the shared database
// (session/sqldb: embedded SQLite, or a PostgreSQL shared by several
// replicas); every state change is a
// conditional UPDATE (… WHERE status = 'pending') inside a transaction, so
// racing reviewers, retries and replicas cannot decide or consume a request
// twice. With PostgreSQL a decision taken on any replica wakes the session
// held on another through LISTEN/NOTIFY, with a slow poll as a safety net.
//
// Concurrency: a Service is safe for concurrent use. Each held command
// blocks only its own session's goroutine; background goroutines started by
// Open (the store watcher, the sweeper and the webhook workers) end with
// Close.
package approvals
