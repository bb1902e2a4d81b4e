package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/transport"
)

// Upstream session reuse.
//
// A client that connects for every request (PHP, serverless functions,
// scripts) would otherwise pay an upstream TCP connect, greeting and
// authentication per connection, most of what such a client costs Airlock
// and the server. When a client ends its session cleanly (COM_QUIT with no
// answer owed, no file transfer and no transaction open), Airlock keeps its
// upstream session instead of relaying the COM_QUIT: it sends
// COM_RESET_CONNECTION, which rolls back, drops temporary tables, clears
// user variables, puts session variables back to their global values,
// closes prepared statements and releases table locks and GET_LOCK()
// locks, then COM_INIT_DB back to the connection's database, which the
// reset keeps. Both must answer OK, or the session is closed instead; a
// server that does not know COM_RESET_CONNECTION (MySQL before 5.7.3,
// MariaDB before 10.2.4) is remembered per connection, whose sessions are
// then not kept.
//
// A kept session serves only a client of the same connection (upstream,
// upstream user, database, TLS), the same identity (Airlock names it to
// the server in the connection attributes), the same program_name, the
// same collation and the same negotiated flags (CLIENT_FOUND_ROWS changes
// what UPDATE reports, CLIENT_MULTI_STATEMENTS what a query may hold…).
// Clients that ask for CLIENT_INTERACTIVE or CLIENT_IGNORE_SPACE are not
// kept: the server applies them to wait_timeout and sql_mode at login, and
// the reset puts both back to their global values.

// unpooledCapabilities are the flags whose effect the reset undoes.
const unpooledCapabilities = mysql.CLIENT_INTERACTIVE | mysql.CLIENT_IGNORE_SPACE

// poolKey identifies interchangeable upstream sessions; "" when the
// session is not to be kept.
func (e *Engine) poolKey(c *protocols.Connection, caps uint32, charset uint8, attrs map[string]string) string {
	if e.pool == nil || caps&unpooledCapabilities != 0 {
		return ""
	}
	reloads := strconv.FormatUint(e.reloads.Load(), 10)
	if _, refused := e.noReset.Load(c.Name + "@" + reloads); refused {
		return ""
	}
	var b strings.Builder
	b.WriteString(c.Name)
	b.WriteByte('@')
	b.WriteString(reloads)
	fmt.Fprintf(&b, "\x00%08x\x00%d", caps, charset)
	for _, k := range []string{"airlock_identity", "program_name"} {
		b.WriteByte(0)
		b.WriteString(attrs[k])
	}
	return b.String()
}

// acquireUpstream hands a client an upstream session: a kept one for key,
// or a new one logged in with cfg. When the server is out of connection
// slots, the idle kept sessions, which may be what fills it, are closed
// and the login retried while their threads exit.
func (e *Engine) acquireUpstream(ctx context.Context, key string, cfg wire.DialConfig, log *slog.Logger) (up *wire.Upstream, reused bool, err error) {
	if e.pool == nil {
		up, err = dialUpstream(ctx, cfg)
		return up, false, err
	}
	if key != "" {
		if up = e.pool.get(key); up != nil {
			return up, true, nil
		}
	}
	up, err = wire.Dial(ctx, cfg)
	if !tooManyConnections(err) {
		return up, false, err
	}
	if n := e.pool.drain(); n > 0 {
		log.Info("upstream out of connection slots; closed idle upstream sessions to retry", "closed", n)
	}
	up, err = dialUpstream(ctx, cfg)
	return up, false, err
}

// errResetRefused marks a server that does not know COM_RESET_CONNECTION.
var errResetRefused = errors.New("upstream refused COM_RESET_CONNECTION")

// errNotReusable marks an upstream session whose reset did not answer as
// an idle session does.
var errNotReusable = errors.New("upstream session not reusable")

// resetUpstream sends COM_RESET_CONNECTION and COM_INIT_DB db together and
// checks that each answers OK with no transaction open. The session's
// status becomes the one the next client is greeted with.
func resetUpstream(up *wire.Upstream, db string, timeout time.Duration) error {
	if err := up.Conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	out, _ := wire.AppendPacket(nil, 0, []byte{mysql.COM_RESET_CONNECTION})
	out, _ = wire.AppendPacket(out, 0, append([]byte{mysql.COM_INIT_DB}, db...))
	if _, err := up.Conn.Write(out); err != nil {
		return err
	}
	for i, what := range []string{"COM_RESET_CONNECTION", "COM_INIT_DB"} {
		// Exact reads: nothing past the answers is taken from the socket,
		// so the next client's reader starts at its first response.
		p, err := wire.ReadPacket(up.Conn, 1<<16)
		if err != nil {
			return err
		}
		if wire.IsERR(p.Payload) {
			me, _ := wire.ParseERR(p.Payload)
			if i == 0 && me != nil && me.Code == mysql.ER_UNKNOWN_COM_ERROR {
				return fmt.Errorf("%w: %s", errResetRefused, me.Message)
			}
			return fmt.Errorf("%w: %s answered an error", errNotReusable, what)
		}
		ok, err := wire.ParseOK(p.Payload, up.Capabilities)
		if err != nil || p.Payload[0] != mysql.OK_HEADER {
			return fmt.Errorf("%w: %s answered no OK", errNotReusable, what)
		}
		if ok.Status&(mysql.SERVER_STATUS_IN_TRANS|mysql.SERVER_MORE_RESULTS_EXISTS) != 0 {
			return fmt.Errorf("%w: status 0x%04x after %s", errNotReusable, ok.Status, what)
		}
		up.Status = ok.Status &^ mysql.SERVER_SESSION_STATE_CHANGED
	}
	return up.Conn.SetDeadline(time.Time{})
}

type pooled struct {
	up    *wire.Upstream
	since time.Time
}

// upstreamPool holds reset, idle upstream sessions by poolKey, at most
// maxIdle of them in all: callers with ever new identities or flags cannot
// make idle server threads pile up.
type upstreamPool struct {
	maxIdle int           // in all keys together
	ttl     time.Duration // idle sessions older than this are closed

	// gauge is told the number of idle sessions after every change.
	gauge func(n int)

	mu     sync.Mutex
	idle   map[string][]pooled // most recently returned last
	count  int
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup // the janitor
}

func newUpstreamPool(maxIdle int, ttl time.Duration, gauge func(n int)) *upstreamPool {
	p := &upstreamPool{maxIdle: maxIdle, ttl: ttl, gauge: gauge, idle: map[string][]pooled{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.janitor()
	return p
}

// get returns an idle session for key that is still open, or nil. The
// check costs no round trip: a session the server ended (wait_timeout,
// KILL, restart) has sent an error or closed its socket.
func (p *upstreamPool) get(key string) *wire.Upstream {
	now := time.Now()
	for {
		p.mu.Lock()
		l := p.idle[key]
		if len(l) == 0 {
			p.mu.Unlock()
			return nil
		}
		e := l[len(l)-1]
		l[len(l)-1] = pooled{}
		if len(l) == 1 {
			delete(p.idle, key)
		} else {
			p.idle[key] = l[:len(l)-1]
		}
		p.count--
		p.gauge(p.count)
		p.mu.Unlock()
		if now.Sub(e.since) < p.ttl && transport.IdleAndOpen(e.up.Conn) {
			return e.up
		}
		_ = e.up.Conn.Close()
	}
}

// put keeps a reset session; when maxIdle are held already, the one idle
// longest makes way.
func (p *upstreamPool) put(key string, up *wire.Upstream) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		quit(up.Conn)
		return
	}
	var drop *wire.Upstream
	if p.count >= p.maxIdle {
		drop = p.evictOldestLocked()
	}
	p.idle[key] = append(p.idle[key], pooled{up: up, since: time.Now()})
	p.count++
	p.gauge(p.count)
	p.mu.Unlock()
	if drop != nil {
		quit(drop.Conn)
	}
}

// evictOldestLocked removes and returns the session idle longest. Each
// key's list is in return order, so only list heads are compared.
func (p *upstreamPool) evictOldestLocked() *wire.Upstream {
	var oldest string
	var at time.Time
	for k, l := range p.idle {
		if oldest == "" || l[0].since.Before(at) {
			oldest, at = k, l[0].since
		}
	}
	if oldest == "" {
		return nil
	}
	l := p.idle[oldest]
	up := l[0].up
	if len(l) == 1 {
		delete(p.idle, oldest)
	} else {
		l[0] = pooled{}
		p.idle[oldest] = l[1:]
	}
	p.count--
	return up
}

// janitor closes sessions idle longer than ttl, so that server threads do
// not linger after the clients are gone.
func (p *upstreamPool) janitor() {
	defer p.wg.Done()
	t := time.NewTicker(max(p.ttl/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			for _, up := range p.expired(now) {
				quit(up.Conn)
			}
		}
	}
}

// expired takes out the sessions idle longer than ttl at now.
func (p *upstreamPool) expired(now time.Time) []*wire.Upstream {
	var old []*wire.Upstream
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.idle {
		n := 0
		for _, e := range l {
			if now.Sub(e.since) >= p.ttl {
				old = append(old, e.up)
			} else {
				l[n] = e
				n++
			}
		}
		clear(l[n:])
		if n == 0 {
			delete(p.idle, k)
		} else {
			p.idle[k] = l[:n]
		}
	}
	if len(old) > 0 {
		p.count -= len(old)
		p.gauge(p.count)
	}
	return old
}

// drain closes every idle session and reports how many there were; the
// pool stays open. A server out of connection slots gets them back.
func (p *upstreamPool) drain() int {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]pooled{}
	p.count = 0
	p.gauge(0)
	p.mu.Unlock()
	n := 0
	for _, l := range idle {
		for _, e := range l {
			quit(e.up.Conn)
			n++
		}
	}
	return n
}

// close closes every idle session; later puts close theirs.
func (p *upstreamPool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	p.drain()
}

// killing registers a KILL of the session's upstream thread about to be
// sent; false when the upstream session has been handed on.
func (s *relay) killing() bool {
	s.killMu.Lock()
	defer s.killMu.Unlock()
	if s.released {
		return false
	}
	s.kills++
	return true
}

// killed ends what killing began.
func (s *relay) killed() {
	s.killMu.Lock()
	s.kills--
	s.killMu.Unlock()
}

// release reports whether the upstream session may be handed on: no KILL
// of its thread is in flight, and none will be sent.
func (s *relay) release() bool {
	s.killMu.Lock()
	defer s.killMu.Unlock()
	if s.kills > 0 {
		return false
	}
	s.released = true
	return true
}

// quitClean ends the session after the client's COM_QUIT keeping its
// upstream session for reuse, when it is left clean: nothing owed, no
// file transfer, no transaction open, every command written out. It
// reports false when the COM_QUIT is to be relayed instead. Client reader
// only.
func (s *relay) quitClean() bool {
	if s.poolKey == "" || s.engine.relayOnly || s.pending.busy() || s.file.get() || s.inTransaction() || s.engine.draining.Load() {
		return false
	}
	if s.flushUpstream() != nil {
		return false
	}
	return s.detach("client quit")
}

// releaseUpstream, once both loops have returned after detach, resets the
// upstream session and returns it to the pool, or closes it when its
// reader was not left between packets, a KILL of it is in flight, or the
// reset does not answer as an idle session does. The reset runs on its own
// goroutine (the engine waits for it at shutdown), so the session's end is
// not delayed by it.
func (s *relay) releaseUpstream() {
	up, e := s.up, s.engine
	if !s.upR.AtBoundary() || s.res.active || !s.release() {
		quit(up.Conn)
		return
	}
	key, log, conn := s.poolKey, s.log, s.flow.Conn
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		protocols.GrowStack()
		err := resetUpstream(up, upstreamOf(conn).Database, e.set.ConnectTimeout)
		if errors.Is(err, errResetRefused) {
			key := conn.Name + "@" + strconv.FormatUint(e.reloads.Load(), 10)
			if _, seen := e.noReset.LoadOrStore(key, true); !seen {
				log.Info("the upstream does not support COM_RESET_CONNECTION; its sessions are not kept for reuse", "err", err)
			}
		}
		if err != nil {
			log.Debug("upstream session not kept", "err", err)
			_ = up.Conn.Close()
			return
		}
		e.pool.put(key, up)
	}()
}
