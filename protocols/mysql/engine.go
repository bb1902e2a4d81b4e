package mysql

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// Engine is the MySQL engine. See the package documentation for its
// concurrency contract.
type Engine struct {
	set Settings

	// Set by Serve, read by every session.
	gateway      *session.Gateway
	tls          *tls.Config
	log          *slog.Logger
	recordParams bool
	relayOnly    bool // mode relay: bytes pass untouched after the login
	// key serves caching_sha2_password's RSA exchange to local clients
	// that ask for it without TLS.
	key *wire.ServerKey

	// draining is set once Serve's context has ended (drain.go).
	draining atomic.Bool

	mu sync.Mutex
	// sessions are the running sessions by the connection id their
	// clients were given, and by their upstream's, so that KILL finds a
	// session by either.
	sessions   map[uint32]*relay
	byUpstream map[uint32][]*relay
	nextID     uint32
	// upstreams is what each connection's upstream said in its greeting
	// last time Airlock logged in, by connection name.
	upstreams map[string]upstreamInfo
	// probeMu makes one probe of an unknown upstream at a time.
	probeMu sync.Mutex
	wg      sync.WaitGroup
	// learned holds the connections whose session cap was read from
	// their server (learnSessionCap).
	learned sync.Map

	// pool keeps upstream sessions for reuse (pool.go); nil when they are
	// not reused. Set by Serve before the first client.
	pool *upstreamPool
	// reloads counts configuration reloads: a reload's sessions do not
	// serve the clients of the connections that replace them.
	reloads atomic.Uint64
	// noReset holds the connections (name@reloads) whose server refused
	// COM_RESET_CONNECTION: their sessions are not kept.
	noReset sync.Map
}

var (
	_ engine.Engine   = (*Engine)(nil)
	_ engine.Executor = (*Engine)(nil)
)

// New returns an Engine with the default settings; Configure changes them.
func New() *Engine {
	var b [4]byte
	_, _ = rand.Read(b[:])
	// Airlock's connection ids start high, far from the small counters
	// servers hand out, so that an id in KILL names one session.
	first := 1<<30 + binary.LittleEndian.Uint32(b[:])%(1<<29)
	return &Engine{set: Settings{}.withDefaults(), sessions: map[uint32]*relay{},
		byUpstream: map[uint32][]*relay{}, upstreams: map[string]upstreamInfo{}, nextID: first}
}

// Protocol implements engine.Engine.
func (e *Engine) Protocol() protocols.Protocol { return protocols.MySQL }

// Serve implements engine.Engine: it accepts clients on ln until ctx ends,
// then ends open sessions and waits for them.
func (e *Engine) Serve(ctx context.Context, ln net.Listener, deps engine.Deps) error {
	if deps.Gateway == nil {
		return errors.New("mysql engine: no gateway")
	}
	e.gateway, e.tls, e.recordParams = deps.Gateway, deps.TLS, deps.RecordParameters
	e.log = deps.Log
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("protocol", "mysql")
	switch e.set.Mode {
	case "decode", "relay":
		e.log.Warn("mysql.mode is for measurement only: commands are not classified or refused", "mode", e.set.Mode)
		e.gateway = e.gateway.WithoutInspection()
		e.relayOnly = e.set.Mode == "relay"
	}
	key, err := wire.GenerateServerKey()
	if err != nil {
		return err
	}
	e.key = key
	if n := e.set.Pool.maxIdle(); n > 0 {
		m := e.gateway.Metrics()
		pool := newUpstreamPool(n, e.set.Pool.IdleTimeout, func(n int) { m.UpstreamIdleSessions(protocols.MySQL, n) })
		e.mu.Lock() // a reload may look for it from another goroutine
		e.pool = pool
		e.mu.Unlock()
	}
	srv := &transport.Server{
		Handler:            e.handle,
		Log:                e.log,
		HandshakeTimeout:   e.set.HandshakeTimeout,
		MaxUnauthenticated: deps.MaxUnauthenticated,
		OnStart:            protocols.GrowStack,
	}
	if deps.HandshakeTimeout > 0 {
		srv.HandshakeTimeout = min(deps.HandshakeTimeout, e.set.HandshakeTimeout)
	}
	// Sessions outlive ctx by the drain: they get a context of their own.
	sessions, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSessions()
	srv.Handler = func(_ context.Context, conn net.Conn, a *transport.Admission) { e.handle(sessions, conn, a) }
	if e.set.QueryTimeout > 0 {
		go engine.Watch(sessions, e.set.QueryTimeout, e.watched)
	}
	err = srv.Serve(ctx, ln)
	e.drain(deps)
	stopSessions()
	srv.Wait()
	e.wg.Wait()
	if e.pool != nil {
		e.pool.close()
	}
	return err
}

// newID returns a connection id for a new client, unused by any session.
func (e *Engine) newID() uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		id := e.nextID
		e.nextID++
		if e.nextID >= 1<<31 {
			e.nextID = 1 << 30
		}
		if _, taken := e.sessions[id]; !taken {
			return id
		}
	}
}

func (e *Engine) register(s *relay) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sessions[s.id] = s
	up := s.up.ConnectionID
	e.byUpstream[up] = append(e.byUpstream[up], s)
}

func (e *Engine) unregister(s *relay) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sessions, s.id)
	up := s.up.ConnectionID
	l := slices.DeleteFunc(e.byUpstream[up], func(o *relay) bool { return o == s })
	if len(l) == 0 {
		delete(e.byUpstream, up)
	} else {
		e.byUpstream[up] = l
	}
}

// find returns the session a KILL names: by the id its client was given,
// else by its upstream's id when that names exactly one session of the
// identity (upstreams on different servers may share ids).
func (e *Engine) find(id uint32, identity string) *relay {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sessions[id]; s != nil {
		return s
	}
	var found *relay
	for _, s := range e.byUpstream[id] {
		if s.flow.Info.Identity.Name != identity {
			continue
		}
		if found != nil {
			return nil
		}
		found = s
	}
	return found
}

// upstreamInfo is what an upstream's greeting said.
type upstreamInfo struct {
	capabilities uint32
	version      string
	charset      uint8
	learned      time.Time
	failed       bool
}

// learn keeps what an upstream's greeting said.
func (e *Engine) learn(conn string, up *wire.Upstream) {
	e.mu.Lock()
	e.upstreams[conn] = upstreamInfo{capabilities: up.ServerCapabilities, version: up.ServerVersion,
		charset: up.Charset, learned: time.Now()}
	e.mu.Unlock()
}

// probeRetry is how long a failed probe of an upstream is not repeated.
const probeRetry = 5 * time.Second

// greeting returns what to announce to a new client before it names its
// connection: the relayed flags every MySQL connection's upstream offers,
// and the first connection's version and character set. An upstream not
// known yet is logged in to once (and logged out of) to learn them; one
// that cannot be reached is left out, and its clients then fail at login.
func (e *Engine) greeting(ctx context.Context) upstreamInfo {
	conns := e.gateway.Connections(protocols.MySQL)
	slices.SortFunc(conns, func(a, b *protocols.Connection) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	out := upstreamInfo{capabilities: wire.RelayCapabilities}
	first := true
	for _, c := range conns {
		info := e.known(ctx, c)
		if info.failed {
			continue
		}
		out.capabilities &= info.capabilities
		if first {
			out.version, out.charset, first = info.version, info.charset, false
		}
	}
	if first {
		// No upstream answered: offer what MySQL and MariaDB both have.
		out.capabilities &^= mysql.CLIENT_QUERY_ATTRIBUTES
		out.version, out.charset = "8.0.36", 45
	}
	if e.set.ServerVersion != "" {
		out.version = e.set.ServerVersion
	}
	return out
}

// known returns what c's upstream said, logging in to learn it when it is
// not known yet.
func (e *Engine) known(ctx context.Context, c *protocols.Connection) upstreamInfo {
	cached := func() (upstreamInfo, bool) {
		e.mu.Lock()
		defer e.mu.Unlock()
		info, ok := e.upstreams[c.Name]
		return info, ok && (!info.failed || time.Since(info.learned) < probeRetry)
	}
	if info, ok := cached(); ok {
		return info
	}
	e.probeMu.Lock()
	defer e.probeMu.Unlock()
	if info, ok := cached(); ok {
		return info
	}
	pctx, cancel := context.WithTimeout(ctx, min(e.set.ConnectTimeout, 5*time.Second))
	defer cancel()
	up, err := wire.Dial(pctx, dialConfig(c, 0, 0, nil))
	if err != nil {
		e.log.Warn("upstream not reachable to learn its capabilities", "connection", c.Name, "err", err)
		e.mu.Lock()
		e.upstreams[c.Name] = upstreamInfo{failed: true, learned: time.Now()}
		e.mu.Unlock()
		return upstreamInfo{failed: true}
	}
	e.learn(c.Name, up)
	quit(up.Conn)
	return upstreamInfo{capabilities: up.ServerCapabilities, version: up.ServerVersion, charset: up.Charset}
}

// quit logs out of an upstream session politely and closes it.
func quit(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = wire.WritePacket(c, 0, []byte{mysql.COM_QUIT})
	_ = c.Close()
}
