// Package httpproxy is Airlock's engine for HTTP connections (protocol:
// http): a credential-injecting reverse proxy for APIs, LLM providers,
// GraphQL endpoints and gRPC services, served on the gateway's HTTP
// listener (listen.http) beside the agent frontends, under
// /proxy/NAME/… and, with http.domain set, at the host NAME.<domain>.
//
// Every request is one command through the session flow: the caller's
// bearer token (or, for SDKs that send their key elsewhere, the
// connection's caller header) is admitted as on every listener; the
// request is classified (sqlrisk/httpreq: route rules, GraphQL
// operations, gRPC methods, method semantics) and decided; a refused one
// is answered with an RFC 9457 problem (403, or 409 with its approval
// request in retry mode, where the identical request — method, path,
// query and body, whose hash is the command's — runs once after
// approval; "Prefer: wait" or review: hold waits instead). An allowed
// request is forwarded with net/http/httputil's ReverseProxy and the
// connection's keep-alive transport, the caller's token removed and the
// held credential set (a header, basic auth, a query parameter, or an
// OAuth2 client-credentials token from golang.org/x/oauth2). Request
// bodies are masked before they leave where the connection says so (the
// LLM presets); response bodies are decoded from gzip, br, zstd or
// deflate and masked — JSON whole (paths, then detectors), text whole,
// JSON lines line by line, server-sent events event by event, gRPC
// messages one by one with a descriptor set — and the credential's values
// are scrubbed from headers and bodies wherever they would reach the
// caller. Each exchange is recorded with its headers (credentials
// removed), masked body samples, status and timing. WebSocket upgrades
// are decided once and relayed message by message (websocket.go).
//
// An Airlock session is a caller's use of a connection (sessions.go):
// sequential requests of one identity from one host share a session and
// its recording; concurrent requests take further sessions, which are kept
// idle between requests up to the caller's concurrency (bounded by
// Settings.SessionMaxIdlePerCaller) and reused rather than reopened.
//
// Concurrency: net/http runs each request on its own goroutine, which
// owns that request's session for the request's life (check, forward,
// record); the ReverseProxy's copy loop reads the upstream's body through
// the masking transform on the same goroutine. A WebSocket relay runs one
// goroutine per direction; they share only the session's recorder and
// masker, which are safe for concurrent use. Upstream connections belong
// to the connection's http.Transport, shared by all callers.
package httpproxy
