package wire

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The connection-phase packets are encoded and decoded by hand because
// go-mysql keeps its HandshakeV10 writer and HandshakeResponse41 parser
// unexported inside server.Conn and client.Conn, each bound to a socket.

// RelayCapabilities are the flags that shape the command phase: how
// commands, OK packets and result sets are laid out, and what the server may
// send. Packets are relayed raw, so the client's session and the upstream's
// must agree on every one of them.
const RelayCapabilities = mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_NO_SCHEMA |
	mysql.CLIENT_ODBC | mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE |
	mysql.CLIENT_IGNORE_SIGPIPE | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_STATEMENTS |
	mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_SESSION_TRACK |
	mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_QUERY_ATTRIBUTES

// Left out of RelayCapabilities on purpose:
//   - CLIENT_COMPRESS, CLIENT_ZSTD_COMPRESSION_ALGORITHM: compressed frames
//     would have to be inflated to be inspected; not supported yet.
//   - CLIENT_LOCAL_FILES: LOAD DATA LOCAL lets the server read files from the
//     caller's machine, a channel policy has not decided to open.
//   - CLIENT_OPTIONAL_RESULTSET_METADATA: result sets without column
//     definitions could not be masked.
//   - CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS, MULTI_FACTOR_AUTHENTICATION: they
//     concern the upstream credential, which is Airlock's, not the caller's.
//   - CLIENT_SSL_VERIFY_SERVER_CERT, CLIENT_REMEMBER_OPTIONS,
//     CLIENT_CAPABILITY_EXTENSION: client-side or unused on the wire.

// handshakeCapabilities are the connection-phase flags Airlock implements
// itself on each side; they do not outlive the handshake.
const handshakeCapabilities = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_ATTRS

// ClientCapabilities returns the flags to offer callers in the greeting,
// given the flags the upstream offers: the relayed ones the upstream has,
// the connection-phase ones Airlock implements, and CLIENT_SSL when the
// listener can start TLS. A caller can then only choose what the upstream
// session can be asked for.
func ClientCapabilities(upstreamOffered uint32, tls bool) uint32 {
	caps := upstreamOffered&RelayCapabilities | handshakeCapabilities | mysql.CLIENT_PROTOCOL_41
	if tls {
		caps |= mysql.CLIENT_SSL
	}
	return caps
}

// CheckRelay reports an error unless the client's session and the
// upstream's negotiated the same relayed flags, the condition for relaying
// the command phase raw.
func CheckRelay(client, upstream uint32) error {
	if diff := (client ^ upstream) & RelayCapabilities; diff != 0 {
		return fmt.Errorf("client and upstream sessions disagree on capabilities %s", CapabilityNames(diff))
	}
	return nil
}

// CapabilityNames lists the names of the flags set in caps, for messages.
func CapabilityNames(caps uint32) string {
	var names []string
	for bit := uint32(1); bit != 0; bit <<= 1 {
		if caps&bit != 0 {
			names = append(names, mysql.CapNames[bit])
		}
	}
	return fmt.Sprint(names)
}

// NonceLen is the length of the scramble the server sends in its greeting.
const NonceLen = 20

// NewNonce returns a fresh 20-byte scramble. Bytes are 7-bit and never NUL,
// as MySQL makes them, because some clients read the scramble's second part
// as a NUL-terminated string.
func NewNonce() ([]byte, error) {
	b := make([]byte, NonceLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	for i := range b {
		b[i] &= 0x7f
		if b[i] == 0 {
			b[i] = 1 + byte(i)
		}
	}
	return b, nil
}

// Greeting is the server's HandshakeV10, the first packet of a connection.
type Greeting struct {
	ServerVersion string
	ConnectionID  uint32
	// Nonce is the auth plugin data: the 20-byte scramble, without the
	// trailing NUL some servers send.
	Nonce        []byte
	Capabilities uint32
	// Charset is the low byte of the server's default collation id.
	Charset uint8
	Status  uint16
	// MariaDBCapabilities are MariaDB's extended flags, sent in place of
	// reserved bytes when CLIENT_LONG_PASSWORD is clear.
	MariaDBCapabilities uint32
	AuthPlugin          string
}

// AppendGreeting appends g's payload to dst.
func AppendGreeting(dst []byte, g *Greeting) []byte {
	dst = append(dst, mysql.ClassicProtocolVersion)
	dst = appendNul(dst, g.ServerVersion)
	dst = appendU32(dst, g.ConnectionID)
	// A scramble has at least 8 bytes; a shorter one is padded with NULs.
	nonce := g.Nonce
	if len(nonce) < 8 {
		nonce = append(slices.Clip(nonce), make([]byte, 8-len(nonce))...)
	}
	dst = append(dst, nonce[:8]...)
	dst = append(dst, 0)
	dst = appendU16(dst, uint16(g.Capabilities))
	dst = append(dst, g.Charset)
	dst = appendU16(dst, g.Status)
	dst = appendU16(dst, uint16(g.Capabilities>>16))
	if g.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 {
		dst = append(dst, byte(len(nonce)+1))
	} else {
		dst = append(dst, 0)
	}
	dst = append(dst, 0, 0, 0, 0, 0, 0)
	dst = appendU32(dst, g.MariaDBCapabilities)
	if g.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0 {
		part2 := nonce[8:]
		dst = append(dst, part2...)
		// The second part is at least 13 bytes, NUL included.
		dst = append(dst, make([]byte, max(13-len(part2), 1))...)
	}
	if g.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 {
		dst = appendNul(dst, g.AuthPlugin)
	}
	return dst
}

// ParseGreeting decodes a HandshakeV10. A server that refuses the
// connection outright sends an ERR packet instead, returned as *mysql.MyError.
func ParseGreeting(payload []byte) (*Greeting, error) {
	if len(payload) > 0 && payload[0] == mysql.ERR_HEADER {
		e, err := ParseERR(payload)
		if err != nil {
			return nil, err
		}
		return nil, e
	}
	c := cursor{b: payload}
	if v := c.u8("protocol version"); c.err == nil && v != mysql.ClassicProtocolVersion {
		return nil, fmt.Errorf("%w: protocol version %d, want 10", ErrMalformed, v)
	}
	g := &Greeting{ServerVersion: string(c.nulString("server version", false))}
	g.ConnectionID = c.u32("connection id")
	nonce := slices.Clone(c.take(8, "scramble"))
	c.u8("filler")
	g.Capabilities = uint32(c.u16("capabilities"))
	if c.remaining() > 0 {
		g.Charset = c.u8("charset")
		g.Status = c.u16("status")
		g.Capabilities |= uint32(c.u16("capabilities")) << 16
		dataLen := int(c.u8("auth data length"))
		c.take(6, "reserved")
		if mariaExt := c.u32("reserved"); g.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 {
			g.MariaDBCapabilities = mariaExt
		}
		if g.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0 {
			part2 := c.take(max(13, dataLen-8), "scramble")
			if n := len(part2); n > 0 && part2[n-1] == 0 {
				part2 = part2[:n-1]
			}
			nonce = append(nonce, part2...)
		}
		if g.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 {
			g.AuthPlugin = string(c.nulString("auth plugin", true))
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	if g.Capabilities&mysql.CLIENT_PROTOCOL_41 == 0 {
		return nil, fmt.Errorf("server %q does not speak protocol 4.1", g.ServerVersion)
	}
	g.Nonce = nonce
	return g, nil
}

// HandshakeResponse is a client's HandshakeResponse41. An SSLRequest is its
// first 32 bytes alone, with CLIENT_SSL set.
type HandshakeResponse struct {
	Capabilities uint32
	MaxPacket    uint32
	Charset      uint8
	// MariaDBCapabilities are MariaDB's extended flags, sent in the last four
	// filler bytes by a MariaDB client that saw a MariaDB greeting.
	MariaDBCapabilities uint32
	User                string
	AuthResponse        []byte
	Database            string
	AuthPlugin          string
	// Attributes are the connection attributes (CLIENT_CONNECT_ATTRS).
	Attributes map[string]string
	// ZstdLevel is the compression level (CLIENT_ZSTD_COMPRESSION_ALGORITHM).
	ZstdLevel uint8
}

// sslRequestLen is the length of an SSLRequest payload.
const sslRequestLen = 32

// IsSSLRequest reports whether payload is an SSLRequest: the client asks for
// TLS and will send its real response over it.
func IsSSLRequest(payload []byte) bool {
	return len(payload) == sslRequestLen && binary.LittleEndian.Uint32(payload)&mysql.CLIENT_SSL != 0
}

// ParseHandshakeResponse decodes a HandshakeResponse41 (or the head of an
// SSLRequest, which has no user). A pre-4.1 client is refused.
func ParseHandshakeResponse(payload []byte) (*HandshakeResponse, error) {
	c := cursor{b: payload}
	h := &HandshakeResponse{Capabilities: c.u32("capabilities")}
	if c.err == nil && h.Capabilities&mysql.CLIENT_PROTOCOL_41 == 0 {
		return nil, fmt.Errorf("%w: client does not speak protocol 4.1", ErrMalformed)
	}
	h.MaxPacket = c.u32("max packet size")
	h.Charset = c.u8("charset")
	c.take(19, "filler")
	if ext := c.u32("filler"); h.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 {
		h.MariaDBCapabilities = ext
	}
	if c.err == nil && c.remaining() == 0 && h.Capabilities&mysql.CLIENT_SSL != 0 {
		return h, nil
	}
	h.User = string(c.nulString("user", false))
	switch {
	case h.Capabilities&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		h.AuthResponse = c.lenencBytes("auth response", false)
	case h.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0:
		h.AuthResponse = c.take(int(c.u8("auth response length")), "auth response")
	default:
		h.AuthResponse = c.nulString("auth response", true)
	}
	if h.Capabilities&mysql.CLIENT_CONNECT_WITH_DB != 0 && c.remaining() > 0 {
		h.Database = string(c.nulString("database", true))
	}
	if h.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 && c.remaining() > 0 {
		h.AuthPlugin = string(c.nulString("auth plugin", true))
	}
	if h.Capabilities&mysql.CLIENT_CONNECT_ATTRS != 0 && c.remaining() > 0 {
		h.Attributes = parseAttributes(&c)
	}
	if h.Capabilities&mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 && c.remaining() > 0 {
		h.ZstdLevel = c.u8("zstd level")
	}
	if c.err != nil {
		return nil, c.err
	}
	h.AuthResponse = slices.Clone(h.AuthResponse)
	return h, nil
}

// parseAttributes reads length-prefixed key/value pairs of connection
// attributes, as sent in a HandshakeResponse41 or COM_CHANGE_USER.
func parseAttributes(c *cursor) map[string]string {
	block := c.lenencBytes("connection attributes", false)
	if c.err != nil {
		return nil
	}
	attrs := map[string]string{}
	ac := cursor{b: block}
	for ac.remaining() > 0 {
		k := ac.lenencBytes("attribute name", false)
		v := ac.lenencBytes("attribute value", false)
		attrs[string(k)] = string(v)
	}
	if ac.err != nil {
		c.err = ac.err
		return nil
	}
	return attrs
}

// AppendHandshakeResponse appends h's payload to dst. With ssl set it
// appends the SSLRequest that precedes it instead.
func AppendHandshakeResponse(dst []byte, h *HandshakeResponse, ssl bool) []byte {
	caps := h.Capabilities
	dst = appendU32(dst, caps)
	dst = appendU32(dst, h.MaxPacket)
	dst = append(dst, h.Charset)
	dst = append(dst, make([]byte, 19)...)
	dst = appendU32(dst, h.MariaDBCapabilities)
	if ssl {
		return dst
	}
	dst = appendNul(dst, h.User)
	switch {
	case caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		dst = appendLenencBytes(dst, h.AuthResponse)
	case caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		dst = append(dst, byte(len(h.AuthResponse)))
		dst = append(dst, h.AuthResponse...)
	default:
		dst = append(append(dst, h.AuthResponse...), 0)
	}
	if caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		dst = appendNul(dst, h.Database)
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		dst = appendNul(dst, h.AuthPlugin)
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		dst = appendAttributes(dst, h.Attributes)
	}
	if caps&mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 {
		dst = append(dst, h.ZstdLevel)
	}
	return dst
}

// appendAttributes appends connection attributes in key order, so the same
// map always encodes to the same bytes.
func appendAttributes(dst []byte, attrs map[string]string) []byte {
	var block []byte
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		block = appendLenencBytes(block, []byte(k))
		block = appendLenencBytes(block, []byte(attrs[k]))
	}
	return appendLenencBytes(dst, block)
}
