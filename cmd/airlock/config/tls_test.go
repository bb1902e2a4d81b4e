package config

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedCertificateIsKept: a generated certificate survives a
// restart (clients may pin its fingerprint), its key is private, and it is
// replaced when it no longer covers the hosts asked for.
func TestGeneratedCertificateIsKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	first, fp1, gen1, err := ServerTLS{Dir: dir, Hosts: []string{"db.example"}}.ServerTLSConfig()
	if err != nil || !gen1 || first == nil {
		t.Fatalf("first start: %v generated=%v", err, gen1)
	}
	_, fp2, gen2, err := ServerTLS{Dir: dir, Hosts: []string{"db.example"}}.ServerTLSConfig()
	if err != nil || gen2 || fp2 != fp1 {
		t.Fatalf("restart: fingerprint %s (was %s), generated=%v, %v", fp2, fp1, gen2, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "server.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.VerifyHostname("db.example") != nil || cert.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("kept certificate does not cover its hosts: %v", err)
	}
	_, fp3, gen3, err := ServerTLS{Dir: dir, Hosts: []string{"db.example", "other.example"}}.ServerTLSConfig()
	if err != nil || !gen3 || fp3 == fp1 {
		t.Fatalf("a new host did not renew the certificate: %v generated=%v", err, gen3)
	}
}
