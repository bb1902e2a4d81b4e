package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// Engine is the Redis engine. See the package documentation for its
// concurrency contract.
type Engine struct {
	set Settings

	// Set by Serve, read by every session.
	gateway   *session.Gateway
	tls       *tls.Config
	log       *slog.Logger
	relayOnly bool // mode relay: bytes pass untouched after the login

	// draining is set once Serve's context has ended (drain.go).
	draining atomic.Bool

	mu       sync.Mutex
	sessions map[*relay]struct{}
	// plainUntil remembers, per connection, until when tls.mode prefer
	// dials in clear after a failed TLS handshake, so that a server
	// without TLS does not cost a failed handshake per session.
	plainUntil map[string]time.Time
}

var (
	_ engine.Engine   = (*Engine)(nil)
	_ engine.Executor = (*Engine)(nil)
)

// New returns an Engine with the default settings; Configure changes them.
func New() *Engine {
	return &Engine{set: Settings{}.withDefaults(), sessions: map[*relay]struct{}{}, plainUntil: map[string]time.Time{},
		log: slog.New(slog.DiscardHandler)}
}

// Protocol implements engine.Engine.
func (e *Engine) Protocol() protocols.Protocol { return protocols.Redis }

// Serve implements engine.Engine: it accepts clients on ln until ctx ends,
// then closes the listener, ends the open sessions and waits for them.
func (e *Engine) Serve(ctx context.Context, ln net.Listener, deps engine.Deps) error {
	if deps.Gateway == nil {
		return errors.New("redis engine: no gateway")
	}
	e.gateway, e.tls = deps.Gateway, deps.TLS
	if deps.Log != nil {
		e.log = deps.Log
	}
	e.log = e.log.With("protocol", "redis")
	switch e.set.Mode {
	case "decode", "relay":
		e.log.Warn("redis.mode is for measurement only: commands are not classified or refused", "mode", e.set.Mode)
		e.gateway = e.gateway.WithoutInspection()
		e.relayOnly = e.set.Mode == "relay"
	}
	srv := &transport.Server{
		Handler:            e.handle,
		Log:                e.log,
		HandshakeTimeout:   deps.HandshakeTimeout,
		MaxUnauthenticated: deps.MaxUnauthenticated,
		OnStart:            protocols.GrowStack,
	}
	// Sessions outlive ctx by the drain: they get a context of their own.
	sessions, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSessions()
	srv.Handler = func(_ context.Context, conn net.Conn, a *transport.Admission) { e.handle(sessions, conn, a) }
	if e.set.QueryTimeout > 0 {
		go engine.Watch(sessions, e.set.QueryTimeout, e.watched)
	}
	err := srv.Serve(ctx, ln)
	e.drain(deps)
	stopSessions()
	srv.Wait()
	return err
}

func (e *Engine) register(s *relay) {
	e.mu.Lock()
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
}

func (e *Engine) unregister(s *relay) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
}

// handle runs one client connection from its first byte to its end. The
// transport bounds its time until it has authenticated (a) and closes conn
// when handle returns.
func (e *Engine) handle(ctx context.Context, conn net.Conn, a *transport.Admission) {
	log := protocols.LazyWith(e.log, "client", conn.RemoteAddr().String())
	conn, isTLS, err := e.maybeTLS(conn)
	if err != nil {
		log.Info("tls handshake failed", "err", err)
		return
	}
	c := newClientConn(e, conn, isTLS, log)
	defer c.release()
	s, err := c.login(ctx, a)
	if err != nil {
		if !isClosed(err) {
			log.Info("session refused", "err", err)
		}
		return
	}
	s.run(ctx)
}

// maybeTLS looks at the first byte a client sends: a TLS handshake record
// starts the server side of TLS (when Airlock has a certificate), anything
// else is RESP in clear. Redis clients speak TLS from their first byte, and
// no RESP command starts with 0x16, so one listener serves both.
func (e *Engine) maybeTLS(conn net.Conn) (net.Conn, bool, error) {
	var first [1]byte
	if _, err := conn.Read(first[:]); err != nil {
		return conn, false, err
	}
	pc := &prefixConn{Conn: conn, prefix: first[:]}
	if first[0] != 0x16 || e.tls == nil {
		return pc, false, nil
	}
	tc := tls.Server(pc, e.tls)
	if err := tc.Handshake(); err != nil {
		return conn, false, err
	}
	return tc, true, nil
}

// prefixConn is a conn whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
