package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Options are what every session of every engine shares.
type Options struct {
	// Auth proves callers' identities. Required.
	Auth protocols.Authenticator
	// Connections are the named routes, by name.
	Connections map[string]*protocols.Connection
	// Classifier judges commands. nil allows every command unclassified
	// with risk none (the "decode" measurement mode).
	Classifier protocols.Classifier
	// Approver resolves review decisions; nil refuses them (fail closed).
	Approver protocols.Approver
	// Grants are the access grants in force; nil: none.
	Grants protocols.AccessGrants
	// Previewers make blast-radius previews of the commands held for
	// review, by protocol; a protocol without one gets none.
	Previewers map[protocols.Protocol]protocols.Previewer
	// Recorders opens a recording per session; nil records nothing.
	Recorders protocols.RecorderFactory
	Metrics   *Metrics
	Log       *slog.Logger
	// AuthTimeout bounds one authentication (an OIDC key fetch). Default 30s.
	AuthTimeout time.Duration
	// Limiter caps sessions (limits.go), shared by every gateway of the
	// process; nil caps nothing.
	Limiter *Limiter
	// Active, if set, is called when a session starts and the function it
	// returns when the session closes.
	Active func() (done func())
	// Live is shared by the gateways that a reload or a drain must reach
	// together; nil: New makes one serving Connections.
	Live *Live
	// Throttle answers repeated failed authentications late (throttle.go);
	// nil: none.
	Throttle *Throttle
}

// Gateway admits callers into sessions. It is safe for concurrent use.
type Gateway struct {
	opt Options
	log *slog.Logger
	// plain is set by WithoutInspection: no policy, no masking.
	plain bool
}

// New returns a Gateway.
func New(o Options) (*Gateway, error) {
	if o.Auth == nil {
		return nil, errors.New("session: no authenticator")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 30 * time.Second
	}
	if o.Live == nil {
		o.Live = NewLive(o.Connections)
	}
	return &Gateway{opt: o, log: o.Log}, nil
}

// Metrics returns the gateway's collectors (nil counts nothing).
func (g *Gateway) Metrics() *Metrics { return g.opt.Metrics }

// Inspects reports whether commands are classified: false in the decode
// measurement mode.
func (g *Gateway) Inspects() bool { return g.opt.Classifier != nil && !g.plain }

// Connection returns the connection named name, or nil.
func (g *Gateway) Connection(name string) *protocols.Connection {
	return g.opt.Live.connections()[name]
}

// Connections returns every connection of protocol p.
func (g *Gateway) Connections(p protocols.Protocol) []*protocols.Connection {
	var out []*protocols.Connection
	for _, c := range g.opt.Live.connections() {
		if c.Protocol == p {
			out = append(out, c)
		}
	}
	return out
}

// Caller is what an engine read from a client that wants a session: who it
// says it is, the secret that proves it, and the connection it names.
type Caller struct {
	Protocol protocols.Protocol
	// User is the identity name; it may be empty where a protocol's login
	// has none (a Redis AUTH with the token only) and the connection names
	// a default identity.
	User       string
	Secret     protocols.Secret
	Connection string
	// Peer is the client's address, for logs and recordings.
	Peer string
	// TLS is set when the client's connection is encrypted; Local when it
	// comes from this machine (loopback or a Unix socket). A secret is
	// accepted only over one or the other.
	TLS, Local bool
	// Proof, set instead of Secret, is a client's proof that it knows a
	// static token without sending it (MySQL's caching_sha2_password
	// scramble): it reports whether the proof matches the token whose
	// SHA-256 it is given. A proof travels safely without TLS.
	Proof func(tokenSHA256 [32]byte) bool
	// Renewal is set when the caller of a running session proves its
	// identity again (a Redis AUTH inside a session): its session takes no
	// slot of the session limits.
	Renewal bool
}

// ProofAuthenticator is an authenticator that can check a Caller.Proof
// against the stored hash of the named identity's static token. Its
// running time must not depend on whether the name exists.
type ProofAuthenticator interface {
	AuthenticateProof(name string, verify func(tokenSHA256 [32]byte) bool) (protocols.Identity, error)
}

// ProofLeaser is a ProofAuthenticator whose proofs may be of short-lived
// credentials: it returns the lease of the session it admits (nil: the
// session's credential never ends), as Leaser does for a secret.
type ProofLeaser interface {
	AuthenticateProofLease(ctx context.Context, name string, verify func(tokenSHA256 [32]byte) bool) (protocols.Identity, func() error, error)
}

// Errors of Admit, for engines to map to their protocol's own form. Each
// is wrapped in an *AdmitError.
var (
	// ErrTLSRequired: the client sent its secret in clear from another machine.
	ErrTLSRequired = errors.New("secrets are accepted only over TLS from a non-local address")
	// ErrAuthFailed: wrong name or secret; never say which.
	ErrAuthFailed = protocols.ErrAuthFailed
	// ErrNoConnection: the connection does not exist, is of another
	// protocol, or the identity may not use it; one error for all, so a
	// caller cannot probe which connections exist.
	ErrNoConnection = errors.New("connection does not exist or the identity may not use it")
	// ErrRecordingUnavailable: the session's recording cannot be opened,
	// and nothing runs unrecorded.
	ErrRecordingUnavailable = errors.New("session recording is unavailable")
	// ErrProofMismatch: a Caller.Proof matched no static token. It is not
	// counted: the caller may still hold a secret without a stored hash (a
	// JWT), and the engine asks for it in full and calls Admit again, which
	// counts the outcome. An engine that refuses the caller at once counts
	// the refusal with Rejected(protocol, "token").
	ErrProofMismatch = errors.New("the proof matches no static token")
)

// AdmitError is why a caller was not admitted.
type AdmitError struct {
	Err error
	// Identity is the authenticated identity's name, when authentication
	// succeeded; Connection the name the caller asked for.
	Identity, Connection string
}

func (e *AdmitError) Error() string {
	switch {
	case errors.Is(e.Err, ErrNoConnection):
		return fmt.Sprintf("connection %q does not exist or identity %q may not use it", e.Connection, e.Identity)
	default:
		return e.Err.Error()
	}
}

// Unwrap returns the sentinel.
func (e *AdmitError) Unwrap() error { return e.Err }

// Admit authenticates c, by its secret or by its Proof, and checks that
// it may use the connection it names. It returns a session that has not started: the engine then dials
// the upstream and calls Start, or Abort when the upstream fails. Refusals
// are counted (connections rejected, authentication failures by reason).
func (g *Gateway) Admit(ctx context.Context, c Caller) (*Session, error) {
	m := g.opt.Metrics
	refuse := func(reason string, err *AdmitError) (*Session, error) {
		m.AuthFailure(c.Protocol, reason)
		m.Connection(c.Protocol, "", "rejected")
		return nil, err
	}
	user := c.User
	gen := g.opt.Live.gen.Load()
	conn := g.opt.Live.connections()[c.Connection]
	if user == "" && conn != nil && conn.Protocol == c.Protocol {
		user = conn.DefaultIdentity
	}
	var (
		id     protocols.Identity
		lease  func() error
		err    error
		proven tokenSum // the token hash a Proof matched
	)
	if c.Proof != nil {
		if id, lease, err = g.authenticateProof(ctx, user, keepProven(c.Proof, &proven)); err != nil {
			return nil, &AdmitError{Err: ErrProofMismatch, Connection: c.Connection, Identity: user}
		}
	} else {
		if err := g.AcceptsSecret(c); err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, g.opt.AuthTimeout)
		id, err = g.opt.Auth.Authenticate(actx, user, c.Secret.Reveal())
		cancel()
		if err != nil {
			g.opt.Throttle.Fail(ctx, c.Protocol, c.Peer, user)
			return refuse("token", &AdmitError{Err: ErrAuthFailed, Connection: c.Connection, Identity: user})
		}
	}
	if conn == nil || conn.Protocol != c.Protocol || !conn.Allow.Match(id) {
		return refuse("connection", &AdmitError{Err: ErrNoConnection, Connection: c.Connection, Identity: id.Name})
	}
	release, lerr := g.reserve(c, id, conn)
	if lerr != nil {
		return nil, lerr
	}
	s := &Session{g: g, Conn: conn, recorder: NopRecorder{}, current: conn, gen: gen, release: release}
	s.keepToken(id, c, proven)
	s.Info = protocols.SessionInfo{Protocol: c.Protocol, Identity: id, Connection: conn.Name, ClientAddr: c.Peer}
	s.Log = g.log
	s.lease = lease
	if l, ok := g.opt.Auth.(Leaser); ok && c.Proof == nil {
		s.lease = l.Lease(c.Secret.Reveal())
	}
	return s, nil
}

// authenticateProof checks a Caller.Proof, with the lease of a short-lived
// credential's proof when the authenticator can check one.
func (g *Gateway) authenticateProof(ctx context.Context, user string, proof func([32]byte) bool) (protocols.Identity, func() error, error) {
	if pl, ok := g.opt.Auth.(ProofLeaser); ok {
		actx, cancel := context.WithTimeout(ctx, g.opt.AuthTimeout)
		defer cancel()
		return pl.AuthenticateProofLease(actx, user, proof)
	}
	pa, ok := g.opt.Auth.(ProofAuthenticator)
	if !ok {
		return protocols.Identity{}, nil, ErrProofMismatch
	}
	id, err := pa.AuthenticateProof(user, proof)
	return id, nil, err
}

// AcceptsSecret refuses a caller that would send its secret in clear from
// another machine (ErrTLSRequired, counted). Admit checks it too; an engine
// whose protocol asks for the secret after the transport is known calls it
// first, so that the secret never travels in clear at all.
func (g *Gateway) AcceptsSecret(c Caller) error {
	if c.TLS || c.Local {
		return nil
	}
	g.Rejected(c.Protocol, "tls")
	return &AdmitError{Err: ErrTLSRequired, Connection: c.Connection}
}

// WithoutInspection is the gateway for an engine in a measurement mode:
// the same callers and connections, but no command is classified, decided,
// masked or recorded.
func (g *Gateway) WithoutInspection() *Gateway {
	o := g.opt
	o.Classifier, o.Recorders = nil, nil
	return &Gateway{opt: o, log: g.log, plain: true}
}

// Rejected counts a client refused before it could be admitted, for a
// reason of the engine's own: "protocol" (a malformed handshake), or
// "token" for a caller refused after ErrProofMismatch without a second
// attempt.
func (g *Gateway) Rejected(p protocols.Protocol, reason string) {
	g.opt.Metrics.AuthFailure(p, reason)
	g.opt.Metrics.Connection(p, "", "rejected")
}

// newID is sortable by start time and unique within the process.
func newID(t time.Time) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return t.Format("20060102T150405Z") + "-" + hex.EncodeToString(r[:])
}
