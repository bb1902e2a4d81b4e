package ssotest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml/logger"
	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"
)

// SAML is a running SAML identity provider.
type SAML struct {
	// URL is the provider's base; its metadata is at MetadataURL.
	URL         string
	MetadataURL string
	srv         *httptest.Server
}

// NewSAML starts a SAML identity provider on loopback with users: each
// signs in with Name as user and e-mail address (the NameID), and its
// groups come as eduPersonAffiliation.
func NewSAML(t testing.TB, users []User) *SAML {
	t.Helper()
	key, cert := KeyPair(t, "test identity provider")
	var idp *samlidp.Server
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	var err error
	idp, err = samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{},
		Logger: logger.DefaultLogger})
	if err != nil {
		t.Fatal(err)
	}
	s := &SAML{URL: srv.URL, MetadataURL: srv.URL + "/metadata", srv: srv}
	for _, user := range users {
		// The lowest bcrypt cost: the default takes seconds under -race.
		hash, err := bcrypt.GenerateFromPassword([]byte(user.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		u := samlidp.User{Name: user.Name, HashedPassword: hash, Email: user.Name, Groups: user.Groups}
		if err := idp.Store.Put("/users/"+user.Name, &u); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// RegisterSP fetches a service provider's metadata from metadataURL and
// registers it under id.
func (s *SAML) RegisterSP(t testing.TB, id, metadataURL string) {
	t.Helper()
	resp, err := http.Get(metadataURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	md, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("service provider metadata: %s\n%s", resp.Status, md)
	}
	s.RegisterSPMetadata(t, id, md)
}

// RegisterSPMetadata registers service provider metadata under id.
func (s *SAML) RegisterSPMetadata(t testing.TB, id string, md []byte) {
	t.Helper()
	s.put(t, "/services/"+url.PathEscape(id), "application/xml", md)
}

func (s *SAML) put(t testing.TB, path, ctype string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %s %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// KeyPair returns an RSA key and a fresh self-signed certificate for it
// named name. The key is made once per test binary: generating one takes
// seconds under -race.
func KeyPair(t testing.TB, name string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	keyOnce.Do(func() { key, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// String is for test logs.
func (s *SAML) String() string { return fmt.Sprintf("saml idp %s", s.URL) }
