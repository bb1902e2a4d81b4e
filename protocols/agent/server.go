package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// Defaults sized for a model's context window.
const (
	DefaultMaxRows     = 200
	DefaultMaxBytes    = 256 << 10
	maxRowsLimit       = 10000
	maxBytesLimit      = 4 << 20
	maxBodyBytes       = 1 << 20
	defaultSessionIdle = 30 * time.Minute
)

// Options configure a Server.
type Options struct {
	// Session is the gateway's configuration, shared with the wire
	// listeners: the same identities, connections, classifier, policies,
	// masking, recordings and metrics. The server builds its own gateway
	// from it, with Approvals' retry-mode approver.
	Session session.Options
	// Approvals resolves reviews (in retry mode) and serves the waits;
	// nil refuses every command that needs a review.
	Approvals *approvals.Service
	// Engines are the protocol engines; connections of those that are
	// engine.Executors are served.
	Engines []engine.Engine
	// AdminURL is the admin listener's base URL, where reviewers approve.
	AdminURL string
	// AuthorizationServers are the OAuth authorization servers (the OIDC
	// issuer) named in the protected resource metadata.
	AuthorizationServers []string
	// TLS is the gateway's certificate; nil serves plain HTTP only.
	TLS *tls.Config
	Log *slog.Logger
	// HandshakeTimeout bounds a client's time to send its first byte and
	// its request headers (default 10s).
	HandshakeTimeout time.Duration
	// MaxPending caps connections that have not sent a byte yet (0: a
	// quarter of the open-file limit); past it the oldest is dropped.
	MaxPending int
	// Registerer takes the metrics of engines served on this listener.
	Registerer prometheus.Registerer
	// SessionIdle closes an MCP session, and its sessions on connections,
	// after this long without a request (default 30m).
	SessionIdle time.Duration
	// DrainTimeout is how long, once Serve's context ends, requests in
	// flight may take before their commands are cancelled upstream, and
	// CancelTimeout how long the upstream may then take to answer.
	DrainTimeout, CancelTimeout time.Duration
}

// Server serves the query API and the MCP endpoint.
type Server struct {
	gateway    *session.Gateway
	auth       protocols.Authenticator
	approvals  *approvals.Service
	executors  map[protocols.Protocol]engine.Executor
	adminURL   string
	authz      []string
	tls        *tls.Config
	log        *slog.Logger
	handshake  time.Duration
	maxPending int
	idle       time.Duration
	handler    http.Handler
	mounts     []engine.Mount   // engines served on this listener (HTTP connections)
	drain      [2]time.Duration // DrainTimeout, CancelTimeout

	mu       sync.Mutex
	servers  map[string]*mcp.Server         // by the usable connections' names
	sessions map[*mcp.ServerSession]*mcpUse // MCP sessions that opened a session on a connection
}

// New returns a Server.
func New(o Options) (*Server, error) {
	if o.Session.Auth == nil {
		return nil, errors.New("agent: no authenticator")
	}
	s := &Server{
		auth: o.Session.Auth, approvals: o.Approvals, executors: map[protocols.Protocol]engine.Executor{},
		adminURL: strings.TrimRight(o.AdminURL, "/"),
		authz:    o.AuthorizationServers, tls: o.TLS, log: o.Log, handshake: o.HandshakeTimeout, maxPending: o.MaxPending, idle: o.SessionIdle,
		servers: map[string]*mcp.Server{}, sessions: map[*mcp.ServerSession]*mcpUse{},
		drain: [2]time.Duration{o.DrainTimeout, o.CancelTimeout},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("listener", "http")
	if s.adminURL == "" {
		s.adminURL = approvals.DefaultAdminURL
	}
	if s.handshake <= 0 {
		s.handshake = 10 * time.Second
	}
	if s.idle <= 0 {
		s.idle = defaultSessionIdle
	}
	for _, e := range o.Engines {
		if x, ok := e.(engine.Executor); ok {
			s.executors[e.Protocol()] = x
		}
	}
	so := o.Session
	so.Classifier = s.withParams(so.Classifier)
	so.Approver = nil
	if o.Approvals != nil {
		so.Approver = o.Approvals.Retrying()
	}
	g, err := session.New(so)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	s.gateway = g
	for _, e := range o.Engines {
		h, ok := e.(engine.HTTPHandler)
		if !ok {
			continue
		}
		hold, err := session.New(o.Session)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		m, err := h.Mount(engine.HTTPDeps{Retry: g, Hold: hold, Log: s.log, AdminURL: s.adminURL,
			WaitPath: "/v1/approvals/", Registerer: o.Registerer})
		if err != nil {
			return nil, fmt.Errorf("%s engine: %w", e.Protocol(), err)
		}
		s.mounts = append(s.mounts, m)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// usable returns the connections id may use, of protocols served here,
// by name.
func (s *Server) usable(id protocols.Identity) []*protocols.Connection {
	var out []*protocols.Connection
	for p := range s.executors {
		for _, c := range s.gateway.Connections(p) {
			if c.Allow.Match(id) {
				out = append(out, c)
			}
		}
	}
	slices.SortFunc(out, func(a, b *protocols.Connection) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// connection returns the connection name if id may use it, else nil: one
// answer for a connection that does not exist and one it may not use.
func (s *Server) connection(id protocols.Identity, name string) *protocols.Connection {
	c := s.gateway.Connection(name)
	if c == nil || s.executors[c.Protocol] == nil || !c.Allow.Match(id) {
		return nil
	}
	return c
}

// Serve accepts clients on ln until ctx ends: TLS when the client starts
// a handshake and a certificate is configured, plain HTTP otherwise; HTTP/2
// over TLS (ALPN) and over plain connections with prior knowledge (h2c,
// as gRPC clients without TLS speak it), HTTP/1.1 on both. It then drains:
// the listener closes, each session ends once its command in flight is
// done (for up to DrainTimeout; then the requests still running are
// cancelled, which cancels their commands upstream), and it returns once
// the requests have ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tlsConf := s.tls
	if tlsConf != nil && len(tlsConf.NextProtos) == 0 {
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = []string{"h2", "http/1.1"}
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	sl := transport.NewHTTPListener(ln, tlsConf, transport.HTTPOptions{HandshakeTimeout: s.handshake, Log: s.log,
		MaxUnauthenticated: s.maxPending, OnDrop: func() { s.gateway.Metrics().HandshakeDropped("http") }})
	defer sl.Wait()
	// Requests outlive ctx by the drain: they get a context of their own.
	requests, stopRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRequests()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.handshake,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		Protocols:         &protos,
		BaseContext:       func(net.Listener) context.Context { return requests },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(sl) }()
	select {
	case err := <-errc:
		s.closeSessions("listener failed")
		return err
	case <-ctx.Done():
	}
	s.drainRequests(hs, stopRequests)
	for _, m := range s.mounts {
		if m.Close != nil {
			m.Close()
		}
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// drainRequests stops accepting, ends the sessions as their commands in
// flight finish, and past the drain period cancels the requests left.
func (s *Server) drainRequests(hs *http.Server, stopRequests context.CancelFunc) {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		// flow.end waits for the flow's command in flight.
		s.closeSessions("gateway shutting down")
	}()
	sctx, cancel := context.WithTimeout(context.Background(), s.drain[0])
	defer cancel()
	err := hs.Shutdown(sctx)
	select {
	case <-closed:
	case <-sctx.Done():
	}
	if err == nil && sctx.Err() == nil {
		return
	}
	s.log.Warn("drain period over: cancelling the requests still running")
	stopRequests()
	cctx, ccancel := context.WithTimeout(context.Background(), max(s.drain[1], time.Second))
	defer ccancel()
	if err := hs.Shutdown(cctx); err != nil {
		_ = hs.Close()
	}
	select {
	case <-closed:
	case <-cctx.Done():
	}
}
