package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// maxHandshakePacket bounds a client's connection-phase packets: a
// handshake response with a JWT and connection attributes fits.
const maxHandshakePacket = 64 << 10

// handle runs one client connection from its first byte to its end. The
// transport bounds its time until it has authenticated (a), and closes
// conn when handle returns.
func (e *Engine) handle(ctx context.Context, conn net.Conn, a *transport.Admission) {
	log := protocols.LazyWith(e.log, "client", conn.RemoteAddr().String())
	defer recoverSession(log)
	s, err := e.login(ctx, conn, a, log)
	if err != nil {
		var me *mysql.MyError
		switch {
		case errors.As(err, &me) && me.Code == wire.CodeAccessDenied:
			// The gateway's throttle logs wrong tokens at a bounded rate.
			log.Debug("session refused", "err", err)
		case !isClosed(err):
			log.Info("session refused", "err", err)
		}
		return
	}
	s.run(ctx)
}

// login is the connection phase: the greeting, the caller's proof (a
// caching_sha2_password scramble of a static token, or its secret in full
// over TLS or on loopback), the upstream's login with the credentials
// Airlock holds, and the session's start. It returns a session ready to
// run, or an error once the client has been answered.
func (e *Engine) login(ctx context.Context, conn net.Conn, a *transport.Admission, log *slog.Logger) (*relay, error) {
	l := &loginState{e: e, conn: conn, log: log, id: e.newID(), local: transport.IsLocal(conn.RemoteAddr())}
	info := e.greeting(ctx)
	cfg := wire.ServerAuthConfig{
		ServerVersion: info.version, ConnectionID: l.id, Charset: info.charset,
		Capabilities: wire.ClientCapabilities(info.capabilities, e.tls != nil),
		Status:       mysql.SERVER_STATUS_AUTOCOMMIT, Loopback: l.local,
	}
	if l.local {
		// Full authentication without TLS sends the secret RSA-encrypted;
		// from afar a key fetched in clear protects nothing, so it is
		// offered on loopback only.
		cfg.Key = e.key
	}
	auth, out, err := wire.NewServerAuth(cfg)
	if err != nil {
		return nil, err
	}
	l.auth = auth
	flow, err := l.authenticate(ctx, out)
	if err != nil {
		return nil, err
	}
	if !a.Authenticated() {
		flow.Release()
		return nil, errDropped // dropped to make room while authenticating
	}
	return l.open(ctx, flow)
}

var errDropped = errors.New("connection dropped while authenticating")

// loginState is one client's connection phase.
type loginState struct {
	e     *Engine
	conn  net.Conn
	log   *slog.Logger
	auth  *wire.ServerAuth
	id    uint32
	local bool
	// ahead is output that goes with the final answer (fast auth's
	// success, sent once the upstream is known to be reachable).
	ahead []byte
}

// authenticate drives the caller's authentication to an admitted session.
func (l *loginState) authenticate(ctx context.Context, out []byte) (*session.Session, error) {
	g := l.e.gateway
	mismatched := false
	for {
		if err := l.write(out); err != nil {
			return nil, err
		}
		p, err := wire.ReadPacket(l.conn, maxHandshakePacket)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				g.Rejected(protocols.MySQL, "protocol")
			}
			return nil, err
		}
		step := l.auth.Next(p)
		out = step.Output
		switch step.Action {
		case wire.AuthReadMore:
		case wire.AuthStartTLS:
			tc := tls.Server(l.conn, l.e.tls)
			if err := tc.Handshake(); err != nil {
				g.Rejected(protocols.MySQL, "protocol")
				return nil, err
			}
			l.conn = tc
		case wire.AuthCheckScramble:
			flow, err := g.Admit(ctx, l.caller(nil))
			if errors.Is(err, session.ErrProofMismatch) {
				// Not a static token's proof: a JWT, or a wrong token. Its
				// secret may come in full only over TLS or on loopback.
				mismatched = true
				if !l.auth.Secure() && !l.local {
					g.RejectedToken(ctx, l.caller(nil))
					resp := l.auth.Response()
					return nil, l.deny(myError(wire.CodeAccessDenied, "Access denied for user '%s' (using password: YES): "+
						"the token does not match, and any other secret (a JWT) is accepted only over TLS", resp.User))
				}
				out = l.auth.ScrambleChecked(false).Output
				continue
			}
			if err != nil {
				return nil, l.refused(err)
			}
			l.ahead = l.auth.ScrambleChecked(true).Output
			return flow, nil
		case wire.AuthCheckPassword:
			secret := protocols.Secret(l.auth.Password())
			flow, err := g.Admit(ctx, l.caller(&secret))
			if err != nil {
				return nil, l.refused(err)
			}
			return flow, nil
		case wire.AuthRefused:
			switch {
			case mismatched:
				g.RejectedToken(ctx, l.caller(nil))
			case errors.Is(step.Err, wire.ErrClearWithoutTLS):
				g.Rejected(protocols.MySQL, "tls")
			default:
				g.Rejected(protocols.MySQL, "protocol")
			}
			_ = l.write(out)
			return nil, step.Err
		default:
			return nil, l.deny(myError(wire.CodeHandshake, "Bad handshake"))
		}
	}
}

// caller is the caller as the handshake so far describes it: by the proof
// of its scramble, or by secret.
func (l *loginState) caller(secret *protocols.Secret) session.Caller {
	resp := l.auth.Response()
	c := session.Caller{Protocol: protocols.MySQL, User: resp.User, Connection: resp.Database,
		Peer: l.conn.RemoteAddr().String(), TLS: l.auth.Secure(), Local: l.local}
	if secret != nil {
		c.Secret = *secret
		return c
	}
	nonce, scramble := l.auth.Nonce(), l.auth.Scramble()
	c.Proof = func(h [32]byte) bool { return wire.VerifyCachingSHA2(h, nonce, scramble) }
	return c
}

// refused answers a caller Admit refused, in MySQL's own terms: a wrong
// name or secret is 1045, a connection that does not exist or may not be
// used is 1049 either way, so that no caller learns which exist.
func (l *loginState) refused(err error) error {
	resp := l.auth.Response()
	if me, ok := tooManySessions(err, resp.User); ok {
		return l.deny(me)
	}
	var ae *session.AdmitError
	switch {
	case errors.Is(err, session.ErrNoConnection) && errors.As(err, &ae):
		if resp.Database == "" {
			return l.deny(myError(codeBadDB, "No connection named: give the Airlock connection's name as the database"))
		}
		return l.deny(myError(codeBadDB, "Unknown database '%s': the connection does not exist or identity '%s' may not use it",
			resp.Database, ae.Identity))
	case errors.Is(err, session.ErrTLSRequired):
		return l.deny(myError(wire.CodeAccessDenied, "Airlock accepts secrets only over TLS from a non-local address: connect with TLS"))
	}
	return l.deny(myError(wire.CodeAccessDenied, "Access denied for user '%s' (using password: YES)", resp.User))
}

// deny answers the client with e and returns it as the error.
func (l *loginState) deny(e *mysql.MyError) error {
	_ = l.write(append(l.ahead, l.auth.Deny(e)...))
	return e
}

func (l *loginState) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := l.conn.Write(b)
	return err
}

// open logs in to the upstream with the flags the client chose, starts
// the session and admits the client.
func (l *loginState) open(ctx context.Context, flow *session.Session) (*relay, error) {
	e, c := l.e, flow.Conn
	resp, caps := l.auth.Response(), l.auth.Capabilities()
	attrs := map[string]string{"_client_name": "airlock", "airlock_identity": flow.Info.Identity.Name}
	if name := resp.Attributes["program_name"]; name != "" && len(name) < 256 {
		attrs["program_name"] = name
	}
	relayed := caps & wire.RelayCapabilities
	key := e.poolKey(c, relayed, resp.Charset, attrs)
	dctx, cancel := context.WithTimeout(ctx, e.set.ConnectTimeout)
	up, reused, err := e.acquireUpstream(dctx, key, dialConfig(c, relayed, resp.Charset, attrs), l.log)
	cancel()
	if err != nil {
		f := fault(c.Name, err)
		flow.Abort(f)
		return nil, l.deny(faultError(f))
	}
	if !reused {
		e.learn(c.Name, up)
		e.learnSessionCap(c)
	}
	if err := wire.CheckRelay(caps, up.Capabilities); err != nil {
		flow.Abort(err)
		quit(up.Conn)
		return nil, l.deny(myError(wire.CodeGateway, "The upstream of connection '%s' cannot serve this client: %v", c.Name, err))
	}
	e.gateway.Metrics().UpstreamSession(protocols.MySQL, c.Name, reused)
	if err := flow.Start(); err != nil {
		quit(up.Conn)
		return nil, l.deny(myError(wire.CodeGateway, "Session recording is unavailable; Airlock does not run sessions unrecorded"))
	}
	s := newRelay(e, l.conn, up, flow, l.id, caps)
	s.poolKey = key
	e.register(s)
	_ = l.conn.SetWriteDeadline(time.Now().Add(e.set.HandshakeTimeout))
	err = l.write(append(l.ahead, l.auth.Accept(up.Status)...))
	_ = l.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		e.unregister(s)
		quit(up.Conn)
		flow.Close("client went away during the handshake")
		return nil, err
	}
	s.log.Info("session started", "tls", l.auth.Secure(), "connection_id", l.id, "upstream_id", up.ConnectionID, "reused", reused)
	return s, nil
}

// dialUpstream logs in to the upstream, trying again for a moment while it
// is out of connection slots: a server frees the slot of a session that
// ended only once its thread exits, so a pool that closes connections and
// opens new ones at once (through Airlock, one hop later) can find the
// slots of those just closed still taken.
func dialUpstream(ctx context.Context, cfg wire.DialConfig) (*wire.Upstream, error) {
	up, err := wire.Dial(ctx, cfg)
	for i := 0; i < 5 && tooManyConnections(err); i++ {
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(25<<i) * time.Millisecond):
		}
		up, err = wire.Dial(ctx, cfg)
	}
	return up, err
}

// tooManyConnections reports whether err is the upstream refusing a login
// because its connection slots are full.
func tooManyConnections(err error) bool {
	var me *mysql.MyError
	return errors.As(err, &me) && me.Code == codeTooMany
}

// recoverSession keeps a bug that one client's input reaches from ending
// every other session: the one session ends, with its stack logged.
func recoverSession(log *slog.Logger) {
	if r := recover(); r != nil {
		log.Error("session ended by an internal error", "panic", r, "stack", string(debug.Stack()))
	}
}

// isClosed reports whether err says the peer went away. A reset counts:
// a client that closes its socket with a result still arriving (a driver
// cancelling a query mid-rows) resets the connection rather than ending
// it cleanly, and has gone all the same.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, errDropped)
}
