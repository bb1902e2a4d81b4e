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
// Reviewers decide through three channels served by Service.Handler on the
// admin listener: a JSON API under /api/approvals, a server-rendered web page
// under /approvals and, through that API, the CLI core RunCLI behind
// "airlock approvals". A webhook notifier announces new requests and their
// outcomes (JSON or Slack-compatible payloads).
//
// Requests live in a Store. OpenStore opens the embedded SQLite store or a
// PostgreSQL store shared by several replicas; every state change is a
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
