package identity

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// FuzzClaims feeds arbitrary claim sets to the claim rules: they must never
// panic, and what they accept must be a valid name with valid groups.
func FuzzClaims(f *testing.F) {
	f.Add([]byte(`{"preferred_username":"alice","groups":["a","b"]}`), "preferred_username", "groups")
	f.Add([]byte(`{"sub":"x","realm_access":{"roles":"dba"}}`), "sub", "realm_access.roles")
	f.Add([]byte(`{"a.b":{"c":"n"},"a":{"b.c":"m"},"g":[1,"x"]}`), "a.b.c", "g")
	f.Add([]byte(`{"email":"a@b.c","email_verified":true,"groups":null}`), "email", "groups")
	f.Fuzz(func(t *testing.T, payload []byte, nameClaim, groupsClaim string) {
		if checkClaimPath(nameClaim) != nil || checkClaimPath(groupsClaim) != nil {
			return
		}
		var claims map[string]any
		if json.Unmarshal(payload, &claims) != nil {
			return
		}
		r := claimRules{nameClaim: nameClaim, groupsClaim: groupsClaim, requiredGroups: []string{"a"}, groupPrefix: "p:"}
		id, err := r.identity(claims)
		if err != nil {
			return
		}
		if ValidName(id.Name) != nil {
			t.Fatalf("accepted invalid name %q", id.Name)
		}
		if !slices.Contains(id.Groups, "p:a") {
			t.Fatalf("accepted without the required group: %q", id.Groups)
		}
		for _, g := range id.Groups {
			if validGroup(g[len("p:"):]) != nil {
				t.Fatalf("accepted invalid group %q", g)
			}
		}
	})
}

// FuzzAuthenticateStatic checks that no name and secret but the configured
// pairs authenticate, whatever their shape.
func FuzzAuthenticateStatic(f *testing.F) {
	a, err := New(staticConfig(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]string{"dev-token": "dev", "ci-token": "ci-bot", "report-token": "reporter"}
	f.Add("dev", "dev-token")
	f.Add("", "ci-token")
	f.Add("dev", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("nobody", "")
	f.Fuzz(func(t *testing.T, name, secret string) {
		id, err := a.Authenticate(context.Background(), name, secret)
		owner, isToken := valid[secret]
		want := isToken && (name == "" || name == owner)
		switch {
		case want && (err != nil || id.Name != owner):
			t.Fatalf("Authenticate(%q, %q) = %+v, %v; want %s", name, secret, id, err, owner)
		case !want && !errors.Is(err, protocols.ErrAuthFailed):
			t.Fatalf("Authenticate(%q, %q) = %+v, %v; want ErrAuthFailed", name, secret, id, err)
		}
	})
}

// FuzzBearer checks the Authorization header parser: a token it returns is
// non-empty visible ASCII.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer  eyJ.eyJ.x")
	f.Add("Basic dXNlcjpwdw==")
	f.Add("Bearer \x00")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearer([]string{h})
		if !ok {
			return
		}
		if tok == "" {
			t.Fatal("empty token accepted")
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] > '~' {
				t.Fatalf("token %q has byte %#x", tok, tok[i])
			}
		}
	})
}
