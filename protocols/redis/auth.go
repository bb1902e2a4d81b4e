package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// maxAuthFailures is how many wrong tokens a connection may send before it
// is closed: enough for a person who mistyped, too few to guess with.
const maxAuthFailures = 3

// clientConn is a client connection before and during its session: the
// socket, its buffers and the request decoder, which the session takes
// over with whatever the client pipelined behind its AUTH.
type clientConn struct {
	engine *Engine
	conn   net.Conn
	tls    bool
	log    *slog.Logger
	in     *transport.Reader
	req    *resp.RequestDecoder
	out    *transport.Writer
	proto  resp.Proto
	// name is the client name given with HELLO … SETNAME before the
	// upstream existed.
	name     string
	failures int
	// owned is set once a session owns the buffers.
	owned bool
}

func newClientConn(e *Engine, conn net.Conn, isTLS bool, log *slog.Logger) *clientConn {
	in := transport.NewReader(conn, 0)
	c := &clientConn{engine: e, conn: conn, tls: isTLS, log: log, in: in, out: transport.NewWriter(conn), proto: resp.RESP2}
	c.req = resp.NewRequestDecoder(respReader{in, transport.BufferSize},
		resp.RequestLimits{MaxBulk: int64(e.set.MaxBulk), MaxCommand: int64(e.set.MaxCommand)})
	c.req.SetAuthenticated(false)
	return c
}

// release gives the pooled buffers back unless a session took them.
func (c *clientConn) release() {
	if !c.owned {
		c.in.Release()
		c.out.Release()
	}
}

// reply writes one reply, flushed unless more commands are buffered.
func (c *clientConn) reply(b []byte) error {
	if _, err := c.out.Write(b); err != nil {
		return err
	}
	if c.in.Buffered() == 0 {
		return c.out.Flush()
	}
	return nil
}

func (c *clientConn) replyError(msg string) error { return c.reply(resp.AppendError(nil, msg)) }

// login answers the commands Redis allows before authentication (AUTH,
// HELLO, PING, QUIT, RESET) until the caller has authenticated, then opens
// the session: upstream dialled, recording started.
func (c *clientConn) login(ctx context.Context, a *transport.Admission) (*relay, error) {
	for {
		args, _, err := c.req.Next()
		if err != nil {
			var pe *resp.ProtocolError
			if errors.As(err, &pe) {
				c.engine.gateway.Rejected(protocols.Redis, "protocol")
				_ = c.replyError("ERR " + pe.Msg)
			}
			return nil, err
		}
		var s *relay
		switch name := strings.ToUpper(string(args[0])); name {
		case "AUTH":
			if len(args) < 2 || len(args) > 3 {
				err = c.replyError(wrongArgs(name))
				break
			}
			user := ""
			if len(args) == 3 {
				user = string(args[1])
			}
			s, err = c.admit(ctx, a, user, string(args[len(args)-1]), false)
		case "HELLO":
			h, msg := parseHelloArgs(args)
			switch {
			case msg != "":
				err = c.replyError(msg)
			case !h.auth:
				err = c.replyError(msgHelloAuth)
			default:
				// The protocol and name apply only when the login does.
				proto, name := c.proto, c.name
				if h.proto != 0 {
					c.proto = h.proto
				}
				if h.setName {
					c.name = h.name
				}
				if s, err = c.admit(ctx, a, h.user, h.pass, true); s == nil {
					c.proto, c.name = proto, name
				}
			}
		case "PING":
			err = c.reply(pong(args, c.proto))
		case "QUIT":
			_ = c.reply(resp.AppendSimple(nil, "OK"))
			return nil, errHandled
		case "RESET":
			c.proto, c.name = resp.RESP2, ""
			err = c.reply(resp.AppendSimple(nil, "RESET"))
		default:
			err = c.replyError(msgNoAuth)
		}
		if s != nil || err != nil {
			return s, err
		}
	}
}

func pong(args [][]byte, p resp.Proto) []byte {
	switch len(args) {
	case 1:
		return resp.AppendSimple(nil, "PONG")
	case 2:
		return resp.AppendBulk(nil, args[1])
	}
	return resp.AppendError(nil, wrongArgs("ping"))
}

// route reads the connection a user name chooses (see the package
// documentation): identity@connection, or the only Redis connection.
func (e *Engine) route(user string) (identity, connection string) {
	conns := e.gateway.Connections(protocols.Redis)
	identity = user
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		named := user[i+1:]
		// With one connection an identity may be an e-mail address
		// without @connection: the suffix counts only when it names it.
		if len(conns) != 1 || conns[0].Name == named {
			identity, connection = user[:i], named
		}
	}
	if connection == "" && len(conns) == 1 {
		connection = conns[0].Name
	}
	if identity == "default" {
		identity = ""
	}
	return identity, connection
}

// admit authenticates the caller and opens its session. A wrong token is
// answered as Redis answers one and the connection stays open; anything
// else that refuses the caller closes it.
func (c *clientConn) admit(ctx context.Context, a *transport.Admission, user, secret string, hello bool) (*relay, error) {
	e := c.engine
	identity, connection := e.route(user)
	caller := session.Caller{Protocol: protocols.Redis, User: identity, Secret: protocols.Secret(secret),
		Connection: connection, Peer: c.conn.RemoteAddr().String(), TLS: c.tls, Local: transport.IsLocal(c.conn.RemoteAddr())}
	if connection == "" {
		_ = c.replyError("ERR Airlock serves several Redis connections: authenticate as <identity>@<connection>")
		return nil, errHandled
	}
	flow, err := e.gateway.Admit(ctx, caller)
	if err != nil {
		return nil, c.refused(err, connection)
	}
	if !a.Authenticated() {
		flow.Release()
		return nil, errHandled // dropped to make room while authenticating
	}
	chunk := 0
	if flow.Conn.Masking != nil && flow.Conn.Masking.For(flow.Info.Identity) != nil {
		chunk = int(e.set.MaxMaskedValue)
	}
	up, err := e.dial(ctx, flow.Conn, dialOptions{proto: c.proto, name: c.name, chunk: chunk})
	if err != nil {
		f := fault(flow.Conn.Name, err)
		flow.Abort(f)
		_ = c.replyError(faultError(f))
		return nil, errHandled
	}
	if err := flow.Start(); err != nil {
		up.conn.Close()
		_ = c.replyError("ERR session recording is unavailable; Airlock does not run sessions unrecorded")
		return nil, errHandled
	}
	s := newRelay(c, up, flow)
	var ok []byte
	if hello {
		ok = appendHello(nil, up.hello, c.proto)
	} else {
		ok = resp.AppendSimple(nil, "OK")
	}
	if err := c.reply(ok); err != nil {
		s.close("client went away during authentication")
		return nil, err
	}
	s.log.Info("session started", "tls", c.tls, "proto", int(c.proto))
	return s, nil
}

// admitError is the client's error for a caller Admit refused.
func admitError(err error, connection string) string {
	var ae *session.AdmitError
	switch {
	case errors.Is(err, session.ErrTLSRequired):
		return msgTLS
	case errors.Is(err, session.ErrTooManySessions):
		return msgTooMany
	case errors.Is(err, session.ErrNoConnection) && errors.As(err, &ae):
		// One message for both cases: a caller cannot probe which exist.
		return fmt.Sprintf("NOPERM connection %q does not exist or identity %q may not use it", connection, ae.Identity)
	}
	return msgWrongPass
}

// refused answers a caller Admit refused; the error ends the connection
// unless the caller may try another token.
func (c *clientConn) refused(err error, connection string) error {
	msg := admitError(err, connection)
	if msg != msgWrongPass {
		_ = c.replyError(msg)
		return errHandled
	}
	c.failures++
	if werr := c.replyError(msg); werr != nil {
		return werr
	}
	if c.failures >= maxAuthFailures {
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.out.Flush()
		return errHandled
	}
	return nil
}

// helloArgs is what a HELLO asked for.
type helloArgs struct {
	proto            resp.Proto // 0: not given
	auth             bool
	user, pass, name string
	setName          bool
}

// parseHelloArgs reads HELLO [protover [AUTH user pass] [SETNAME name]] as
// Redis reads it; a non-empty message is the error to answer with.
func parseHelloArgs(args [][]byte) (helloArgs, string) {
	var h helloArgs
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return h, "ERR Protocol version is not an integer or out of range"
		}
		if v < 2 || v > 3 {
			return h, msgNoProto
		}
		h.proto = resp.Proto(v)
	}
	for j := 2; j < len(args); j++ {
		more := len(args) - 1 - j
		switch opt := string(args[j]); {
		case strings.EqualFold(opt, "AUTH") && more >= 2:
			h.auth, h.user, h.pass = true, string(args[j+1]), string(args[j+2])
			j += 2
		case strings.EqualFold(opt, "SETNAME") && more >= 1:
			h.setName, h.name = true, string(args[j+1])
			if !validClientName(h.name) {
				return h, msgBadName
			}
			j++
		default:
			return h, "ERR Syntax error in HELLO option '" + opt + "'"
		}
	}
	return h, ""
}

// validClientName is Redis's rule for client names: printable ASCII
// without spaces.
func validClientName(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			return false
		}
	}
	return true
}
