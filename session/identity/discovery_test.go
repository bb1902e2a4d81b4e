package identity

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

func TestOIDCDiscoveryLazyRetry(t *testing.T) {
	idp := newTestIdP(t, false)
	key := rsaKey(t, "k1")
	idp.publish(key)
	idp.setDiscoveryDown(true)
	clock := newFakeClock()
	logs := &logBuffer{}
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: idp.issuer, Audience: "airlock"}},
		Options{Logger: newLogger(logs), now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if idp.discoveryHits.Load() != 0 {
		t.Fatal("New did network I/O")
	}
	if err := a.Discover(context.Background()); err == nil {
		t.Fatal("Discover succeeded while discovery is down")
	}
	if !strings.Contains(logs.String(), "oidc discovery failed") {
		t.Errorf("discovery failure not logged:\n%s", logs)
	}
	tok := sign(t, key, map[string]any{
		"iss": idp.issuer, "aud": "airlock", "preferred_username": "alice",
		"exp": clock.Now().Add(time.Hour).Unix(),
	})

	// Within the retry interval the failure is answered from memory.
	_, err = a.Authenticate(context.Background(), "", tok)
	if !errors.Is(err, protocols.ErrAuthFailed) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrAuthFailed and ErrUnavailable", err)
	}
	if got := idp.discoveryHits.Load(); got != 1 {
		t.Fatalf("discovery hits = %d, want 1 (retry throttled)", got)
	}

	// Still down after the interval: one more attempt, still closed.
	clock.Advance(discoveryRetry + time.Second)
	if _, err := a.Authenticate(context.Background(), "", tok); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := idp.discoveryHits.Load(); got != 2 {
		t.Fatalf("discovery hits = %d, want 2", got)
	}

	// Up again: the next authentication after the interval discovers.
	idp.setDiscoveryDown(false)
	clock.Advance(discoveryRetry + time.Second)
	id, err := a.Authenticate(context.Background(), "", tok)
	if err != nil || id.Name != "alice" {
		t.Fatalf("after recovery: %+v, %v\n%s", id, err, logs)
	}
	if _, err := a.Authenticate(context.Background(), "", tok); err != nil {
		t.Fatal(err)
	}
	if got := idp.discoveryHits.Load(); got != 3 {
		t.Fatalf("discovery hits = %d, want 3 (discovered once, then kept)", got)
	}
}

func TestOIDCDiscoveryConcurrent(t *testing.T) {
	idp := newTestIdP(t, false)
	key := ecKey(t, "k1")
	idp.publish(key)
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: idp.issuer, Audience: "airlock"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, key, map[string]any{
		"iss": idp.issuer, "aud": "airlock", "preferred_username": "alice",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := a.Authenticate(context.Background(), "alice", tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := idp.discoveryHits.Load(); got != 1 {
		t.Errorf("discovery hits = %d, want 1", got)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Errorf("jwks hits = %d, want 1", got)
	}
}

// authenticateSettled authenticates tok once the key set's last fetch has
// settled. go-oidc signals a fetch's waiters before it clears the fetch,
// so a call made just after an earlier fetch can be handed that fetch's
// result once; the next call fetches anew.
func (f *oidcFixture) authenticateSettled(ctx context.Context, tok string) (protocols.Identity, error) {
	var id protocols.Identity
	var err error
	for range 20 {
		if id, err = f.auth.Authenticate(ctx, "", tok); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return id, err
}

func TestOIDCKeyRotation(t *testing.T) {
	f := newOIDCFixture(t, nil)
	ctx := context.Background()
	if _, err := f.auth.Authenticate(ctx, "", sign(t, f.rsa, f.claims(nil))); err != nil {
		t.Fatal(err)
	}
	if got := f.idp.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks hits = %d, want 1", got)
	}
	rotated := rsaKey(t, "rsa-2")
	f.idp.publish(rotated)
	tok := sign(t, rotated, f.claims(nil))

	// Within jwks_min_refresh of the last fetch the new kid is not fetched.
	if _, err := f.auth.Authenticate(ctx, "", tok); err == nil {
		t.Fatal("new kid accepted without a fetch")
	}
	if got := f.idp.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks hits = %d, want 1 (throttled)", got)
	}
	f.clock.Advance(DefaultJWKSMinRefresh + time.Second)
	id, err := f.authenticateSettled(ctx, sign(t, rotated, f.claims(nil)))
	if err != nil || id.Name != "alice" {
		t.Fatalf("rotated key: %+v, %v\n%s", id, err, f.logs)
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Fatalf("jwks hits = %d, want 2", got)
	}

	// A flood of forged tokens costs the IdP nothing more.
	forger := rsaKey(t, "forged")
	for i := range 50 {
		if _, err := f.auth.Authenticate(ctx, "", sign(t, forger, f.claims(nil))); err == nil {
			t.Fatalf("forged token %d accepted", i)
		}
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Fatalf("jwks hits after forged tokens = %d, want 2", got)
	}
	// Old and new keys both still verify from the cache.
	for _, k := range []testKey{f.rsa, rotated, f.ec} {
		if _, err := f.auth.Authenticate(ctx, "", sign(t, k, f.claims(nil))); err != nil {
			t.Errorf("key %s: %v", k.kid, err)
		}
	}
}

func TestOIDCJWKSDown(t *testing.T) {
	f := newOIDCFixture(t, nil)
	f.idp.setJWKSDown(true)
	ctx := context.Background()
	tok := sign(t, f.rsa, f.claims(nil))
	for range 5 {
		if _, err := f.auth.Authenticate(ctx, "", tok); !errors.Is(err, protocols.ErrAuthFailed) {
			t.Fatalf("err = %v with the key set down", err)
		}
	}
	if got := f.idp.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks hits = %d, want 1 (failures throttled)", got)
	}
	if !strings.Contains(f.logs.String(), "oidc key set fetch failed") {
		t.Errorf("key set failure not logged:\n%s", f.logs)
	}
	f.idp.setJWKSDown(false)
	f.clock.Advance(DefaultJWKSMinRefresh + time.Second)
	if _, err := f.authenticateSettled(ctx, tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Fatalf("jwks hits after recovery = %d, want 2", got)
	}
}

func TestOIDCExplicitJWKSURL(t *testing.T) {
	idp := newTestIdP(t, false)
	key := rsaKey(t, "k1")
	idp.publish(key)
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: idp.issuer, Audience: "airlock", JWKSURL: idp.issuer + "/keys"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := sign(t, key, map[string]any{
		"iss": idp.issuer, "aud": "airlock", "preferred_username": "alice",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	if _, err := a.Authenticate(context.Background(), "", tok); err != nil {
		t.Fatal(err)
	}
	if got := idp.discoveryHits.Load(); got != 0 {
		t.Errorf("discovery hits = %d with jwks_url set", got)
	}
	// Discover's check fetched the key set; the verifier's first fetch came
	// from the throttle's memory.
	if got := idp.jwksHits.Load(); got != 1 {
		t.Errorf("jwks hits = %d, want 1", got)
	}
}

func TestOIDCIssuerMismatchInDiscovery(t *testing.T) {
	idp := newTestIdP(t, false)
	// Configured with a trailing slash: discovery's issuer differs.
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: idp.issuer + "/", Audience: "airlock"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Discover(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not match") {
		t.Fatalf("Discover = %v, want issuer mismatch", err)
	}
}

func TestOIDCTLSWithCAFile(t *testing.T) {
	idp := newTestIdP(t, true)
	key := ecKey(t, "k1")
	idp.publish(key)
	cfg := Config{OIDC: &OIDCConfig{Issuer: idp.issuer, Audience: "airlock"}}

	// Without the test CA the issuer's certificate is not trusted.
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Discover(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Discover without CA = %v, want a certificate error", err)
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := idp.srv.Certificate()
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.OIDC.CAFile = ca
	a, err = New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := sign(t, key, map[string]any{
		"iss": idp.issuer, "aud": "airlock", "preferred_username": "alice",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	if _, err := a.Authenticate(context.Background(), "alice", tok); err != nil {
		t.Fatal(err)
	}

	cfg.OIDC.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "oidc.ca_file") {
		t.Fatalf("New with a missing CA file = %v", err)
	}
}

func TestOIDCContextCancelled(t *testing.T) {
	idp := newTestIdP(t, false)
	key := rsaKey(t, "k1")
	idp.publish(key)
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: idp.issuer, Audience: "airlock"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok := sign(t, key, map[string]any{"iss": idp.issuer, "aud": "airlock", "preferred_username": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	_, err = a.Authenticate(ctx, "", tok)
	if !errors.Is(err, protocols.ErrAuthFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrAuthFailed and context.Canceled", err)
	}
}
