package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/transport"
)

// Upstream session reuse.
//
// A client that connects for every request (pgbench -C, PHP, serverless
// functions) would otherwise pay a PostgreSQL backend start and an upstream
// authentication per connection, tens of milliseconds on a busy server.
// When a client ends its session cleanly (Terminate while its upstream
// session is idle and outside a transaction), Airlock resets that session
// with DISCARD ALL, the statement pgbouncer runs for the same purpose, and
// keeps it for the next client of the same connection with the same startup
// parameters. Every identity of a connection already reaches the upstream
// as the same upstream user, so reuse grants no privilege; DISCARD ALL
// drops what the previous client left in the session (temporary tables,
// prepared statements, cursors, LISTENs, advisory locks, settings, role).
// The reset's reply must be exactly what DISCARD ALL answers on an idle
// session; anything else (a result still streaming, an unfinished extended
// query, COPY, an error) closes the upstream session instead.

// acquireUpstream hands a client an upstream session for c: a kept one
// with the same startup parameters, or a new one. key is the session's pool
// key ("" when reuse is off). When the server is out of connection slots,
// the idle kept sessions, which may be what fills it, are closed and the
// dial retried while their backends exit.
func (e *Engine) acquireUpstream(ctx context.Context, c *protocols.Connection, params map[string]string, log *slog.Logger) (up *upstream, key string, reused bool, err error) {
	if e.pool == nil {
		up, err = e.dialUpstream(ctx, c, params)
		return up, "", false, err
	}
	key = poolKey(c.Name+"@"+strconv.FormatUint(e.reloads.Load(), 10), params)
	if up = e.pool.get(key); up != nil {
		return up, key, true, nil
	}
	up, err = e.dialUpstream(ctx, c, params)
	if !tooManyConnections(err) {
		return up, key, false, err
	}
	if n := e.pool.drain(); n > 0 {
		log.Info("upstream out of connection slots; closed idle upstream sessions to retry", "connection", c.Name, "closed", n)
		for i := range 5 {
			select {
			case <-ctx.Done():
				return nil, key, false, ctx.Err()
			case <-time.After(time.Duration(25<<i) * time.Millisecond):
			}
			if up, err = e.dialUpstream(ctx, c, params); !tooManyConnections(err) {
				break
			}
		}
	}
	return up, key, false, err
}

// tooManyConnections reports whether err is the upstream refusing a session
// because its connection slots are full.
func tooManyConnections(err error) bool {
	var pge *pgconn.PgError
	return errors.As(err, &pge) && pge.Code == codeTooManyConnections
}

// poolKey identifies interchangeable upstream sessions: one connection,
// one set of startup parameters.
func poolKey(conn string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(conn)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

type pooled struct {
	up    *upstream
	since time.Time
}

// upstreamPool holds reset, idle upstream sessions by poolKey, at most
// maxIdle of them in all: a caller who connects with ever new startup
// parameters cannot make idle PostgreSQL backends pile up.
type upstreamPool struct {
	maxIdle int           // in all keys together
	ttl     time.Duration // idle sessions older than this are closed

	// gauge is told the number of idle sessions after every change.
	gauge func(n int)

	mu     sync.Mutex
	idle   map[string][]pooled // most recently returned last
	closed bool
	stop   chan struct{}
}

func newUpstreamPool(maxIdle int, ttl time.Duration, gauge func(n int)) *upstreamPool {
	p := &upstreamPool{maxIdle: maxIdle, ttl: ttl, gauge: gauge, idle: map[string][]pooled{}, stop: make(chan struct{})}
	go p.janitor()
	return p
}

// get returns an idle session for key that is still open, or nil.
func (p *upstreamPool) get(key string) *upstream {
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
		p.gauge(p.countLocked())
		p.mu.Unlock()
		if now.Sub(e.since) < p.ttl && transport.IdleAndOpen(e.up.conn) {
			return e.up
		}
		_ = e.up.conn.Close()
	}
}

// put keeps a reset session; when maxIdle are held already, the one idle
// longest makes way.
func (p *upstreamPool) put(key string, up *upstream) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = up.conn.Close()
		return
	}
	var drop *upstream
	if p.countLocked() >= p.maxIdle {
		drop = p.evictOldestLocked()
	}
	p.idle[key] = append(p.idle[key], pooled{up: up, since: time.Now()})
	p.gauge(p.countLocked())
	p.mu.Unlock()
	if drop != nil {
		_ = drop.conn.Close()
	}
}

// evictOldestLocked removes and returns the session idle longest. Each
// key's list is in return order, so only list heads are compared.
func (p *upstreamPool) evictOldestLocked() *upstream {
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
	return up
}

// janitor closes sessions idle longer than ttl, so that PostgreSQL
// backends do not linger after the clients are gone.
func (p *upstreamPool) janitor() {
	t := time.NewTicker(max(p.ttl/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			var old []*upstream
			p.mu.Lock()
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
				p.gauge(p.countLocked())
			}
			p.mu.Unlock()
			for _, up := range old {
				_ = up.conn.Close()
			}
		}
	}
}

func (p *upstreamPool) countLocked() int {
	n := 0
	for _, l := range p.idle {
		n += len(l)
	}
	return n
}

// drain closes every idle session and reports how many there were; the
// pool stays open. A server out of connection slots gets them back.
func (p *upstreamPool) drain() int {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]pooled{}
	p.gauge(0)
	p.mu.Unlock()
	n := 0
	for _, l := range idle {
		for _, e := range l {
			_ = e.up.conn.Close()
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
	p.drain()
}

// errNotReusable marks an upstream session whose reset did not answer as
// an idle session does.
var errNotReusable = errors.New("upstream session not reusable")

// discardAll is the reset statement, as a simple Query message.
var discardAll = func() []byte {
	b, _ := (&pgproto3.Query{String: "DISCARD ALL"}).Encode(nil)
	return b
}()

// reset runs DISCARD ALL on an idle upstream session and checks that the
// reply is exactly the statement's own: parameter status changes and
// notices, one CommandComplete "DISCARD ALL", then ReadyForQuery idle, with
// nothing after it. Parameter changes update up.params, which the next
// client is shown at its startup.
func (up *upstream) reset(timeout time.Duration) error {
	if err := up.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := up.w.Write(discardAll); err != nil {
		return err
	}
	if err := up.w.Flush(); err != nil {
		return err
	}
	// The reset's replies are small: a larger one is refused unread, and
	// a large message's buffer is not kept for an idle session.
	fr := up.r
	fr.r.Shrink()
	fr.setMax(1 << 20)
	defer fr.setMax(0)
	done := false
	for {
		typ, _, body, err := fr.next()
		if err != nil {
			return err
		}
		switch {
		case typ == 'S':
			var ps pgproto3.ParameterStatus
			if err := ps.Decode(body); err != nil {
				return fmt.Errorf("%w: bad ParameterStatus", errNotReusable)
			}
			up.params[ps.Name] = ps.Value
			up.statuses = nil
		case typ == 'N':
		case typ == 'C' && !done && string(cstring(body)) == "DISCARD ALL":
			done = true
		case typ == 'Z' && done && len(body) == 1 && body[0] == 'I' && !fr.buffered():
			up.txStatus = 'I'
			return up.conn.SetDeadline(time.Time{})
		default:
			return fmt.Errorf("%w: unexpected %q message", errNotReusable, typ)
		}
	}
}
