package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/airlock-gw/airlock/protocols"
)

// Live is the part of the gateways' state that changes while they serve:
// the connections a reload replaces, and the drain that starts a shutdown.
// Every Gateway made from the same Options shares it (the wire engines'
// and the agent frontends'), so one reload or one drain reaches them all.
type Live struct {
	conns atomic.Pointer[map[string]*protocols.Connection]
	// gen counts reloads; a session compares it with the one it last saw
	// before each command, at the cost of one atomic load.
	gen atomic.Uint64

	draining atomic.Bool
	mu       sync.Mutex
	holds    map[*Session]context.CancelCauseFunc // commands held for approval
}

// NewLive returns the live state serving conns.
func NewLive(conns map[string]*protocols.Connection) *Live {
	l := &Live{holds: map[*Session]context.CancelCauseFunc{}}
	l.conns.Store(&conns)
	return l
}

func (l *Live) connections() map[string]*protocols.Connection { return *l.conns.Load() }

// Connections returns the connections in force, by name.
func (l *Live) Connections() []*protocols.Connection {
	m := l.connections()
	out := make([]*protocols.Connection, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *protocols.Connection) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Reload makes conns the connections new sessions are admitted to. Open
// sessions keep their upstream; before their next command they take their
// connection's new policy and masking, and a session whose connection was
// removed, or whose caller may no longer use it, has its commands refused
// from then on.
func (l *Live) Reload(conns map[string]*protocols.Connection) {
	l.conns.Store(&conns)
	l.gen.Add(1)
}

// ErrShuttingDown: Airlock is draining. A command held for approval is
// withdrawn with it (it did not run) and the session ends.
var ErrShuttingDown = errors.New("Airlock is shutting down")

// Drain starts a shutdown: every command held for approval is withdrawn
// with ErrShuttingDown, and a command that would be held from now on is
// refused the same way. Commands that need no approval still run: the
// engines decide when their sessions end (after the command in flight).
func (l *Live) Drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining.Store(true)
	for _, cancel := range l.holds {
		cancel(ErrShuttingDown)
	}
}

// Draining reports whether a shutdown has started.
func (l *Live) Draining() bool { return l.draining.Load() }

// held registers a command held for approval; it reports false, having
// registered nothing, once the gateway drains.
func (l *Live) held(s *Session, cancel context.CancelCauseFunc) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining.Load() {
		return false
	}
	l.holds[s] = cancel
	return true
}

func (l *Live) released(s *Session) {
	l.mu.Lock()
	delete(l.holds, s)
	l.mu.Unlock()
}

// Live returns the gateway's live state.
func (g *Gateway) Live() *Live { return g.opt.Live }

// tokenSum is the SHA-256 of a static token, kept so that a reload can ask
// the new identities whether the token still proves the session's caller,
// without the token itself being kept.
type tokenSum = [32]byte

// sumOf returns the SHA-256 of secret.
func sumOf(secret string) tokenSum { return sha256.Sum256([]byte(secret)) }

// refresh brings the session up to the live state's reload gen: its
// connection's new policy and masking, or the reason its commands are
// refused from now on. Called by the client reader, like Check.
func (s *Session) refresh(gen uint64) {
	s.gen = gen
	if s.revoked != "" {
		return
	}
	cur := s.g.opt.Live.connections()[s.Conn.Name]
	id := s.Info.Identity
	switch {
	case cur == nil || cur.Protocol != s.Conn.Protocol:
		s.revoked = fmt.Sprintf("connection %q was removed by a configuration reload", s.Conn.Name)
	case !cur.Allow.Match(id):
		s.revoked = fmt.Sprintf("identity %q may no longer use connection %q (configuration reloaded)", id.Name, s.Conn.Name)
	case !s.stillProven():
		s.revoked = fmt.Sprintf("identity %q no longer has the token this session signed in with (configuration reloaded)", id.Name)
	}
	if s.revoked != "" {
		s.Log.Info("configuration reloaded: the session's commands are refused from now on", "reason", s.revoked)
		return
	}
	if cur == s.current {
		return
	}
	s.current = cur
	var m protocols.Masker
	if cur.Masking != nil && s.g.Inspects() {
		m = cur.Masking.For(id)
	}
	s.setMasker(m)
	e, ok := cur.Policy.(protocols.Enforcer)
	s.audit = ok && s.g.Inspects() && !e.Enforces(id)
	s.Log.Info("configuration reloaded: the session's next commands follow its connection's new policy and masking")
}

// stillProven reports whether the session's static token still proves its
// caller under the identities now in force. Callers who signed in another
// way (OIDC, short-lived credentials, whose lease says when they end) are
// not checked again.
func (s *Session) stillProven() bool {
	if !s.hasToken {
		return true
	}
	pa, ok := s.g.opt.Auth.(ProofAuthenticator)
	if !ok {
		return true
	}
	sum := s.token
	_, err := pa.AuthenticateProof(s.Info.Identity.Name, func(h [32]byte) bool { return h == sum })
	return err == nil
}

// maskerRef holds the caller's masker, which the upstream reader reads
// while a reload may replace it.
type maskerRef struct{ m protocols.Masker }

func (s *Session) setMasker(m protocols.Masker) {
	if m == nil {
		s.maskRef.Store(nil)
		return
	}
	s.maskRef.Store(&maskerRef{m: m})
}

// masker is the caller's masker, nil when nothing is masked for them.
func (s *Session) masker() protocols.Masker {
	if r := s.maskRef.Load(); r != nil {
		return r.m
	}
	return nil
}

// revokedDecision refuses dec once a reload took the session's access away.
func (s *Session) revokedDecision(dec protocols.Decision) protocols.Decision {
	if s.revoked == "" || dec.Action == protocols.Deny {
		return dec
	}
	return protocols.Decision{Action: protocols.Deny, Risk: dec.Risk, Rules: dec.Rules, Reason: s.revoked,
		ApprovalID: dec.ApprovalID}
}

// keepProven wraps a login's proof so that the token hash it matched is
// kept in sum.
func keepProven(proof func([32]byte) bool, sum *tokenSum) func([32]byte) bool {
	return func(h [32]byte) bool {
		if proof(h) {
			*sum = h
			return true
		}
		return false
	}
}

// keepToken keeps the hash of the static token that admitted the session
// (from the secret, or the one its proof matched).
func (s *Session) keepToken(id protocols.Identity, c Caller, proven tokenSum) {
	if id.Method != "token" {
		return
	}
	switch {
	case c.Proof != nil:
		s.token, s.hasToken = proven, true
	case c.Secret != "":
		s.token, s.hasToken = sumOf(c.Secret.Reveal()), true
	}
}
