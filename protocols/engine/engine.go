// Package engine is the contract between the gateway binary and its
// protocol engines. An engine is one folder under protocols/ (its wire
// codec, its state machine, its upstream dialing); the binary registers it
// with one line and then knows nothing else of it: the engine decodes and
// checks its own section of the configuration and its connections'
// upstream blocks, and serves a listener through the shared session flow
// (package session).
package engine

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// Decode decodes one block of the configuration strictly into v (unknown
// keys are errors, reported with their paths). A block that is absent
// leaves v as it is, so an engine sets its defaults before decoding.
type Decode func(v any) error

// Engine serves one protocol.
type Engine interface {
	// Protocol is the protocol's name: the connections' `protocol:`, the
	// engine's section and its listener's key in the configuration.
	Protocol() protocols.Protocol
	// Configure decodes and checks the engine's own section (its tuning),
	// applying defaults. Errors name fields relative to the section.
	Configure(section Decode) error
	// Upstream decodes and checks one connection's upstream block (where
	// it is, the credentials Airlock holds for it, TLS), applying
	// defaults. Errors name fields relative to the block. The value
	// becomes protocols.Connection.Upstream, which only this engine reads.
	Upstream(block Decode) (any, error)
	// Serve accepts clients on ln until ctx ends, then drains its open
	// sessions (Drain: each ends, with the protocol's shutdown error, once
	// nothing of it runs upstream) and returns once they have ended.
	Serve(ctx context.Context, ln net.Listener, deps Deps) error
}

// Deps are what the gateway gives every engine it starts.
type Deps struct {
	Gateway *session.Gateway
	// TLS is the gateway's one server certificate; nil offers no TLS.
	TLS *tls.Config
	Log *slog.Logger
	// RecordParameters asks for the values bound to prepared statements
	// to be recorded (recording.parameters).
	RecordParameters bool
	// HandshakeTimeout bounds a client's time from connecting to being
	// authenticated; MaxUnauthenticated caps the clients in that state at
	// once (0: sized from the process's file limit).
	HandshakeTimeout   time.Duration
	MaxUnauthenticated int
	// DrainTimeout is how long, once Serve's context ends, commands in
	// flight may take to finish before they are cancelled upstream, and
	// CancelTimeout how long the upstream may then take to answer before
	// the sessions left are stopped (see Drain). Zero ends sessions at
	// once.
	DrainTimeout, CancelTimeout time.Duration
}

// Executor is an engine that can run commands on its connections for a
// frontend that is not the connection's wire (the agent API, the MCP
// endpoint): the frontend admits and starts a session through the
// gateway, dials with the engine, and runs each command with
// session.Execute, so every command is checked, held, masked, recorded and
// counted exactly as on the wire.
type Executor interface {
	Engine
	// Dial opens an upstream session of flow's connection.
	Dial(ctx context.Context, flow *session.Session) (session.Runner, error)
}

// HTTPHandler is an engine whose clients speak HTTP (an HTTP connection's
// reverse proxy): it is served on the gateway's HTTP listener
// (listen.http) beside the agent frontends instead of on a listener of
// its own, and its Serve is not called.
type HTTPHandler interface {
	Engine
	// Mount returns the engine's handler and which requests are its.
	Mount(deps HTTPDeps) (Mount, error)
}

// HTTPDeps are what the HTTP listener gives an HTTPHandler.
type HTTPDeps struct {
	// Retry's approver refuses a command that needs review until a
	// reviewer approved it, after which the identical command runs once;
	// Hold's resolves reviews as the approvals configuration says (hold by
	// default), for callers that can wait. Both share the gateway's
	// identities, connections, classifier, policies, masking, recordings
	// and metrics.
	Retry, Hold *session.Gateway
	Log         *slog.Logger
	// Registerer takes the engine's own metrics; nil counts nothing more.
	Registerer prometheus.Registerer
	// AdminURL is the admin listener's base URL, where reviewers approve.
	AdminURL string
	// WaitPath is the listener's path that long-polls an approval request
	// for its decision, with the request's id appended.
	WaitPath string
}

// Mount is where an HTTPHandler's requests are served on the listener.
type Mount struct {
	// Prefix is the path prefix of the engine's requests ("/proxy/").
	Prefix string
	// Host reports whether a request is the engine's by its Host header,
	// whatever its path; nil claims none.
	Host    func(host string) bool
	Handler http.Handler
	// Close ends what the engine keeps between requests (its sessions)
	// once the listener has stopped; nil when it keeps nothing.
	Close func()
}

// ConnectionClassifier is an engine's decoded upstream block that brings
// the connection's own classifier of its commands
// (protocols.Connection.Classifier): an HTTP connection's route rules.
type ConnectionClassifier interface {
	Classifier() protocols.Classifier
}
