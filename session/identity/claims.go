package identity

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// maxGroups bounds the groups taken from one token.
const maxGroups = 1024

// claimRules turns a verified token's claims into an Identity.
type claimRules struct {
	nameClaim            string
	groupsClaim          string
	requiredGroups       []string
	groupPrefix          string
	allowUnverifiedEmail bool
}

// lookupClaim finds path in claims. A claim whose name is the whole path
// wins (namespaced claims such as "https://example.com/roles" contain dots);
// otherwise the path descends into nested objects at each dot, again
// preferring the longest literal key, so "realm_access.roles" finds
// {"realm_access": {"roles": [...]}}.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		sub, ok := claims[path[:i]].(map[string]any)
		if !ok {
			continue
		}
		if v, ok := lookupClaim(sub, path[i+1:]); ok {
			return v, true
		}
	}
	return nil, false
}

// identity extracts the caller's name and groups. Errors say what is wrong
// with the token's claims, never the token itself.
func (r *claimRules) identity(claims map[string]any) (protocols.Identity, error) {
	v, ok := lookupClaim(claims, r.nameClaim)
	if !ok {
		return protocols.Identity{}, fmt.Errorf("name claim %q missing", r.nameClaim)
	}
	name, ok := v.(string)
	if !ok {
		return protocols.Identity{}, fmt.Errorf("name claim %q is not a string", r.nameClaim)
	}
	if err := ValidName(name); err != nil {
		return protocols.Identity{}, fmt.Errorf("name claim %q: %w", r.nameClaim, err)
	}
	if r.nameClaim == "email" && !r.allowUnverifiedEmail {
		// Many providers let users set their own address; an unverified
		// one would let anyone claim anyone's name.
		if verified, _ := claims["email_verified"].(bool); !verified {
			return protocols.Identity{}, errors.New("email is not verified (email_verified claim is not true)")
		}
	}
	groups, err := r.groups(claims)
	if err != nil {
		return protocols.Identity{}, err
	}
	for _, g := range r.requiredGroups {
		if !slices.Contains(groups, g) {
			return protocols.Identity{}, fmt.Errorf("not in required group %q", g)
		}
	}
	if r.groupPrefix != "" {
		for i := range groups {
			groups[i] = r.groupPrefix + groups[i]
		}
	}
	return protocols.Identity{Name: name, Groups: groups, Method: "oidc"}, nil
}

// groups reads the groups claim: absent is no groups; a string is one group;
// an array must hold only valid group strings. Anything else fails the
// token: a provider sending malformed groups is misconfigured.
func (r *claimRules) groups(claims map[string]any) ([]string, error) {
	v, ok := lookupClaim(claims, r.groupsClaim)
	if !ok || v == nil {
		return nil, nil
	}
	var raw []any
	switch g := v.(type) {
	case string:
		raw = []any{g}
	case []any:
		raw = g
	default:
		return nil, fmt.Errorf("groups claim %q is neither a string nor an array", r.groupsClaim)
	}
	if len(raw) > maxGroups {
		return nil, fmt.Errorf("groups claim %q has %d groups (at most %d)", r.groupsClaim, len(raw), maxGroups)
	}
	out := make([]string, 0, len(raw))
	for i, e := range raw {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("groups claim %q: element %d is not a string", r.groupsClaim, i)
		}
		if err := validGroup(s); err != nil {
			return nil, fmt.Errorf("groups claim %q: element %d: %w", r.groupsClaim, i, err)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// looksLikeJWT reports whether secret has the shape of a compact JWS: three
// dot-separated base64url segments, the header starting with `{"` encoded
// ("eyJ"). The signature may be empty so that unsigned tokens are refused by
// the verifier rather than tried as static tokens. A hand check: it runs on
// every authentication and needs no decoding.
func looksLikeJWT(secret string) bool {
	if !strings.HasPrefix(secret, "eyJ") || strings.Count(secret, ".") != 2 {
		return false
	}
	i := strings.IndexByte(secret, '.')
	j := strings.LastIndexByte(secret, '.')
	if j == i+1 {
		return false // empty payload
	}
	for k := 0; k < len(secret); k++ {
		c := secret[k]
		if c != '.' && !base64urlByte(c) {
			return false
		}
	}
	return true
}

func base64urlByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
