package wire

import (
	"errors"
	"fmt"
	"slices"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ErrClearWithoutTLS is why a client that offered mysql_clear_password
// without TLS from another machine was refused.
var ErrClearWithoutTLS = errors.New("clear password offered without TLS")

// The caller-facing authentication is a state machine of its own rather
// than go-mysql's server.Conn: that one owns the socket, verifies only
// against clear passwords it holds (Airlock holds SHA-256 hashes of tokens,
// and nothing at all for JWTs) and cannot pause for an asynchronous check.

// ServerAuthConfig is what the greeting announces and what the machine
// allows.
type ServerAuthConfig struct {
	// ServerVersion is the version string clients see; use the upstream's
	// own, since clients and ORMs pick features by it.
	ServerVersion string
	ConnectionID  uint32
	// Capabilities are the flags offered; see ClientCapabilities. CLIENT_SSL
	// among them means the caller can run a TLS handshake when asked.
	Capabilities uint32
	Charset      uint8
	Status       uint16
	// Key serves the RSA exchange of full authentication on plain TCP; nil
	// makes full authentication need TLS or a Unix socket.
	Key *ServerKey
	// Loopback says the client connected from this machine, where
	// mysql_clear_password is accepted without TLS.
	Loopback bool
	// Socket says the client is on a Unix socket, where clients send clear
	// passwords as they would over TLS.
	Socket bool
	// Nonce is the scramble to use; nil draws a fresh one (tests set it).
	Nonce []byte
}

// AuthAction tells the caller what to do after a step.
type AuthAction uint8

// Actions; every step first has the caller write AuthStep.Output.
const (
	// AuthReadMore: read the next packet and pass it to Next.
	AuthReadMore AuthAction = iota
	// AuthStartTLS: run the TLS server handshake on the connection, then
	// read the next packet (the real response) and pass it to Next.
	AuthStartTLS
	// AuthCheckScramble: check Scramble() with VerifyCachingSHA2 against the
	// stored token hashes of Response().User and pass the verdict to
	// ScrambleChecked. A caller without a stored hash (a JWT) passes false,
	// which asks the client for its password in full.
	AuthCheckScramble
	// AuthCheckPassword: verify Password() (a token or a JWT) with the
	// authenticator, then write Accept or Deny.
	AuthCheckPassword
	// AuthAccepted: the scramble matched a stored hash; write Accept (or
	// Deny, if the upstream cannot be reached).
	AuthAccepted
	// AuthRefused: Output holds an ERR packet; close after writing it. Err
	// says why, for the log.
	AuthRefused
)

// AuthStep is the outcome of one input to the machine.
type AuthStep struct {
	Action AuthAction
	// Output is framed packets to write before acting.
	Output []byte
	Err    error
}

type authState uint8

const (
	stateGreeted authState = iota
	stateAfterTLS
	stateSwitched
	stateScramble
	stateFullAuth
	stateKeySent
	stateDone
)

// ServerAuth authenticates one caller: packets in, packets and an outcome
// out, without touching the network.
type ServerAuth struct {
	cfg      ServerAuthConfig
	nonce    []byte
	state    authState
	seq      uint8
	secure   bool
	resp     *HandshakeResponse
	scramble []byte
	password []byte
}

// Authentication plugin names.
const (
	PluginCachingSHA2 = mysql.AUTH_CACHING_SHA2_PASSWORD
	PluginNative      = mysql.AUTH_NATIVE_PASSWORD
	PluginClear       = mysql.AUTH_CLEAR_PASSWORD
	PluginSHA256      = mysql.AUTH_SHA256_PASSWORD
	PluginEd25519     = mysql.AUTH_MARIADB_ED25519
)

// caching_sha2_password's AuthMoreData codes.
const (
	authMoreData      = mysql.MORE_DATE_HEADER
	fastAuthOK        = mysql.CACHE_SHA2_FAST_AUTH
	performFullAuth   = mysql.CACHE_SHA2_FULL_AUTH
	requestPublicKey  = 0x02
	authSwitchRequest = mysql.EOF_HEADER
)

// NewServerAuth starts the connection phase and returns the greeting to
// write.
func NewServerAuth(cfg ServerAuthConfig) (*ServerAuth, []byte, error) {
	nonce := cfg.Nonce
	if nonce == nil {
		var err error
		if nonce, err = NewNonce(); err != nil {
			return nil, nil, err
		}
	}
	if len(nonce) != NonceLen {
		return nil, nil, fmt.Errorf("nonce of %d bytes, want %d", len(nonce), NonceLen)
	}
	a := &ServerAuth{cfg: cfg, nonce: nonce, secure: cfg.Socket}
	g := &Greeting{
		ServerVersion: cfg.ServerVersion, ConnectionID: cfg.ConnectionID, Nonce: nonce,
		Capabilities: cfg.Capabilities | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH,
		Charset:      cfg.Charset, Status: cfg.Status, AuthPlugin: PluginCachingSHA2,
	}
	a.cfg.Capabilities = g.Capabilities
	return a, a.emit(nil, AppendGreeting(nil, g)), nil
}

// emit frames payload at the next sequence id.
func (a *ServerAuth) emit(out, payload []byte) []byte {
	out, a.seq = AppendPacket(out, a.seq, payload)
	return out
}

func (a *ServerAuth) refuse(code uint16, msg string, why error) AuthStep {
	a.state = stateDone
	return AuthStep{Action: AuthRefused, Output: a.emit(nil, AppendERR(nil, NewError(code, msg))), Err: why}
}

// accessDenied refuses with MySQL's own wording for bad credentials.
func (a *ServerAuth) accessDenied(usedPassword bool, why error) AuthStep {
	using := "NO"
	if usedPassword {
		using = "YES"
	}
	user := ""
	if a.resp != nil {
		user = a.resp.User
	}
	return a.refuse(CodeAccessDenied, fmt.Sprintf("Access denied for user '%s' (using password: %s)", user, using), why)
}

// errNative explains to a caller whose client cannot prove a token.
const errNative = "Airlock cannot verify mysql_native_password: connect with caching_sha2_password " +
	"(the default of current clients), or with --enable-cleartext-plugin over TLS"

// Next feeds the machine the client's next packet.
func (a *ServerAuth) Next(p Packet) AuthStep {
	if a.state == stateScramble || a.state == stateDone {
		return a.refuse(CodeHandshake, "Bad handshake", errors.New("packet after the authentication outcome"))
	}
	if p.Seq != a.seq {
		return a.refuse(CodeHandshake, "Got packets out of order",
			fmt.Errorf("client packet has sequence id %d, want %d", p.Seq, a.seq))
	}
	a.seq = p.NextSeq()
	switch a.state {
	case stateGreeted, stateAfterTLS:
		return a.handshakeResponse(p.Payload)
	case stateSwitched:
		return a.scrambleReceived(p.Payload)
	case stateFullAuth:
		return a.fullAuth(p.Payload)
	default: // stateKeySent
		return a.encryptedPassword(p.Payload)
	}
}

func (a *ServerAuth) handshakeResponse(payload []byte) AuthStep {
	if IsSSLRequest(payload) {
		if a.state != stateGreeted || a.cfg.Capabilities&mysql.CLIENT_SSL == 0 {
			return a.refuse(CodeHandshake, "TLS is not available on this listener", errors.New("unexpected SSLRequest"))
		}
		a.state, a.secure = stateAfterTLS, true
		return AuthStep{Action: AuthStartTLS}
	}
	resp, err := ParseHandshakeResponse(payload)
	if err != nil {
		return a.refuse(CodeHandshake, "Bad handshake", fmt.Errorf("handshake response: %w", err))
	}
	a.resp = resp
	switch {
	case resp.Capabilities&mysql.CLIENT_PLUGIN_AUTH == 0:
		return a.refuse(CodeAccessDenied, errNative, errors.New("client cannot switch authentication plugins"))
	case resp.AuthPlugin == PluginCachingSHA2:
		return a.scrambleReceived(resp.AuthResponse)
	case resp.AuthPlugin == PluginClear:
		if !a.secure && !a.cfg.Loopback {
			return a.refuse(CodeAccessDenied, "mysql_clear_password is accepted only over TLS",
				ErrClearWithoutTLS)
		}
		return a.passwordReceived(trimNul(resp.AuthResponse))
	}
	// Any other plugin (mysql_native_password, sha256_password, ed25519):
	// ask for caching_sha2_password with the same nonce.
	a.state = stateSwitched
	req := appendNul([]byte{authSwitchRequest}, PluginCachingSHA2)
	req = append(append(req, a.nonce...), 0)
	return AuthStep{Action: AuthReadMore, Output: a.emit(nil, req)}
}

// scrambleReceived takes a caching_sha2_password fast-path scramble.
func (a *ServerAuth) scrambleReceived(data []byte) AuthStep {
	switch len(data) {
	case 0:
		return a.accessDenied(false, errors.New("no password"))
	case 32:
		a.scramble, a.state = slices.Clone(data), stateScramble
		return AuthStep{Action: AuthCheckScramble}
	}
	// A client that answers the switch with a 20-byte native scramble
	// could not load caching_sha2_password.
	return a.refuse(CodeAccessDenied, errNative, fmt.Errorf("caching_sha2_password scramble of %d bytes", len(data)))
}

// ScrambleChecked takes the caller's verdict on Scramble(). A mismatch is
// not a refusal yet: the client is asked for the password in full, as
// MySQL does on a cache miss, so a JWT can be checked.
func (a *ServerAuth) ScrambleChecked(ok bool) AuthStep {
	if a.state != stateScramble {
		return a.refuse(CodeHandshake, "Bad handshake", errors.New("scramble verdict out of turn"))
	}
	if ok {
		a.state = stateDone
		return AuthStep{Action: AuthAccepted, Output: a.emit(nil, []byte{authMoreData, fastAuthOK})}
	}
	a.state = stateFullAuth
	return AuthStep{Action: AuthReadMore, Output: a.emit(nil, []byte{authMoreData, performFullAuth})}
}

// fullAuth takes the client's answer to perform_full_authentication.
func (a *ServerAuth) fullAuth(data []byte) AuthStep {
	if a.secure {
		return a.passwordReceived(trimNul(data))
	}
	if a.cfg.Key == nil {
		return a.refuse(CodeAccessDenied, "Full authentication needs TLS: connect with TLS, or use a static token",
			errors.New("no RSA key for full authentication on plain TCP"))
	}
	if len(data) == 1 && data[0] == requestPublicKey {
		a.state = stateKeySent
		return AuthStep{Action: AuthReadMore, Output: a.emit(nil, append([]byte{authMoreData}, a.cfg.Key.PublicKeyPEM()...))}
	}
	return a.encryptedPassword(data)
}

func (a *ServerAuth) encryptedPassword(data []byte) AuthStep {
	pw, err := a.cfg.Key.decryptPassword(data, a.nonce)
	if err != nil {
		return a.accessDenied(true, err)
	}
	return a.passwordReceived(pw)
}

func (a *ServerAuth) passwordReceived(pw []byte) AuthStep {
	if len(pw) == 0 {
		return a.accessDenied(false, errors.New("empty password"))
	}
	a.password, a.state = slices.Clone(pw), stateDone
	return AuthStep{Action: AuthCheckPassword}
}

// Response is the client's handshake response: user (the Airlock identity),
// database (the connection name), attributes; nil before it arrives.
func (a *ServerAuth) Response() *HandshakeResponse { return a.resp }

// Capabilities are the flags the session negotiated: those the client asked
// for among those offered.
func (a *ServerAuth) Capabilities() uint32 {
	if a.resp == nil {
		return 0
	}
	return a.resp.Capabilities & a.cfg.Capabilities
}

// Nonce is the scramble sent to the client.
func (a *ServerAuth) Nonce() []byte { return a.nonce }

// Scramble is the fast-path answer to check (AuthCheckScramble).
func (a *ServerAuth) Scramble() []byte { return a.scramble }

// Password is the clear secret to verify (AuthCheckPassword). It must not be
// logged.
func (a *ServerAuth) Password() string { return string(a.password) }

// Secure reports whether the session runs over TLS or a Unix socket.
func (a *ServerAuth) Secure() bool { return a.secure }

// Accept returns the OK packet that admits the caller, with status flags.
func (a *ServerAuth) Accept(status uint16) []byte {
	a.password = nil
	return a.emit(nil, AppendOK(nil, &OK{Status: status}, a.Capabilities()))
}

// Deny returns an ERR packet refusing the caller with e (use
// NewError(CodeAccessDenied, ...) for bad credentials).
func (a *ServerAuth) Deny(e *mysql.MyError) []byte {
	a.password, a.state = nil, stateDone
	return a.emit(nil, AppendERR(nil, e))
}
