package wire

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// clientAuth answers an upstream's authentication exchange with the
// credentials Airlock holds, using go-mysql's scramble functions.
type clientAuth struct {
	c        *clientConn
	cfg      DialConfig
	secure   bool // TLS or a Unix socket: a clear password may travel
	nonce    []byte
	plugin   string
	switched bool
}

// sha256_password asks for the server's key with 1, caching_sha2_password
// with 2.
const requestPublicKeySHA256 = 0x01

// initial returns the auth response of the handshake response. For a
// plugin Airlock does not know it answers as mysql_native_password, as
// MySQL's client does, and the server switches to one it can use.
func (a *clientAuth) initial() ([]byte, error) {
	switch a.plugin {
	case PluginNative, PluginCachingSHA2, PluginClear, PluginSHA256, PluginEd25519:
	default:
		a.plugin = PluginNative
	}
	return a.respond()
}

// respond computes the answer to the current plugin and nonce.
func (a *clientAuth) respond() ([]byte, error) {
	pw := []byte(a.cfg.Password)
	switch a.plugin {
	case PluginNative:
		if len(a.nonce) < NonceLen {
			return nil, fmt.Errorf("%w: mysql_native_password nonce of %d bytes", ErrMalformed, len(a.nonce))
		}
		return mysql.CalcNativePassword(a.nonce[:NonceLen], pw), nil
	case PluginCachingSHA2:
		return mysql.CalcCachingSha2Password(a.nonce, pw), nil
	case PluginClear:
		if !a.secure {
			return nil, errors.New("upstream asks for mysql_clear_password without TLS; refusing to send the password in clear")
		}
		return append(pw, 0), nil
	case PluginSHA256:
		switch {
		case len(pw) == 0:
			return []byte{0}, nil
		case a.secure:
			return append(pw, 0), nil
		case a.cfg.ServerPublicKey != nil:
			return mysql.EncryptPassword(a.cfg.Password, a.nonce, a.cfg.ServerPublicKey)
		}
		return []byte{requestPublicKeySHA256}, nil
	case PluginEd25519:
		if len(a.nonce) != 32 {
			return nil, fmt.Errorf("%w: client_ed25519 nonce of %d bytes", ErrMalformed, len(a.nonce))
		}
		return mysql.CalcEd25519Password(a.nonce, a.cfg.Password)
	}
	return nil, fmt.Errorf("upstream asks for unsupported auth plugin %q", a.plugin)
}

// finish follows the exchange after the handshake response to its OK.
func (a *clientAuth) finish(caps uint32) (*OK, error) {
	for range 6 {
		p, err := a.c.read()
		if err != nil {
			return nil, fmt.Errorf("read auth result: %w", err)
		}
		switch p[0] {
		case mysql.OK_HEADER:
			return ParseOK(p, caps)
		case mysql.ERR_HEADER:
			e, err := ParseERR(p)
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("login refused: %w", e)
		case authSwitchRequest:
			err = a.switchPlugin(p[1:])
		case authMoreData:
			err = a.moreData(p[1:])
		default:
			err = fmt.Errorf("%w: auth packet 0x%02x", ErrMalformed, p[0])
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, errors.New("authentication did not end")
}

// switchPlugin answers an AuthSwitchRequest: plugin name, then its data.
func (a *clientAuth) switchPlugin(data []byte) error {
	if a.switched {
		return errors.New("upstream switched auth plugins twice")
	}
	a.switched = true
	i := bytes.IndexByte(data, 0)
	if i < 0 {
		// The pre-4.1 OldAuthSwitchRequest: mysql_old_password.
		return errors.New("upstream asks for mysql_old_password, which is not supported")
	}
	a.plugin, a.nonce = string(data[:i]), trimNul(bytes.Clone(data[i+1:]))
	resp, err := a.respond()
	if err != nil {
		return err
	}
	return a.c.write(resp)
}

// moreData answers AuthMoreData: caching_sha2_password's fast-auth result
// or request for the full password, or sha256_password's public key.
func (a *clientAuth) moreData(data []byte) error {
	switch {
	case a.plugin == PluginCachingSHA2 && len(data) == 1 && data[0] == fastAuthOK:
		return nil // the OK follows
	case a.plugin == PluginCachingSHA2 && len(data) == 1 && data[0] == performFullAuth:
		return a.sendPassword()
	case a.plugin == PluginSHA256:
		key, err := parsePublicKey(data)
		if err != nil {
			return err
		}
		return a.sendEncrypted(key)
	}
	return fmt.Errorf("%w: unexpected auth data for %s", ErrMalformed, a.plugin)
}

// sendPassword completes caching_sha2_password's full authentication: the
// password in clear over TLS or a socket, else RSA-encrypted with the
// configured key or one fetched from the server.
func (a *clientAuth) sendPassword() error {
	if a.secure {
		return a.c.write(append([]byte(a.cfg.Password), 0))
	}
	key := a.cfg.ServerPublicKey
	if key == nil {
		if err := a.c.write([]byte{requestPublicKey}); err != nil {
			return err
		}
		p, err := a.c.read()
		if err != nil {
			return fmt.Errorf("read public key: %w", err)
		}
		if p[0] != authMoreData {
			return fmt.Errorf("%w: public key packet 0x%02x", ErrMalformed, p[0])
		}
		if key, err = parsePublicKey(p[1:]); err != nil {
			return err
		}
	}
	return a.sendEncrypted(key)
}

func (a *clientAuth) sendEncrypted(key *rsa.PublicKey) error {
	enc, err := mysql.EncryptPassword(a.cfg.Password, a.nonce, key)
	if err != nil {
		// The cause names only key and message sizes, never the password.
		return fmt.Errorf("encrypt password: %w", err)
	}
	return a.c.write(enc)
}
