package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Options configure an Engine.
type Options struct {
	// TLS answers SSLRequest; nil refuses TLS (clients then need loopback).
	TLS *tls.Config
	// RecordParameters records the values of each Bind (recording.parameters).
	RecordParameters bool
	// Pipeline decides every command. Required unless Relay is set.
	Pipeline *protocols.Pipeline
	// Auth proves callers' identities. Required.
	Auth protocols.Authenticator
	// Connections are the named routes, by name; only Postgres ones are used.
	Connections map[string]*protocols.Connection
	// Recorders opens a recording per session; nil records nothing.
	Recorders protocols.RecorderFactory
	Metrics   *protocols.Metrics
	Log       *slog.Logger
	// MaxMessageSize bounds one client message body (default 64 MiB).
	MaxMessageSize int
	// ConnectTimeout bounds dialling and authenticating upstream (default 10s).
	ConnectTimeout time.Duration
	// StartupTimeout bounds a client's startup and authentication (default 30s).
	StartupTimeout time.Duration
	// Relay turns off all inspection: frames pass untouched after
	// authentication. It exists to measure the protocol-aware path's cost.
	Relay bool
	// PoolMaxIdle is how many idle upstream sessions are kept for reuse, in
	// all (0: none; see pool.go), and PoolIdleTimeout how long one is kept
	// (default 60s).
	PoolMaxIdle     int
	PoolIdleTimeout time.Duration
	// Active, if set, is called when a client session starts running, and
	// the function it returns when the session ends.
	Active func() (done func())
}

// Engine is the PostgreSQL engine. See the package documentation for its
// concurrency contract.
type Engine struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	sessions map[uint32]*session // by the process id Airlock handed out
	catalogs map[string]*catalog // by connection name
	wg       sync.WaitGroup
	pool     *upstreamPool // nil when upstream sessions are not reused
}

// New returns an Engine; it validates the options.
func New(opt Options) (*Engine, error) {
	if opt.Auth == nil {
		return nil, errors.New("postgres engine: no authenticator")
	}
	if opt.Pipeline == nil && !opt.Relay {
		return nil, errors.New("postgres engine: no pipeline")
	}
	if opt.MaxMessageSize <= 0 {
		opt.MaxMessageSize = 64 << 20
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 10 * time.Second
	}
	if opt.StartupTimeout <= 0 {
		opt.StartupTimeout = 30 * time.Second
	}
	if opt.PoolIdleTimeout <= 0 {
		opt.PoolIdleTimeout = 60 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opt: opt, log: opt.Log.With("protocol", "postgres"), sessions: map[uint32]*session{}}
	if opt.PoolMaxIdle > 0 {
		m := opt.Metrics
		e.pool = newUpstreamPool(opt.PoolMaxIdle, opt.PoolIdleTimeout, func(n int) { m.UpstreamIdleSessions(protocols.Postgres, n) })
	}
	return e, nil
}

// Protocol implements protocols.Engine.
func (e *Engine) Protocol() protocols.Protocol { return protocols.Postgres }

// Serve accepts clients on ln until ctx ends, then closes the listener, tells
// open sessions the server is shutting down and waits for them to end.
func (e *Engine) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				e.shutdown()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			e.shutdown()
			return fmt.Errorf("accept: %w", err)
		}
		tempDelay = 0
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			protocols.GrowStack()
			e.handle(ctx, c)
		}()
	}
}

func (e *Engine) shutdown() {
	e.mu.Lock()
	for _, s := range e.sessions {
		s.terminate(fatal(codeAdminShutdown, "terminating connection because Airlock is shutting down"), "airlock shutdown")
	}
	e.mu.Unlock()
	e.wg.Wait()
	if e.pool != nil {
		e.pool.close()
	}
	e.mu.Lock()
	for _, k := range e.catalogs {
		k.close()
	}
	e.mu.Unlock()
}

// register hands out a fresh BackendKeyData for s.
func (e *Engine) register(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || e.sessions[pid] != nil {
			continue
		}
		s.pid = pid
		s.secret = b[4:8]
		e.sessions[pid] = s
		return
	}
}

func (e *Engine) unregister(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sessions[s.pid] == s {
		delete(e.sessions, s.pid)
	}
}

// cancel handles a CancelRequest: the key must match a live session exactly.
func (e *Engine) cancel(pid uint32, secret []byte) {
	e.mu.Lock()
	s := e.sessions[pid]
	e.mu.Unlock()
	if s == nil || subtle.ConstantTimeCompare(s.secret, secret) != 1 {
		e.log.Info("cancel request for an unknown session ignored")
		return
	}
	s.cancelRequested()
}
