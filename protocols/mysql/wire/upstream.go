package wire

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Dial is written on go-mysql's scramble functions rather than its
// client.Conn, which cannot serve here: it sends CLIENT_QUERY_ATTRIBUTES and
// CLIENT_DEPRECATE_EOF whatever the server offers, so the flags Airlock must
// mirror to its caller are not under its control; it exposes neither the
// negotiated flags nor the status; it has no "prefer" TLS mode; it reads
// through its own buffer, so the socket cannot be handed over with certainty
// that nothing was read ahead; and it panics on a malformed public key from
// the server.

// DialConfig says how to reach an upstream and log in with the credentials
// Airlock holds.
type DialConfig struct {
	// Network is "tcp" (default) or "unix".
	Network  string
	Address  string
	User     string
	Password string
	Database string
	TLS      TLSConfig
	// Capabilities are the relayed flags wanted (usually what the caller's
	// session negotiated); those the server lacks are dropped. 0 asks for
	// all of RelayCapabilities, which is how to learn what an upstream
	// offers.
	Capabilities uint32
	// Charset is the collation id for the session; 0 takes the server's
	// default.
	Charset uint8
	// Attributes are the connection attributes sent; nil sends
	// _client_name=airlock.
	Attributes map[string]string
	// ServerPublicKey encrypts the password for caching_sha2_password or
	// sha256_password over plain TCP; nil fetches the server's key, which
	// trusts the network as much as a session without TLS does.
	ServerPublicKey *rsa.PublicKey
	// Dial opens the connection; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// TLSConfig is the upstream TLS mode: "disable", "prefer" (default: TLS when
// the server offers it, unverified), "require" (TLS, certificate verified
// against CAFile when one is given, host name not checked) or "verify-full"
// (chain and host name verified, against CAFile or the system roots).
type TLSConfig struct {
	Mode       string
	CAFile     string
	ServerName string
}

// Upstream is an authenticated upstream session, handed over with nothing
// read ahead of the connection: the next byte on Conn is the server's
// response to the first command.
type Upstream struct {
	Conn          net.Conn
	ServerVersion string
	ConnectionID  uint32
	// ServerCapabilities are the flags the server offered; Capabilities the
	// ones the session negotiated.
	ServerCapabilities uint32
	Capabilities       uint32
	Charset            uint8
	Status             uint16
	AuthPlugin         string
	TLS                bool
}

// maxHandshakePacket bounds connection-phase packets from the upstream.
const maxHandshakePacket = 1 << 20

// Dial connects and authenticates to an upstream. The handshake obeys ctx's
// deadline and cancellation. Errors name the address and user, never the
// password.
func Dial(ctx context.Context, cfg DialConfig) (*Upstream, error) {
	if _, err := wantTLS(cfg.TLS.Mode, mysql.CLIENT_SSL); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Address, err)
	}
	network := cfg.Network
	if network == "" {
		network = "tcp"
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, network, cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s: %w", cfg.Address, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	up, err := handshake(conn, network, cfg)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return nil, fmt.Errorf("upstream %s as %q: %w", cfg.Address, cfg.User, err)
	}
	_ = up.Conn.SetDeadline(time.Time{})
	return up, nil
}

// clientConn numbers the connection phase's packets.
type clientConn struct {
	conn net.Conn
	seq  uint8
}

func (c *clientConn) read() ([]byte, error) {
	p, err := ReadPacket(c.conn, maxHandshakePacket)
	if err != nil {
		return nil, err
	}
	if p.Seq != c.seq {
		return nil, fmt.Errorf("%w: packet sequence id %d, want %d", ErrMalformed, p.Seq, c.seq)
	}
	c.seq = p.NextSeq()
	if len(p.Payload) == 0 {
		return nil, fmt.Errorf("%w: empty packet in the handshake", ErrMalformed)
	}
	return p.Payload, nil
}

func (c *clientConn) write(payload []byte) error {
	var err error
	c.seq, err = WritePacket(c.conn, c.seq, payload)
	return err
}

func handshake(conn net.Conn, network string, cfg DialConfig) (*Upstream, error) {
	c := &clientConn{conn: conn}
	payload, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	g, err := ParseGreeting(payload)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if g.Capabilities&mysql.CLIENT_SECURE_CONNECTION == 0 {
		return nil, errors.New("server does not support secure authentication")
	}
	useTLS, err := wantTLS(cfg.TLS.Mode, g.Capabilities)
	if err != nil {
		return nil, err
	}
	resp := handshakeResponse(cfg, g, useTLS)
	up := &Upstream{
		Conn: conn, ServerVersion: g.ServerVersion, ConnectionID: g.ConnectionID,
		ServerCapabilities: g.Capabilities, Capabilities: resp.Capabilities & g.Capabilities,
		Charset: resp.Charset, TLS: useTLS,
	}
	if useTLS {
		if err := c.write(AppendHandshakeResponse(nil, resp, true)); err != nil {
			return nil, fmt.Errorf("write SSLRequest: %w", err)
		}
		tc, err := clientTLS(conn, cfg)
		if err != nil {
			return nil, err
		}
		c.conn, up.Conn = tc, tc
	}
	a := &clientAuth{c: c, cfg: cfg, secure: useTLS || network == "unix", nonce: g.Nonce, plugin: g.AuthPlugin}
	if resp.AuthResponse, err = a.initial(); err != nil {
		return nil, err
	}
	resp.AuthPlugin = a.plugin
	if err := c.write(AppendHandshakeResponse(nil, resp, false)); err != nil {
		return nil, fmt.Errorf("write handshake response: %w", err)
	}
	ok, err := a.finish(up.Capabilities)
	if err != nil {
		return nil, err
	}
	up.Status, up.AuthPlugin = ok.Status, a.plugin
	return up, nil
}

// handshakeResponse builds the response to g: the relayed flags wanted that
// the server offers, plus those the connection phase needs.
func handshakeResponse(cfg DialConfig, g *Greeting, useTLS bool) *HandshakeResponse {
	want := cfg.Capabilities
	if want == 0 {
		want = RelayCapabilities
	}
	caps := want&RelayCapabilities&g.Capabilities | mysql.CLIENT_PROTOCOL_41 |
		mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_SECURE_CONNECTION |
		g.Capabilities&(mysql.CLIENT_PLUGIN_AUTH|mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
	if cfg.Database != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	attrs := cfg.Attributes
	if attrs == nil {
		attrs = map[string]string{"_client_name": "airlock"}
	}
	if len(attrs) > 0 && g.Capabilities&mysql.CLIENT_CONNECT_ATTRS != 0 {
		caps |= mysql.CLIENT_CONNECT_ATTRS
	}
	if useTLS {
		caps |= mysql.CLIENT_SSL
	}
	charset := cfg.Charset
	if charset == 0 {
		charset = g.Charset
	}
	return &HandshakeResponse{
		Capabilities: caps, MaxPacket: 1 << 24, Charset: charset,
		User: cfg.User, Database: cfg.Database, Attributes: attrs,
	}
}

func wantTLS(mode string, offered uint32) (bool, error) {
	has := offered&mysql.CLIENT_SSL != 0
	switch mode {
	case "disable":
		return false, nil
	case "", "prefer":
		return has, nil
	case "require", "verify-full":
		if !has {
			return false, fmt.Errorf("tls mode %s: server does not offer TLS", mode)
		}
		return true, nil
	}
	return false, fmt.Errorf("tls mode %q: want disable, prefer, require or verify-full", mode)
}

func clientTLS(conn net.Conn, cfg DialConfig) (*tls.Conn, error) {
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := tls.Client(conn, tc)
	if err := c.Handshake(); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return c, nil
}

func tlsConfig(cfg DialConfig) (*tls.Config, error) {
	var roots *x509.CertPool
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s: no certificates", cfg.TLS.CAFile)
		}
	}
	if cfg.TLS.Mode == "verify-full" {
		name := cfg.TLS.ServerName
		if name == "" {
			name, _, _ = net.SplitHostPort(cfg.Address)
		}
		return &tls.Config{RootCAs: roots, ServerName: name, MinVersion: tls.VersionTLS12}, nil
	}
	tc := &tls.Config{InsecureSkipVerify: true, ServerName: cfg.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if roots != nil {
		// require with a CA file: the chain is verified, the name is not.
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("upstream sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}
