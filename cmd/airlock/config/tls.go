package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ServerTLSConfig returns the certificate clients see on every listener,
// its SHA-256 fingerprint, and whether it was generated just now. Without
// cert_file and key_file it uses the self-signed certificate kept in Dir,
// generating it on first use for hosts (plus localhost, 127.0.0.1 and ::1),
// valid one year: it survives restarts, so clients that pinned its
// fingerprint keep working. A kept certificate that has expired, or no
// longer covers hosts, is replaced.
func (t ServerTLS) ServerTLSConfig() (conf *tls.Config, fingerprint string, generated bool, err error) {
	var cert tls.Certificate
	switch {
	case t.CertFile != "":
		cert, err = tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, "", false, fmt.Errorf("tls: load certificate: %w", err)
		}
	default:
		cert, generated, err = keptSelfSigned(t.Dir, t.Hosts)
		if err != nil {
			return nil, "", false, err
		}
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, hex.EncodeToString(sum[:]), generated, nil
}

// keptSelfSigned loads the self-signed certificate kept in dir, or makes
// and keeps a new one when there is none usable.
func keptSelfSigned(dir string, hosts []string) (tls.Certificate, bool, error) {
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && usable(cert, hosts) {
		return cert, false, nil
	}
	cert, err := selfSigned(hosts)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: generate certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: keep certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: keep certificate: %w", err)
	}
	// The key first, private, each written whole before it is renamed into
	// place: a crash leaves the old pair or the new, never half of one.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644},
	} {
		if err := writeFileAtomic(f.path, f.data, f.mode); err != nil {
			return tls.Certificate{}, false, fmt.Errorf("tls: keep certificate: %w", err)
		}
	}
	return cert, true, nil
}

// usable reports whether a kept certificate is valid for another month and
// covers every host asked for.
func usable(cert tls.Certificate, hosts []string) bool {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || time.Now().AddDate(0, 1, 0).After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp) // WriteFile keeps an existing file's mode
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func selfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Airlock self-signed"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
