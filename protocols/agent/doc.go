// Package agent is Airlock's HTTP frontend for agents: a versioned JSON
// query API (/v1, described by /v1/openapi.json) and a Model Context
// Protocol endpoint (/mcp, Streamable HTTP, on the official Go SDK
// github.com/modelcontextprotocol/go-sdk). Both run commands on the
// configured connections through the same session flow as the wire
// protocols (package session): the statement inside a request or tool call
// is classified by the same classifier, decided by the connection's policy,
// its rows masked, and the whole recorded and counted.
//
// Specifications: MCP https://modelcontextprotocol.io/specification
// (2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28); problem details RFC 9457; bearer
// tokens RFC 6750; protected resource metadata RFC 9728.
//
// Callers authenticate with "Authorization: Bearer <token or OIDC JWT>",
// the identities of the wire listeners. A connection is usable by the
// identities its allow list names; one that is not is answered exactly
// like one that does not exist.
//
// # Sessions and upstreams
//
// A query API request is one session: admitted, started (its recording
// opened), its command run, closed. An MCP session holds one session per
// connection it uses, opened at its first tool call on that connection and
// closed with the MCP session (a DELETE, its idle timeout, shutdown); its
// tool calls are that session's commands. Under protocol 2026-07-28, which
// has no sessions, each call is a session of its own. A session dials its
// upstream with the connection's engine (engine.Executor) when its first
// command is allowed, keeps it while it lives and never shares it: no
// upstream session serves two identities or two MCP sessions.
//
// # Approvals
//
// The frontend's gateway resolves reviews in retry mode whatever the
// configured mode (approvals.Service.Retrying): a command that needs an
// approval is answered at once as pending with the request's id; the
// caller waits for the decision (GET /v1/approvals/{id}?wait=30s, the MCP
// tool wait_for_approval, which sends progress notifications while it
// waits) and sends the identical command again, which then runs once.
//
// # Concurrency
//
// net/http runs each request on its own goroutine. A session runs one
// command at a time (its mutex): concurrent tool calls of one MCP session
// on one connection queue, as statements on one wire connection do. The
// upstream socket belongs to the session's runner and is used only under
// that mutex.
package agent
