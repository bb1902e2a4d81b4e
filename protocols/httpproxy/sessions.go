package httpproxy

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/session"
)

// An HTTP caller's Airlock session is its use of one connection: requests
// that follow each other from the same identity and address go through
// one session, so that its recording reads as a conversation and a
// session is not opened (with its recording file and index entry) for
// every request. A session serves one request at a time, as the session
// flow expects (its commands, decisions and recorded exchanges follow one
// another); concurrent requests take further sessions.
//
// A session given back after its request waits idle for the caller's next
// one, up to Settings.SessionMaxIdlePerCaller idle sessions per caller.
// The idle sessions are reused last in, first out: a caller with N
// requests in flight keeps cycling through about N sessions, and opens a
// new one only when all of its sessions are busy, so the sessions kept are
// bounded by its peak concurrency over the last Settings.SessionIdle (a
// response reaches the caller just before its session is given back, so
// a caller's next request may briefly need one more). The sessions a
// burst left beyond the caller's steady concurrency sink to the bottom of
// the idle stack, unused, and are closed once idle for
// Settings.SessionIdle; a session past Settings.SessionRequests requests
// is closed too. Idle sessions hold slots of the session limits and give
// them up to a request that would otherwise be refused (limits.go).

// poolKey says which requests may share a session: the same gateway
// (retry or hold), connection, identity with the same groups, and client
// host.
type poolKey struct {
	gateway    *session.Gateway
	connection string
	identity   string
	groups     string
	method     string
	host       string
}

func keyOf(g *session.Gateway, s *session.Session) poolKey {
	groups := slices.Clone(s.Info.Identity.Groups)
	slices.Sort(groups)
	host := s.Info.ClientAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return poolKey{gateway: g, connection: s.Conn.Name, identity: s.Info.Identity.Name, groups: strings.Join(groups, "\x00"),
		method: s.Info.Identity.Method, host: host}
}

// lease is a session lent to one request.
type lease struct {
	key  poolKey
	s    *session.Session
	uses int
	idle time.Time // when it was last given back
	// broken: the session must end (its recording failed); a WebSocket's
	// two relays may both say so.
	broken atomic.Bool
}

// maxIdleCeiling bounds Settings.SessionMaxIdlePerCaller.
const maxIdleCeiling = 4096

type pools struct {
	idleAfter time.Duration
	maxUses   int
	maxIdle   int // idle sessions kept per caller

	mu     sync.Mutex
	idle   map[poolKey][]*lease
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

func newPools(idleAfter time.Duration, maxUses, maxIdle int) *pools {
	p := &pools{idleAfter: idleAfter, maxUses: maxUses, maxIdle: maxIdle, idle: map[poolKey][]*lease{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.sweep()
	return p
}

// acquire returns the caller's most recently used idle session, or starts
// admitted. An error is Start's: the recording could not be opened.
func (p *pools) acquire(g *session.Gateway, admitted *session.Session) (*lease, error) {
	key := keyOf(g, admitted)
	p.mu.Lock()
	if l := p.idle[key]; len(l) > 0 && !p.closed {
		got := l[len(l)-1]
		p.idle[key] = l[:len(l)-1]
		if len(p.idle[key]) == 0 {
			delete(p.idle, key)
		}
		p.mu.Unlock()
		admitted.Release() // the kept session holds the caller's slot
		return got, nil
	}
	p.mu.Unlock()
	if err := admitted.Start(); err != nil {
		return nil, err
	}
	return &lease{key: key, s: admitted}, nil
}

// release gives a session back after its request.
func (p *pools) release(l *lease) {
	l.uses++
	reason := ""
	p.mu.Lock()
	switch {
	case l.broken.Load():
		reason = "recording failed"
	case p.closed:
		reason = "gateway shutting down"
	case p.maxUses > 0 && l.uses >= p.maxUses:
		reason = "request limit reached"
	case len(p.idle[l.key]) >= p.maxIdle:
		reason = "idle"
	default:
		l.idle = time.Now()
		p.idle[l.key] = append(p.idle[l.key], l)
	}
	p.mu.Unlock()
	if reason != "" {
		l.s.Close(reason)
	}
}

// sweep closes sessions idle for longer than idleAfter.
func (p *pools) sweep() {
	defer close(p.done)
	every := min(max(p.idleAfter/2, 100*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			var expired []*lease
			p.mu.Lock()
			for k, ls := range p.idle {
				kept := ls[:0]
				for _, l := range ls {
					if now.Sub(l.idle) >= p.idleAfter {
						expired = append(expired, l)
					} else {
						kept = append(kept, l)
					}
				}
				if len(kept) == 0 {
					delete(p.idle, k)
				} else {
					p.idle[k] = kept
				}
			}
			p.mu.Unlock()
			for _, l := range expired {
				l.s.Close("idle")
			}
		}
	}
}

// close ends every idle session; sessions serving a request end when it
// is done.
func (p *pools) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	all := p.idle
	p.idle = map[poolKey][]*lease{}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, ls := range all {
		for _, l := range ls {
			l.s.Close("gateway shutting down")
		}
	}
}
