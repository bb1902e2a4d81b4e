package postgres

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

const (
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	cancelRequestCode = 80877102
	maxStartupPacket  = 10000 // MAX_STARTUP_PACKET_LENGTH in PostgreSQL
)

// startup is what a client asked for in its StartupMessage.
type startup struct {
	user, database string
	params         map[string]string // runtime parameters passed upstream
	tls            bool
	negotiate      []string // options to list in NegotiateProtocolVersion
	minor          uint32
}

// readStartupPacket reads one length-prefixed startup packet with exact
// reads: nothing beyond it is buffered, so bytes a client sends ahead of the
// TLS handshake cannot be smuggled into the encrypted session.
func readStartupPacket(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:]))) - 4
	if n < 4 || n > maxStartupPacket {
		return nil, fmt.Errorf("invalid startup packet length %d", n+4)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, eofUnexpected(err)
	}
	return buf, nil
}

// handle runs one client connection from its first byte to its end. The
// transport bounds its time until it has authenticated (a), and closes
// conn when handle returns.
func (e *Engine) handle(ctx context.Context, conn net.Conn, a *transport.Admission) {
	log := protocols.LazyWith(e.log, "client", conn.RemoteAddr().String())
	conn, st, err := e.negotiate(conn)
	if err != nil {
		var pe *pgError
		if errors.As(err, &pe) {
			writeFatal(conn, pe)
			e.gateway.Rejected(protocols.Postgres, "protocol")
		}
		if !errors.Is(err, errHandled) && !isClosed(err) {
			log.Info("startup failed", "err", err)
		}
		return
	}
	s, err := e.authenticate(ctx, conn, st, a, log)
	if err != nil {
		var pe *pgError
		if errors.As(err, &pe) {
			writeFatal(conn, pe)
		}
		switch {
		case pe != nil && pe.Code == codeInvalidPassword:
			// The gateway's throttle logs wrong tokens at a bounded rate.
			log.Debug("session refused", "err", err)
		case !isClosed(err):
			log.Info("session refused", "err", err)
		}
		return
	}
	s.run(ctx)
}

// errHandled marks a startup that ended as the protocol intends (a cancel
// request, a client that went away after an SSL answer).
var errHandled = errors.New("handled")

// negotiate reads startup packets until the StartupMessage, answering
// SSLRequest and GSSENCRequest and serving CancelRequest on the way.
func (e *Engine) negotiate(conn net.Conn) (net.Conn, *startup, error) {
	isTLS := false
	for {
		pkt, err := readStartupPacket(conn)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return conn, nil, errHandled
			}
			return conn, nil, fatal(codeProtocolViolation, "invalid startup packet")
		}
		switch code := binary.BigEndian.Uint32(pkt); code {
		case sslRequestCode:
			if isTLS || e.tls == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return conn, nil, err
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return conn, nil, err
			}
			tc := tls.Server(conn, e.tls)
			if err := tc.Handshake(); err != nil {
				return conn, nil, fmt.Errorf("tls handshake: %w", err)
			}
			conn, isTLS = tc, true
		case gssEncRequestCode:
			// Airlock offers no GSSAPI encryption: 'N' lets libpq go on to
			// SSLRequest or a plain startup.
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return conn, nil, err
			}
		case cancelRequestCode:
			var cr pgproto3.CancelRequest
			if err := cr.Decode(pkt); err == nil {
				e.cancel(cr.ProcessID, cr.SecretKey)
			}
			return conn, nil, errHandled
		default:
			var sm pgproto3.StartupMessage
			if err := sm.Decode(pkt); err != nil {
				return conn, nil, fatal(codeProtocolViolation, fmt.Sprintf("unsupported frontend protocol %d.%d: Airlock supports 3.0 to 3.2", code>>16, code&0xffff))
			}
			st, err := parseStartup(&sm)
			if err != nil {
				return conn, nil, err
			}
			st.tls = isTLS
			return conn, st, nil
		}
	}
}

// allowedParams are the runtime parameters a client may set at startup. The
// rest (role, session_authorization, arbitrary GUCs in options) would let a
// caller change privileges or server behaviour without a statement Airlock
// could classify, so they are refused by name.
var allowedParams = map[string]bool{
	"application_name": true, "client_encoding": true, "datestyle": true, "timezone": true,
	"intervalstyle": true, "extra_float_digits": true, "search_path": true,
	"statement_timeout": true, "lock_timeout": true, "idle_in_transaction_session_timeout": true,
	"default_transaction_isolation": true, "default_transaction_read_only": true,
	"bytea_output": true, "standard_conforming_strings": true, "geqo": true,
	"jit": true, "work_mem": true, "client_min_messages": true,
	"transaction_isolation": true, "transaction_read_only": true,
}

func parseStartup(sm *pgproto3.StartupMessage) (*startup, error) {
	st := &startup{params: map[string]string{}, minor: sm.ProtocolVersion & 0xffff}
	keys := make([]string, 0, len(sm.Parameters))
	for k := range sm.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := sm.Parameters[k]
		switch lk := strings.ToLower(k); {
		case k == "user":
			st.user = v
		case k == "database":
			st.database = v
		case k == "replication":
			if v != "false" && v != "off" && v != "no" && v != "0" {
				return nil, fatal(codeFeatureUnsupported, "replication connections are not supported through Airlock")
			}
		case strings.HasPrefix(k, "_pq_."):
			st.negotiate = append(st.negotiate, k)
		case k == "options":
			if err := parseOptions(v, st.params); err != nil {
				return nil, err
			}
		case allowedParams[lk]:
			st.params[k] = v
		default:
			return nil, fatal(codeInsufficientPriv, fmt.Sprintf("startup parameter %q is not allowed through Airlock", k))
		}
	}
	if st.user == "" {
		return nil, fatal(codeInvalidAuthSpec, "no PostgreSQL user name specified in startup packet")
	}
	if st.database == "" {
		st.database = st.user
	}
	if st.minor > 0 {
		// Airlock speaks protocol 3.0 to clients (its cancel keys are 4 bytes).
		st.negotiate = append(st.negotiate, "")
	}
	return st, nil
}

// parseOptions reads the startup "options" value: command-line switches as
// libpq passes them ("-c name=value", "--name=value"), whitespace separated
// with backslash escapes. Only allowed parameters pass.
func parseOptions(v string, into map[string]string) error {
	var words []string
	var cur strings.Builder
	esc := false
	for _, r := range v {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == ' ' || r == '\t' || r == '\n':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var kv string
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case strings.HasPrefix(w, "-c"):
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			return fatal(codeInsufficientPriv, fmt.Sprintf("startup option %q is not allowed through Airlock", w))
		}
		name, val, ok := strings.Cut(kv, "=")
		name = strings.ReplaceAll(name, "-", "_")
		if !ok || !allowedParams[strings.ToLower(name)] {
			return fatal(codeInsufficientPriv, fmt.Sprintf("startup option %q is not allowed through Airlock", name))
		}
		into[name] = val
	}
	return nil
}

// authenticate asks for the caller's secret, admits the caller into a
// session, dials the upstream and opens the session. It returns a session
// ready to run.
func (e *Engine) authenticate(ctx context.Context, conn net.Conn, st *startup, a *transport.Admission, log *slog.Logger) (*relay, error) {
	caller := session.Caller{Protocol: protocols.Postgres, User: st.user, Connection: st.database,
		Peer: conn.RemoteAddr().String(), TLS: st.tls, Local: transport.IsLocal(conn.RemoteAddr())}
	if err := e.gateway.AcceptsSecret(caller); err != nil {
		return nil, fatal(codeInvalidAuthSpec, "Airlock accepts tokens only over TLS from a non-local address: connect with sslmode=require")
	}
	password, err := e.askPassword(conn, st)
	if err != nil {
		return nil, err
	}
	caller.Secret = protocols.Secret(password)
	flow, err := e.gateway.Admit(ctx, caller)
	if err != nil {
		if pe, ok := tooManySessions(err, st.user, st.database); ok {
			return nil, pe
		}
		var ae *session.AdmitError
		switch {
		case errors.Is(err, session.ErrNoConnection) && errors.As(err, &ae):
			// One message for both cases: a caller cannot probe which exist.
			return nil, fatal(codeInvalidAuthSpec, fmt.Sprintf("connection %q does not exist or identity %q may not use it", st.database, ae.Identity))
		case errors.Is(err, session.ErrTLSRequired):
			return nil, fatal(codeInvalidAuthSpec, "Airlock accepts tokens only over TLS from a non-local address: connect with sslmode=require")
		default:
			return nil, fatal(codeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", st.user))
		}
	}
	if !a.Authenticated() {
		flow.Release()
		return nil, errHandled // dropped to make room while authenticating
	}
	c := flow.Conn
	up, key, reused, err := e.acquireUpstream(ctx, c, st.params, log)
	if err != nil {
		f := fault(c.Name, err)
		flow.Abort(f)
		return nil, faultError(f)
	}
	e.gateway.Metrics().UpstreamSession(protocols.Postgres, c.Name, reused)
	s := newRelay(e, conn, up, flow)
	s.poolKey = key
	if err := s.open(st); err != nil {
		up.conn.Close()
		return nil, err
	}
	return s, nil
}

// askPassword asks the client for its password (the Airlock token) and
// reads it.
func (e *Engine) askPassword(conn net.Conn, st *startup) (string, error) {
	var out []byte
	if len(st.negotiate) > 0 {
		opts := st.negotiate
		if opts[len(opts)-1] == "" {
			opts = opts[:len(opts)-1]
		}
		out, _ = (&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: opts}).Encode(out)
	}
	out, _ = (&pgproto3.AuthenticationCleartextPassword{}).Encode(out)
	if _, err := conn.Write(out); err != nil {
		return "", err
	}
	typ, body, err := readMessageExact(conn, maxStartupPacket)
	if err != nil {
		if errors.Is(err, io.EOF) {
			// psql hangs up to ask the user for a password, then reconnects.
			return "", errHandled
		}
		e.gateway.Rejected(protocols.Postgres, "protocol")
		return "", fatal(codeProtocolViolation, "invalid password packet")
	}
	if typ != 'p' {
		e.gateway.Rejected(protocols.Postgres, "protocol")
		return "", fatal(codeProtocolViolation, fmt.Sprintf("expected password response, got message type %q", typ))
	}
	var pm pgproto3.PasswordMessage
	if err := pm.Decode(body); err != nil {
		e.gateway.Rejected(protocols.Postgres, "protocol")
		return "", fatal(codeProtocolViolation, "invalid password packet")
	}
	return pm.Password, nil
}

// readMessageExact reads one typed message with exact reads, buffering
// nothing past it (the session's own reader takes over afterwards).
func readMessageExact(c net.Conn, max int) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:]))) - 4
	if n < 0 || n > max {
		return 0, nil, fmt.Errorf("%w: %d bytes", errTooLarge, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return 0, nil, eofUnexpected(err)
	}
	return hdr[0], body, nil
}

func writeFatal(conn net.Conn, pe *pgError) {
	if pe.Severity == "" {
		pe.Severity = "FATAL"
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write(pe.encode(nil))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errHandled)
}
