package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// Engine is the PostgreSQL engine. See the package documentation for its
// concurrency contract.
type Engine struct {
	set Settings

	// Set by Serve, read by every session.
	gateway      *session.Gateway
	tls          *tls.Config
	log          *slog.Logger
	recordParams bool
	relayOnly    bool // mode relay: frames pass untouched after startup

	// draining is set once Serve's context has ended: sessions end as
	// soon as nothing of theirs runs upstream (drain.go).
	draining atomic.Bool
	// reloads counts configuration reloads: a reload's sessions do not
	// reuse upstream sessions of the connections before it.
	reloads atomic.Uint64

	mu sync.Mutex
	// sessions are the running sessions by the process id their clients
	// were given (their upstream's, so several may share one when
	// upstreams on different servers do); a cancel key is the pair.
	sessions map[uint32][]*relay
	catalogs map[string]*catalog // by connection name
	wg       sync.WaitGroup
	pool     *upstreamPool // nil when upstream sessions are not reused
	// learned holds the connections whose session cap was read from
	// their server (learnSessionCap).
	learned sync.Map
}

var _ engine.Engine = (*Engine)(nil)

// New returns an Engine with the default settings; Configure changes them.
func New() *Engine {
	return &Engine{set: Settings{}.withDefaults(), sessions: map[uint32][]*relay{}}
}

// Protocol implements engine.Engine.
func (e *Engine) Protocol() protocols.Protocol { return protocols.Postgres }

// Serve implements engine.Engine: it accepts clients on ln until ctx ends,
// then closes the listener, tells open sessions the server is shutting
// down and waits for them to end.
func (e *Engine) Serve(ctx context.Context, ln net.Listener, deps engine.Deps) error {
	if deps.Gateway == nil {
		return errors.New("postgres engine: no gateway")
	}
	e.gateway, e.tls, e.recordParams = deps.Gateway, deps.TLS, deps.RecordParameters
	e.log = deps.Log
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("protocol", "postgres")
	switch e.set.Mode {
	case "decode", "relay":
		e.log.Warn("postgres.mode is for measurement only: commands are not classified or refused", "mode", e.set.Mode)
		e.gateway = e.gateway.WithoutInspection()
		e.relayOnly = e.set.Mode == "relay"
	}
	if e.set.Pool.maxIdle() > 0 {
		m := e.gateway.Metrics()
		pool := newUpstreamPool(e.set.Pool.maxIdle(), e.set.Pool.IdleTimeout, func(n int) { m.UpstreamIdleSessions(protocols.Postgres, n) })
		e.mu.Lock() // a reload may look for it from another goroutine
		e.pool = pool
		e.mu.Unlock()
	}
	srv := &transport.Server{
		Handler:            e.handle,
		Log:                e.log,
		HandshakeTimeout:   min(deps.HandshakeTimeout, e.set.StartupTimeout),
		MaxUnauthenticated: deps.MaxUnauthenticated,
		OnStart:            protocols.GrowStack,
		OnDrop:             func() { e.gateway.Metrics().HandshakeDropped(protocols.Postgres) },
	}
	if srv.HandshakeTimeout <= 0 {
		srv.HandshakeTimeout = e.set.StartupTimeout
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
	e.wg.Wait()
	if e.pool != nil {
		e.pool.close()
	}
	e.mu.Lock()
	for _, k := range e.catalogs {
		k.close()
	}
	e.mu.Unlock()
	return err
}

// register makes s reachable by the cancel key its client is given: its
// upstream's process id (what pg_backend_pid() says, so a client that
// terminates a session by the id its driver reports reaches the right one)
// with a secret key of Airlock's own.
func (e *Engine) register(s *relay) {
	var secret [4]byte
	_, _ = rand.Read(secret[:])
	s.pid, s.secret = s.up.pid, secret[:]
	e.mu.Lock()
	e.sessions[s.pid] = append(e.sessions[s.pid], s)
	e.mu.Unlock()
}

func (e *Engine) unregister(s *relay) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.sessions[s.pid]
	for i, o := range l {
		if o == s {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(e.sessions, s.pid)
	} else {
		e.sessions[s.pid] = l
	}
}

// cancel handles a CancelRequest: the key must match a live session exactly.
func (e *Engine) cancel(pid uint32, secret []byte) {
	var target *relay
	e.mu.Lock()
	for _, s := range e.sessions[pid] {
		if subtle.ConstantTimeCompare(s.secret, secret) == 1 {
			target = s
		}
	}
	e.mu.Unlock()
	if target == nil {
		e.log.Info("cancel request for an unknown session ignored")
		return
	}
	target.cancelRequested()
}
