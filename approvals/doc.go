// Package approvals holds risky commands for a human's approval, one exact
// statement at a time, and grants callers time-bounded access beyond one
// statement.
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
//	POST /api/access  {"connection", "role" | "overlay", "duration", "reason"}
//	GET  /api/access?status=…&limit=N               {"access": [AccessRequest…]}
//	GET  /api/access/{id}
//	POST /api/access/{id}/approve|deny|revoke       {"reason": "…"}
//	GET  /access, /access/{id}                      the access pages
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
// # Access requests and previews
//
// A caller asks for elevated access to a connection for a bounded time
// with a reason (RequestAccess): a configured role's policy overlay, or
// one of their own. The connection's reviewers decide it as they decide
// statements. An approved grant is active for its window; the Service's
// in-memory view of the grants in force (Grants, a
// protocols.AccessGrants) is rebuilt from the store on every change the
// store announces, when a grant ends and on every poll, and the session
// flow applies the grant's overlay to each command of its caller. When a
// command is sent to review, Review asks the session's previewer for a
// blast-radius preview, bounded by preview.timeout, and keeps it with the
// request (Request.Preview), in the decision and in webhooks.
//
// Concurrency: a Service is safe for concurrent use. Each held command
// blocks only its own session's goroutine; background goroutines started by
// Open (the store watcher, the sweeper, the grant view and the webhook
// workers) end with Close.
package approvals
