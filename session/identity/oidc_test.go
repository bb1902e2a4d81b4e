package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/airlock-gw/airlock/protocols"
)

// oidcFixture is an IdP with one RSA and one ECDSA key published, and an
// Authenticator trusting it, on a fake clock.
type oidcFixture struct {
	idp   *testIdP
	clock *fakeClock
	rsa   testKey
	ec    testKey
	auth  *Authenticator
	logs  *logBuffer
}

func newOIDCFixture(t *testing.T, edit func(*Config)) *oidcFixture {
	t.Helper()
	f := &oidcFixture{idp: newTestIdP(t, false), clock: newFakeClock(), logs: &logBuffer{}}
	f.rsa, f.ec = rsaKey(t, "rsa-1"), ecKey(t, "ec-1")
	f.idp.publish(f.rsa)
	f.idp.publish(f.ec)
	cfg := Config{
		Identities: []Static{{Name: "ci-bot", Groups: []string{"machines"}, TokenSHA256: HashToken("ci-token")}},
		OIDC: &OIDCConfig{
			Issuer:   f.idp.issuer,
			Audience: "airlock",
			Leeway:   30 * time.Second,
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg, Options{Logger: newLogger(f.logs), now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.auth = a
	return f
}

// claims returns a valid claim set for alice, changed by edit.
func (f *oidcFixture) claims(edit func(map[string]any)) map[string]any {
	now := f.clock.Now()
	c := map[string]any{
		"iss":                f.idp.issuer,
		"aud":                "airlock",
		"sub":                "0b5f4a8e-8f2e-4c3e-9a57-3c1f8d2f6e11",
		"iat":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
		"preferred_username": "alice",
		"email":              "alice@example.com",
		"email_verified":     true,
		"groups":             []string{"developers", "reviewers"},
		"realm_access":       map[string]any{"roles": []string{"dba", "offline_access"}},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestOIDCTokens(t *testing.T) {
	f := newOIDCFixture(t, nil)
	stranger := rsaKey(t, "rsa-1") // same kid as a published key, different key
	unknown := rsaKey(t, "rsa-unknown")
	pubDER, err := x509.MarshalPKIXPublicKey(f.rsa.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacSigner, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pubPEM, KeyID: "rsa-1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := func() string {
		good := sign(t, f.rsa, f.claims(nil))
		evil := sign(t, f.rsa, f.claims(func(c map[string]any) { c["preferred_username"] = "mallory" }))
		g, e := strings.Split(good, "."), strings.Split(evil, ".")
		return g[0] + "." + e[1] + "." + g[2]
	}()

	cases := []struct {
		name    string
		given   string
		token   string
		want    *protocols.Identity
		wantLog string // a word of the debug reason, proving which check refused
	}{
		{name: "valid RSA", token: sign(t, f.rsa, f.claims(nil)),
			want: &protocols.Identity{Name: "alice", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "valid ECDSA", token: sign(t, f.ec, f.claims(nil)),
			want: &protocols.Identity{Name: "alice", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "given name matches", given: "alice", token: sign(t, f.rsa, f.claims(nil)),
			want: &protocols.Identity{Name: "alice", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "given name differs", given: "bob", token: sign(t, f.rsa, f.claims(nil)),
			wantLog: "does not match"},
		{name: "expired past leeway", token: sign(t, f.rsa, f.claims(func(c map[string]any) {
			c["exp"] = f.clock.Now().Add(-time.Minute).Unix()
		})), wantLog: "expired"},
		{name: "expired within leeway", token: sign(t, f.rsa, f.claims(func(c map[string]any) {
			c["exp"] = f.clock.Now().Add(-10 * time.Second).Unix()
		})), want: &protocols.Identity{Name: "alice", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "no exp", token: sign(t, f.rsa, f.claims(func(c map[string]any) { delete(c, "exp") })),
			wantLog: "expired"},
		{name: "not yet valid", token: sign(t, f.rsa, f.claims(func(c map[string]any) {
			c["nbf"] = f.clock.Now().Add(time.Hour).Unix()
		})), wantLog: "nbf"},
		{name: "wrong audience", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["aud"] = "other-app" })),
			wantLog: "audience"},
		{name: "audience among several", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["aud"] = []string{"account", "airlock"} })),
			want: &protocols.Identity{Name: "alice", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "wrong issuer", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" })),
			wantLog: "different provider"},
		{name: "kid not in JWKS", token: sign(t, unknown, f.claims(nil)), wantLog: "verify"},
		{name: "known kid, wrong key", token: sign(t, stranger, f.claims(nil)), wantLog: "verify"},
		{name: "tampered payload", token: tampered, wantLog: "verify"},
		{name: "unsigned alg none", token: unsigned(t, f.claims(nil)), wantLog: "malformed jwt"},
		{name: "HS256 keyed with the public key", token: signPayload(t, hmacSigner, f.claims(nil)), wantLog: "HS256"},
		{name: "missing name claim", token: sign(t, f.rsa, f.claims(func(c map[string]any) { delete(c, "preferred_username") })),
			wantLog: "missing"},
		{name: "name claim not a string", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["preferred_username"] = 42 })),
			wantLog: "not a string"},
		{name: "name claim with bad characters", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["preferred_username"] = "group:admins" })),
			wantLog: "character"},
		{name: "name of a static identity", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["preferred_username"] = "ci-bot" })),
			wantLog: "static identity"},
		{name: "groups not strings", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["groups"] = []any{"a", 1} })),
			wantLog: "not a string"},
		{name: "single group string", token: sign(t, f.rsa, f.claims(func(c map[string]any) { c["groups"] = "developers" })),
			want: &protocols.Identity{Name: "alice", Groups: []string{"developers"}, Method: "oidc"}},
		{name: "no groups", token: sign(t, f.rsa, f.claims(func(c map[string]any) { delete(c, "groups") })),
			want: &protocols.Identity{Name: "alice", Method: "oidc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.logs.Reset()
			id, err := f.auth.Authenticate(context.Background(), tc.given, tc.token)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("Authenticate: %v (log: %s)", err, f.logs)
				}
				if id.Name != tc.want.Name || !slices.Equal(id.Groups, tc.want.Groups) || id.Method != tc.want.Method {
					t.Fatalf("identity = %+v, want %+v", id, *tc.want)
				}
				return
			}
			if !errors.Is(err, protocols.ErrAuthFailed) {
				t.Fatalf("err = %v, want ErrAuthFailed (identity %+v)", err, id)
			}
			if err.Error() != protocols.ErrAuthFailed.Error() {
				t.Errorf("error %q says more than %q", err, protocols.ErrAuthFailed)
			}
			if id.Name != "" {
				t.Errorf("refusal returned identity %+v", id)
			}
			if !strings.Contains(f.logs.String(), tc.wantLog) {
				t.Errorf("log does not say %q:\n%s", tc.wantLog, f.logs)
			}
			if strings.Contains(f.logs.String(), tc.token) {
				t.Errorf("log contains the token")
			}
		})
	}
}

func TestOIDCClaimsConfig(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*OIDCConfig)
		claims func(map[string]any)
		want   *protocols.Identity
	}{
		{name: "nested roles", edit: func(o *OIDCConfig) { o.GroupsClaim = "realm_access.roles" },
			want: &protocols.Identity{Name: "alice", Groups: []string{"dba", "offline_access"}, Method: "oidc"}},
		{name: "namespaced claim with dots", edit: func(o *OIDCConfig) { o.GroupsClaim = "https://airlock.example.com/groups" },
			claims: func(c map[string]any) { c["https://airlock.example.com/groups"] = []string{"ops"} },
			want:   &protocols.Identity{Name: "alice", Groups: []string{"ops"}, Method: "oidc"}},
		{name: "sub as name", edit: func(o *OIDCConfig) { o.NameClaim = "sub" },
			want: &protocols.Identity{Name: "0b5f4a8e-8f2e-4c3e-9a57-3c1f8d2f6e11", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "verified email as name", edit: func(o *OIDCConfig) { o.NameClaim = "email" },
			want: &protocols.Identity{Name: "alice@example.com", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "unverified email refused", edit: func(o *OIDCConfig) { o.NameClaim = "email" },
			claims: func(c map[string]any) { c["email_verified"] = false }},
		{name: "unverified email allowed", edit: func(o *OIDCConfig) { o.NameClaim = "email"; o.AllowUnverifiedEmail = true },
			claims: func(c map[string]any) { delete(c, "email_verified") },
			want:   &protocols.Identity{Name: "alice@example.com", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "nested name", edit: func(o *OIDCConfig) { o.NameClaim = "ext.login" },
			claims: func(c map[string]any) { c["ext"] = map[string]any{"login": "al"} },
			want:   &protocols.Identity{Name: "al", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "required groups all present", edit: func(o *OIDCConfig) { o.RequiredGroups = []string{"developers", "reviewers"} },
			want: &protocols.Identity{Name: "alice", Groups: []string{"developers", "reviewers"}, Method: "oidc"}},
		{name: "required group missing", edit: func(o *OIDCConfig) { o.RequiredGroups = []string{"developers", "admins"} }},
		{name: "group prefix after required check", edit: func(o *OIDCConfig) { o.GroupPrefix = "idp:"; o.RequiredGroups = []string{"developers"} },
			want: &protocols.Identity{Name: "alice", Groups: []string{"idp:developers", "idp:reviewers"}, Method: "oidc"}},
		{name: "ES256 only refuses RS256", edit: func(o *OIDCConfig) { o.SigningAlgs = []string{"ES256"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newOIDCFixture(t, func(c *Config) { tc.edit(c.OIDC) })
			id, err := f.auth.Authenticate(context.Background(), "", sign(t, f.rsa, f.claims(tc.claims)))
			if tc.want == nil {
				if !errors.Is(err, protocols.ErrAuthFailed) {
					t.Fatalf("err = %v, identity %+v; want ErrAuthFailed", err, id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v\n%s", err, f.logs)
			}
			if id.Name != tc.want.Name || !slices.Equal(id.Groups, tc.want.Groups) || id.Method != "oidc" {
				t.Fatalf("identity = %+v, want %+v", id, *tc.want)
			}
		})
	}
}

func TestOIDCStaticTokensStillWork(t *testing.T) {
	f := newOIDCFixture(t, nil)
	id, err := f.auth.Authenticate(context.Background(), "ci-bot", "ci-token")
	if err != nil || id.Name != "ci-bot" || id.Method != "token" {
		t.Fatalf("static token with OIDC configured: %+v, %v", id, err)
	}
	// A JWT for a static name is never tried as that name's token.
	if _, err := f.auth.Authenticate(context.Background(), "ci-bot", sign(t, f.rsa, f.claims(nil))); err == nil {
		t.Fatal("JWT accepted for a static identity's name")
	}
}
