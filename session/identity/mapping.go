package identity

import (
	"errors"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
)

// ClaimMapping turns the verified claims of an identity provider (an OIDC
// token's claims, or a SAML assertion's attributes read as claims) into an
// Identity: which claim names the caller, which holds the groups, which
// groups are required and the prefix put before them. The single sign-on
// flows use it with the same rules the oidc block applies to JWTs.
type ClaimMapping struct {
	// NameClaim is a claim name or a dotted path; required.
	NameClaim string
	// GroupsClaim is a claim name or a dotted path; empty reads no groups.
	GroupsClaim    string
	RequiredGroups []string
	GroupPrefix    string
	// AllowUnverifiedEmail accepts an "email" name claim without
	// email_verified: true (SAML attributes carry no such flag).
	AllowUnverifiedEmail bool
}

// Validate reports the mapping's problems with their paths below path.
func (m ClaimMapping) Validate(path, nameField, groupsField string) error {
	var errs []error
	if m.NameClaim != "" {
		if err := checkClaimPath(m.NameClaim); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", join(path, nameField), err))
		}
	}
	if m.GroupsClaim != "" {
		if err := checkClaimPath(m.GroupsClaim); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", join(path, groupsField), err))
		}
	}
	seen := map[string]bool{}
	for i, g := range m.RequiredGroups {
		p := fmt.Sprintf("%s[%d]", join(path, "required_groups"), i)
		if err := validGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", p, err))
		} else if seen[g] {
			errs = append(errs, fmt.Errorf("%s: duplicate group %q", p, g))
		}
		seen[g] = true
	}
	if m.GroupPrefix != "" {
		if err := validGroup(m.GroupPrefix); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", join(path, "group_prefix"), err))
		}
	}
	return errors.Join(errs...)
}

// Identity maps claims to an Identity whose Method is method. Errors say
// which claim is missing or malformed, never a claim's value beyond the
// name.
func (m ClaimMapping) Identity(claims map[string]any, method string) (protocols.Identity, error) {
	groups := m.GroupsClaim
	if groups == "" {
		// A path no claim can have: dotted paths have no empty segment.
		groups = ".none"
	}
	r := claimRules{nameClaim: m.NameClaim, groupsClaim: groups, requiredGroups: m.RequiredGroups,
		groupPrefix: m.GroupPrefix, allowUnverifiedEmail: m.AllowUnverifiedEmail}
	id, err := r.identity(claims)
	if err != nil {
		return protocols.Identity{}, err
	}
	id.Method = method
	return id, nil
}
