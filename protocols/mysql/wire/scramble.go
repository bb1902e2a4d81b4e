package wire

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// VerifyCachingSHA2 reports whether scramble is the caching_sha2_password
// fast-path answer to nonce for the password whose SHA-256 is stored. The
// client sends SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce), which the
// server can compute from SHA256(pw) alone, so a token stored only as its
// SHA-256 is verified without new secrets. Written by hand because go-mysql's
// own check (server.scrambleValidation) is unexported and starts from
// SHA256(SHA256(pw)), and CalcCachingSha2Password needs the clear password.
func VerifyCachingSHA2(stored [32]byte, nonce, scramble []byte) bool {
	if len(scramble) != sha256.Size {
		return false
	}
	stage2 := sha256.Sum256(stored[:])
	h := sha256.New()
	h.Write(stage2[:])
	h.Write(nonce)
	mask := h.Sum(nil)
	for i := range mask {
		mask[i] ^= stored[i]
	}
	return subtle.ConstantTimeCompare(mask, scramble) == 1
}

// ServerKey is the RSA key pair that lets a client send its password for
// caching_sha2_password's full authentication over plain TCP: the client
// asks for the public key, encrypts password||NUL XOR nonce with RSA-OAEP
// (SHA-1) and the server decrypts it. Generate one when the process starts;
// it needs no storage because clients fetch it on each connection.
type ServerKey struct {
	private *rsa.PrivateKey
	pem     []byte
}

// GenerateServerKey returns a fresh 2048-bit key pair.
func GenerateServerKey() (*ServerKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	return NewServerKey(k)
}

// NewServerKey wraps an existing private key.
func NewServerKey(k *rsa.PrivateKey) (*ServerKey, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal rsa public key: %w", err)
	}
	return &ServerKey{private: k, pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}, nil
}

// PublicKeyPEM is the public key as clients receive it.
func (k *ServerKey) PublicKeyPEM() []byte { return k.pem }

// errDecrypt hides why decryption failed: the reason would be an oracle.
var errDecrypt = errors.New("rsa-encrypted password does not decrypt")

// decryptPassword recovers a password sent RSA-encrypted for nonce.
func (k *ServerKey) decryptPassword(cipher, nonce []byte) ([]byte, error) {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, k.private, cipher, nil)
	if err != nil || len(nonce) == 0 {
		return nil, errDecrypt
	}
	return trimNul(mysql.Xor(plain, nonce)), nil
}

// parsePublicKey decodes the PEM public key an upstream sends.
func parsePublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("upstream sent no PEM public key")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("upstream public key: %w", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("upstream public key is not RSA")
	}
	return pub, nil
}

// trimNul drops the one NUL that terminates a clear password.
func trimNul(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}
