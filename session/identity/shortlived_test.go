package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// fakeCreds is a credential store of fixed secrets.
type fakeCreds struct {
	ids     map[string]protocols.Identity
	ended   map[string]error
	forgets bool // Lease finds nothing (purged meanwhile)
}

func (f *fakeCreds) Check(_ context.Context, secret string) (protocols.Identity, func() error, error) {
	if err := f.ended[secret]; err != nil {
		return protocols.Identity{}, nil, err
	}
	id, ok := f.ids[secret]
	if !ok {
		return protocols.Identity{}, nil, ErrUnknownCredential
	}
	return id, f.Lease(secret), nil
}

func (f *fakeCreds) Lease(secret string) func() error {
	if _, ok := f.ids[secret]; !ok || f.forgets {
		return nil
	}
	return func() error { return nil }
}

func TestShortLived(t *testing.T) {
	cfg := staticConfig()
	// A static token that happens to have the short-lived prefix.
	cfg.Identities = append(cfg.Identities, Static{Name: "legacy", TokenSHA256: HashToken(ShortLivedPrefix + "legacy")})
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice := protocols.Identity{Name: "alice@corp", Groups: []string{"okta:dev"}, Method: "sso:okta"}
	creds := &fakeCreds{
		ids: map[string]protocols.Identity{ShortLivedPrefix + "alice": alice,
			ShortLivedPrefix + "dev": {Name: "dev", Method: "sso:okta"}},
		ended: map[string]error{ShortLivedPrefix + "revoked": errors.New("revoked")},
	}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "", ShortLivedPrefix+"alice"); !errors.Is(err, protocols.ErrAuthFailed) {
		t.Fatal("a short-lived credential passed without a store")
	}
	a.SetCredentials(creds)
	for _, tc := range []struct {
		name, user, secret string
		want               string // identity name; empty: refused
	}{
		{"by bearer", "", ShortLivedPrefix + "alice", "alice@corp"},
		{"by name", "alice@corp", ShortLivedPrefix + "alice", "alice@corp"},
		{"another name", "dev", ShortLivedPrefix + "alice", ""},
		{"revoked or expired", "", ShortLivedPrefix + "revoked", ""},
		{"unknown", "", ShortLivedPrefix + "nobody", ""},
		{"a static identity's name", "", ShortLivedPrefix + "dev", ""},
		{"static token with the prefix", "legacy", ShortLivedPrefix + "legacy", "legacy"},
		{"static token", "dev", "dev-token", "dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(ctx, tc.user, tc.secret)
			if tc.want == "" {
				if !errors.Is(err, protocols.ErrAuthFailed) {
					t.Fatalf("got %+v, %v; want refused", id, err)
				}
				return
			}
			if err != nil || id.Name != tc.want {
				t.Fatalf("got %+v, %v; want %s", id, err, tc.want)
			}
		})
	}
	if id, _ := a.Authenticate(ctx, "", ShortLivedPrefix+"alice"); id.Method != "sso:okta" || !slices.Equal(id.Groups, alice.Groups) {
		t.Fatalf("identity %+v", id)
	}
	if a.Lease("dev-token") != nil || a.Lease(ShortLivedPrefix+"legacy") != nil {
		t.Fatal("a static token has a lease")
	}
	if l := a.Lease(ShortLivedPrefix + "alice"); l == nil || l() != nil {
		t.Fatal("no lease for a short-lived credential")
	}
	creds.forgets = true
	if l := a.Lease(ShortLivedPrefix + "alice"); l == nil || l() == nil {
		t.Fatal("a credential the store forgot has an open-ended lease")
	}
	if !a.IsStatic("dev") || a.IsStatic("alice@corp") {
		t.Fatal("IsStatic")
	}
}

func TestClaimMapping(t *testing.T) {
	m := ClaimMapping{NameClaim: "NameID", GroupsClaim: "eduPersonAffiliation", GroupPrefix: "corp:", RequiredGroups: []string{"staff"},
		AllowUnverifiedEmail: true}
	id, err := m.Identity(map[string]any{"NameID": "alice@corp", "eduPersonAffiliation": []any{"staff", "reviewers"}}, "sso:corp")
	if err != nil || id.Name != "alice@corp" || id.Method != "sso:corp" || !slices.Equal(id.Groups, []string{"corp:staff", "corp:reviewers"}) {
		t.Fatalf("%+v, %v", id, err)
	}
	if _, err := m.Identity(map[string]any{"NameID": "bob@corp", "eduPersonAffiliation": "guests"}, "sso:corp"); err == nil {
		t.Fatal("a person outside the required group passed")
	}
	if _, err := m.Identity(map[string]any{"NameID": "bad name!"}, "sso:corp"); err == nil {
		t.Fatal("an invalid name passed")
	}
	none := ClaimMapping{NameClaim: "sub"}
	if id, err := none.Identity(map[string]any{"sub": "alice", "groups": []any{"x"}}, "sso:x"); err != nil || id.Groups != nil {
		t.Fatalf("no groups claim: %+v, %v", id, err)
	}
	if err := (ClaimMapping{NameClaim: "a..b", GroupPrefix: " x"}).Validate("sso.providers[0]", "name_claim", "groups_claim"); err == nil {
		t.Fatal("a bad mapping validated")
	}
}

// fakeProver adds proofs to fakeCreds: a proof knows a secret when it
// accepts the secret's SHA-256.
type fakeProver struct {
	*fakeCreds
	asked []string
}

func (f *fakeProver) Prove(ctx context.Context, name string, verify func([32]byte) bool) (protocols.Identity, func() error, error) {
	f.asked = append(f.asked, name)
	for secret, id := range f.ids {
		if id.Name == name && verify(sha256.Sum256([]byte(secret))) {
			return f.Check(ctx, secret)
		}
	}
	verify([32]byte{})
	return protocols.Identity{}, nil, ErrUnknownCredential
}

// TestAuthenticateProofLease: a proof of a short-lived credential admits
// with its lease; a static token's proof admits without one and without
// asking the store; the store is asked for every other name, static or
// not, so that timing does not tell them apart.
func TestAuthenticateProofLease(t *testing.T) {
	a, err := New(staticConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	knows := func(token string) func([32]byte) bool {
		return func(h [32]byte) bool { return h == sha256.Sum256([]byte(token)) }
	}
	ctx := context.Background()
	if _, _, err := a.AuthenticateProofLease(ctx, "alice@corp", knows(ShortLivedPrefix+"alice")); !errors.Is(err, protocols.ErrAuthFailed) {
		t.Fatal("a short-lived proof passed without a store")
	}
	p := &fakeProver{fakeCreds: &fakeCreds{ids: map[string]protocols.Identity{
		ShortLivedPrefix + "alice": {Name: "alice@corp", Method: "sso:okta"},
		ShortLivedPrefix + "dev":   {Name: "dev", Method: "sso:okta"}}}}
	a.SetCredentials(p)
	id, lease, err := a.AuthenticateProofLease(ctx, "alice@corp", knows(ShortLivedPrefix+"alice"))
	if err != nil || id.Name != "alice@corp" || lease == nil {
		t.Fatalf("a short-lived proof: %+v %v", id, err)
	}
	id, lease, err = a.AuthenticateProofLease(ctx, "dev", knows("dev-token"))
	if err != nil || id.Name != "dev" || lease != nil {
		t.Fatalf("a static token's proof: %+v %v", id, err)
	}
	p.asked = nil
	for _, tc := range []struct{ name, secret string }{
		{"alice@corp", ShortLivedPrefix + "bob"},
		{"bob@corp", ShortLivedPrefix + "alice"},
		{"dev", ShortLivedPrefix + "dev"}, // a store's credential under a static name
		{"dev", "ci-token"},
	} {
		if _, _, err := a.AuthenticateProofLease(ctx, tc.name, knows(tc.secret)); !errors.Is(err, protocols.ErrAuthFailed) {
			t.Errorf("AuthenticateProofLease(%s, %s) = %v, want ErrAuthFailed", tc.name, tc.secret, err)
		}
	}
	if !slices.Equal(p.asked, []string{"alice@corp", "bob@corp", "dev", "dev"}) {
		t.Errorf("the store was asked about %q", p.asked)
	}
}
