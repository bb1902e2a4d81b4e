package identity

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestValidate(t *testing.T) {
	good := HashToken("t")
	cases := []struct {
		name string
		path string
		cfg  Config
		want []string // every line of the joined error, in order; nil when valid
	}{
		{name: "empty config", cfg: Config{}},
		{name: "valid", cfg: Config{
			Identities: []Static{{Name: "dev", Groups: []string{"developers"}, TokenSHA256: good}, {Name: "a.b+c@example.com", TokenSHA256: HashToken("u")}},
			OIDC: &OIDCConfig{Issuer: "https://idp.example.com", Audience: "airlock", JWKSURL: "https://idp.example.com/keys?v=1",
				NameClaim: "email", GroupsClaim: "realm_access.roles", RequiredGroups: []string{"db"}, GroupPrefix: "idp:",
				SigningAlgs: []string{"RS256", "ES256"}, Leeway: 30 * time.Second, JWKSMinRefresh: time.Minute},
		}},
		{name: "http on loopback", cfg: Config{OIDC: &OIDCConfig{Issuer: "http://127.0.0.1:8080/realms/x", Audience: "a", JWKSURL: "http://localhost/keys"}}},
		{name: "http on ipv6 loopback", cfg: Config{OIDC: &OIDCConfig{Issuer: "http://[::1]:8080", Audience: "a"}}},
		{name: "empty name", cfg: Config{Identities: []Static{{TokenSHA256: good}}},
			want: []string{"identities[0].name: missing"}},
		{name: "name with a space", cfg: Config{Identities: []Static{{Name: "data team", TokenSHA256: good}}},
			want: []string{`identities[0].name: name "data team" has character ' ' (want letters, digits and . _ @ + -)`}},
		{name: "principal-like names", cfg: Config{Identities: []Static{{Name: "*", TokenSHA256: good}, {Name: "group:x", TokenSHA256: HashToken("u")}}},
			want: []string{
				`identities[0].name: name "*" has character '*' (want letters, digits and . _ @ + -)`,
				`identities[1].name: name "group:x" has character ':' (want letters, digits and . _ @ + -)`,
			}},
		{name: "name with NUL", cfg: Config{Identities: []Static{{Name: "a\x00b", TokenSHA256: good}}},
			want: []string{`identities[0].name: name "a?b" has character '\x00' (want letters, digits and . _ @ + -)`}},
		{name: "name too long", cfg: Config{Identities: []Static{{Name: strings.Repeat("a", 64), TokenSHA256: good}}},
			want: []string{"identities[0].name: name is 64 bytes long (at most 63)"}},
		{name: "duplicate names and tokens", cfg: Config{Identities: []Static{
			{Name: "dev", TokenSHA256: good}, {Name: "ops", TokenSHA256: HashToken("u")}, {Name: "dev", TokenSHA256: strings.ToUpper(good)}}},
			want: []string{
				`identities[2].name: duplicate of identities[0].name "dev"`,
				"identities[2].token_sha256: same token as identities[0]: every identity needs its own token",
			}},
		{name: "token problems", cfg: Config{Identities: []Static{
			{Name: "a"}, {Name: "b", TokenSHA256: "dev-token"}, {Name: "c", TokenSHA256: strings.Repeat("zz", 32)}, {Name: "d", TokenSHA256: emptySHA256}}},
			want: []string{
				"identities[0].token_sha256: missing (the hex SHA-256 of the token)",
				"identities[1].token_sha256: 9 characters, want 64 hex digits (the SHA-256 of the token, not the token)",
				"identities[2].token_sha256: not hexadecimal (want the hex SHA-256 of the token, not the token)",
				"identities[3].token_sha256: is the SHA-256 of the empty token",
			}},
		{name: "group problems", cfg: Config{Identities: []Static{{Name: "a", Groups: []string{"x", "", "x", " y", "t\tab"}, TokenSHA256: good}}},
			want: []string{
				"identities[0].groups[1]: empty group",
				`identities[0].groups[2]: duplicate group "x"`,
				`identities[0].groups[3]: group " y" has surrounding spaces`,
				`identities[0].groups[4]: group "t?ab" has a control character`,
			}},
		{name: "below a path", path: "auth", cfg: Config{Identities: []Static{{Name: "", TokenSHA256: good}}, OIDC: &OIDCConfig{}},
			want: []string{
				"auth.identities[0].name: missing",
				"auth.oidc.issuer: missing (the issuer URL, exactly as in the tokens' iss claim)",
				"auth.oidc.audience: missing (the client id the tokens are issued for)",
			}},
		{name: "issuer over http", cfg: Config{OIDC: &OIDCConfig{Issuer: "http://idp.example.com", Audience: "a"}},
			want: []string{`oidc.issuer: "http://idp.example.com" must use https (http only for loopback hosts)`}},
		{name: "issuer problems", cfg: Config{OIDC: &OIDCConfig{Issuer: "ftp://idp.example.com", Audience: "a", JWKSURL: "https://user:pw@idp.example.com/keys"}},
			want: []string{
				`oidc.issuer: "ftp://idp.example.com" has scheme "ftp" (want https)`,
				`oidc.jwks_url: "https://user:xxxxx@idp.example.com/keys" must not carry credentials`,
			}},
		{name: "issuer with query", cfg: Config{OIDC: &OIDCConfig{Issuer: "https://idp.example.com/?tenant=1", Audience: "a"}},
			want: []string{`oidc.issuer: "https://idp.example.com/?tenant=1" must not have a query`}},
		{name: "issuer without host", cfg: Config{OIDC: &OIDCConfig{Issuer: "https:///realms", Audience: "a"}},
			want: []string{`oidc.issuer: "https:///realms" has no host`}},
		{name: "loopback look-alike", cfg: Config{OIDC: &OIDCConfig{Issuer: "http://127.0.0.1.nip.io", Audience: "a"}},
			want: []string{`oidc.issuer: "http://127.0.0.1.nip.io" must use https (http only for loopback hosts)`}},
		{name: "claims, groups, algorithms, durations", cfg: Config{OIDC: &OIDCConfig{
			Issuer: "https://idp.example.com", Audience: "a", NameClaim: "a..b", GroupsClaim: " groups",
			RequiredGroups: []string{"x", "x"}, GroupPrefix: "bad\nprefix", SigningAlgs: []string{"RS256", "HS256", "none"},
			Leeway: -time.Second, JWKSMinRefresh: time.Millisecond}},
			want: []string{
				`oidc.name_claim: claim path "a..b" has an empty segment`,
				`oidc.groups_claim: claim " groups" has surrounding spaces`,
				`oidc.required_groups[1]: duplicate group "x"`,
				`oidc.group_prefix: group "bad?prefix" has a control character`,
				`oidc.signing_algs[1]: algorithm "HS256" not accepted (want one of RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA; HMAC and none are never accepted)`,
				`oidc.signing_algs[2]: algorithm "none" not accepted (want one of RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA; HMAC and none are never accepted)`,
				"oidc.leeway: -1s out of range (want 0 to 5m0s)",
				"oidc.jwks_min_refresh: 1ms out of range (want 1s to 1h)",
			}},
		{name: "leeway too long", cfg: Config{OIDC: &OIDCConfig{Issuer: "https://idp.example.com", Audience: "a", Leeway: time.Hour}},
			want: []string{"oidc.leeway: 1h0m0s out of range (want 0 to 5m0s)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate(tc.path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted the config, want:\n%s", strings.Join(tc.want, "\n"))
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Validate:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestValidateNeverQuotesTokens(t *testing.T) {
	// A token pasted where its hash belongs must not reach the error.
	cfg := Config{Identities: []Static{{Name: "a", TokenSHA256: "super-secret-token-value"}}}
	err := cfg.Validate("")
	if err == nil || strings.Contains(err.Error(), "super-secret") {
		t.Fatalf("Validate = %v", err)
	}
}

// TestConfigYAML decodes the example configuration strictly, as the
// integrator does, and compares the validation report of a broken one with
// its golden file.
func TestConfigYAML(t *testing.T) {
	var good Config
	decodeStrict(t, "testdata/config.yaml", &good)
	if err := good.Validate(""); err != nil {
		t.Fatalf("testdata/config.yaml: %v", err)
	}
	if len(good.Identities) != 2 || good.Identities[0].TokenSHA256 != HashToken("dev-token") {
		t.Fatalf("decoded identities: %+v", good.Identities)
	}
	if o := good.OIDC; o == nil || o.Leeway != 30*time.Second || o.GroupsClaim != "realm_access.roles" || len(o.RequiredGroups) != 1 {
		t.Fatalf("decoded oidc: %+v", good.OIDC)
	}

	var bad Config
	decodeStrict(t, "testdata/invalid.yaml", &bad)
	err := bad.Validate("")
	if err == nil {
		t.Fatal("testdata/invalid.yaml validated")
	}
	golden := filepath.Join("testdata", "invalid.golden")
	got := []byte(err.Error() + "\n")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("validation report differs from %s (run with -update):\n%s", golden, got)
	}

	// Inlined at the top level of a larger file, as airlock.yaml does.
	var root struct {
		Listen string `yaml:"listen"`
		Config `yaml:",inline"`
	}
	decodeStrict(t, "testdata/inline.yaml", &root)
	if root.Listen != ":5432" || len(root.Identities) != 1 || root.OIDC == nil || root.OIDC.Audience != "airlock" {
		t.Fatalf("inline decoding: %+v", root)
	}
	if err := root.Config.Validate(""); err != nil {
		t.Fatal(err)
	}

	var unknown Config
	dec := yaml.NewDecoder(strings.NewReader("oidc:\n  issuer: https://x\n  audiance: a\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&unknown); err == nil || !strings.Contains(err.Error(), "audiance") {
		t.Fatalf("strict decoding accepted a misspelt field: %v", err)
	}
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
