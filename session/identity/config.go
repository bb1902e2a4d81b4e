package identity

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config lists who may authenticate: machine identities with static tokens
// and, optionally, one OIDC issuer. Its two fields are meant to be inlined at
// the top level of airlock.yaml (`yaml:",inline"` in the root struct).
type Config struct {
	Identities []Static    `yaml:"identities"`
	OIDC       *OIDCConfig `yaml:"oidc"`
}

// Static is a machine identity that authenticates with a static token.
type Static struct {
	// Name is what the caller gives as its Postgres or MySQL user or in
	// Redis AUTH; see ValidName for what it may contain.
	Name   string   `yaml:"name"`
	Groups []string `yaml:"groups"`
	// TokenSHA256 is the hex SHA-256 of the token (HashToken), never the
	// token itself. It may come from an environment variable expanded
	// before the configuration is decoded.
	TokenSHA256 string `yaml:"token_sha256"`
}

// OIDCConfig configures the one OpenID Connect issuer whose JWTs Airlock
// accepts.
type OIDCConfig struct {
	// Issuer must equal the tokens' iss claim exactly. Unless JWKSURL is set
	// its keys are found through Issuer + "/.well-known/openid-configuration".
	Issuer string `yaml:"issuer"`
	// Audience is the client id that must be among the tokens' aud claim.
	Audience string `yaml:"audience"`
	// JWKSURL, when set, skips discovery (for issuers without it).
	JWKSURL string `yaml:"jwks_url"`
	// NameClaim holds the identity's name: a claim name or a dotted path
	// into nested objects; default preferred_username.
	NameClaim string `yaml:"name_claim"`
	// GroupsClaim holds the groups: a JSON array of strings or one string;
	// a claim name or a dotted path (realm_access.roles); default groups.
	GroupsClaim string `yaml:"groups_claim"`
	// RequiredGroups, when set, must all be among the token's groups (as
	// the token names them, before GroupPrefix).
	RequiredGroups []string `yaml:"required_groups"`
	// GroupPrefix is put before every group from a token, so that groups
	// of the identity provider cannot be confused with configured ones.
	GroupPrefix string `yaml:"group_prefix"`
	// SigningAlgs restricts the accepted JWS algorithms; default all
	// asymmetric ones go-oidc supports. HMAC and "none" are never accepted.
	SigningAlgs []string `yaml:"signing_algs"`
	// Leeway tolerates clock skew on the exp claim; default 0, at most 5m.
	Leeway time.Duration `yaml:"leeway"`
	// JWKSMinRefresh is the least time between two fetches of the key set
	// caused by an unknown key id; default 10s.
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh"`
	// CAFile is a PEM bundle of the certificate authorities to trust for
	// the issuer, instead of the system's.
	CAFile string `yaml:"ca_file"`
	// AllowUnverifiedEmail accepts an email name claim without
	// email_verified: true. Leave it off unless the identity provider
	// verifies every address itself.
	AllowUnverifiedEmail bool `yaml:"allow_unverified_email"`
}

// Defaults of OIDCConfig and limits checked by Validate.
const (
	DefaultNameClaim      = "preferred_username"
	DefaultGroupsClaim    = "groups"
	DefaultJWKSMinRefresh = 10 * time.Second
	MaxLeeway             = 5 * time.Minute
)

// asymmetricAlgs are the JWS algorithms go-oidc verifies. HMAC algorithms
// would let anyone holding the (public) key set forge tokens, and "none" is
// no signature at all.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// emptySHA256 is the hash of the empty token, which can never be right.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Validate reports every problem of the configuration, each with its full
// path below path (empty at the top level), joined with errors.Join.
func (c *Config) Validate(path string) error {
	var errs []error
	add := func(p, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...)))
	}
	names := map[string]int{}
	hashes := map[string]int{}
	for i, s := range c.Identities {
		p := fmt.Sprintf("%s[%d]", join(path, "identities"), i)
		switch {
		case s.Name == "":
			add(p+".name", "missing")
		default:
			if err := ValidName(s.Name); err != nil {
				add(p+".name", "%v", err)
			}
			if j, dup := names[s.Name]; dup {
				add(p+".name", "duplicate of %s[%d].name %q", join(path, "identities"), j, s.Name)
			} else {
				names[s.Name] = i
			}
		}
		seen := map[string]bool{}
		for k, g := range s.Groups {
			gp := fmt.Sprintf("%s.groups[%d]", p, k)
			if err := validGroup(g); err != nil {
				add(gp, "%v", err)
			} else if seen[g] {
				add(gp, "duplicate group %q", g)
			}
			seen[g] = true
		}
		h := strings.ToLower(strings.TrimSpace(s.TokenSHA256))
		hp := p + ".token_sha256"
		switch {
		case h == "":
			add(hp, "missing (the hex SHA-256 of the token)")
		case len(h) != 64:
			// The length alone is safe to report; the value may be a token
			// pasted by mistake and never goes into an error.
			add(hp, "%d characters, want 64 hex digits (the SHA-256 of the token, not the token)", len(h))
		case !isHex(h):
			add(hp, "not hexadecimal (want the hex SHA-256 of the token, not the token)")
		case h == emptySHA256:
			add(hp, "is the SHA-256 of the empty token")
		default:
			if j, dup := hashes[h]; dup {
				add(hp, "same token as %s[%d]: every identity needs its own token", join(path, "identities"), j)
			} else {
				hashes[h] = i
			}
		}
	}
	if c.OIDC != nil {
		errs = append(errs, c.OIDC.validate(join(path, "oidc")))
	}
	return errors.Join(errs...)
}

func (o *OIDCConfig) validate(path string) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", join(path, field), fmt.Sprintf(format, args...)))
	}
	if o.Issuer == "" {
		add("issuer", "missing (the issuer URL, exactly as in the tokens' iss claim)")
	} else if err := checkURL(o.Issuer, false); err != nil {
		add("issuer", "%v", err)
	}
	if strings.TrimSpace(o.Audience) == "" {
		add("audience", "missing (the client id the tokens are issued for)")
	}
	if o.JWKSURL != "" {
		if err := checkURL(o.JWKSURL, true); err != nil {
			add("jwks_url", "%v", err)
		}
	}
	if o.NameClaim != "" {
		if err := checkClaimPath(o.NameClaim); err != nil {
			add("name_claim", "%v", err)
		}
	}
	if o.GroupsClaim != "" {
		if err := checkClaimPath(o.GroupsClaim); err != nil {
			add("groups_claim", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, g := range o.RequiredGroups {
		f := fmt.Sprintf("required_groups[%d]", i)
		if err := validGroup(g); err != nil {
			add(f, "%v", err)
		} else if seen[g] {
			add(f, "duplicate group %q", g)
		}
		seen[g] = true
	}
	if o.GroupPrefix != "" {
		if err := validGroup(o.GroupPrefix); err != nil {
			add("group_prefix", "%v", err)
		}
	}
	for i, a := range o.SigningAlgs {
		if !slices.Contains(asymmetricAlgs, a) {
			add(fmt.Sprintf("signing_algs[%d]", i), "algorithm %q not accepted (want one of %s; HMAC and none are never accepted)",
				a, strings.Join(asymmetricAlgs, ", "))
		}
	}
	if o.Leeway < 0 || o.Leeway > MaxLeeway {
		add("leeway", "%s out of range (want 0 to %s)", o.Leeway, MaxLeeway)
	}
	if o.JWKSMinRefresh != 0 && (o.JWKSMinRefresh < time.Second || o.JWKSMinRefresh > time.Hour) {
		add("jwks_min_refresh", "%s out of range (want 1s to 1h)", o.JWKSMinRefresh)
	}
	return errors.Join(errs...)
}

// withDefaults returns o with the defaults of unset fields filled in.
func (o OIDCConfig) withDefaults() OIDCConfig {
	if o.NameClaim == "" {
		o.NameClaim = DefaultNameClaim
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultGroupsClaim
	}
	if len(o.SigningAlgs) == 0 {
		o.SigningAlgs = asymmetricAlgs
	}
	if o.JWKSMinRefresh == 0 {
		o.JWKSMinRefresh = DefaultJWKSMinRefresh
	}
	return o
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
