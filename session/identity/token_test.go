package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

func staticConfig() Config {
	return Config{Identities: []Static{
		{Name: "dev", Groups: []string{"developers", "reviewers"}, TokenSHA256: HashToken("dev-token")},
		{Name: "ci-bot", Groups: []string{"machines"}, TokenSHA256: strings.ToUpper(HashToken("ci-token"))},
		{Name: "reporter", TokenSHA256: HashToken("report-token")},
	}}
}

func TestHashToken(t *testing.T) {
	// The example of the configuration reference: sha256("dev-token").
	sum := sha256.Sum256([]byte("dev-token"))
	if got, want := HashToken("dev-token"), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("HashToken = %s, want %s", got, want)
	}
	if HashToken("") != emptySHA256 {
		t.Fatal("emptySHA256 is not the hash of the empty string")
	}
}

func TestGenerateToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, err := GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 {
			t.Fatalf("token %q has the wrong shape", tok)
		}
		if looksLikeJWT(tok) {
			t.Fatalf("token %q looks like a JWT", tok)
		}
		if seen[tok] {
			t.Fatal("GenerateToken repeated a token")
		}
		seen[tok] = true
	}
}

func TestStaticTokens(t *testing.T) {
	a, err := New(staticConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, given, secret string
		want                *protocols.Identity
	}{
		{"right name and token", "dev", "dev-token", &protocols.Identity{Name: "dev", Groups: []string{"developers", "reviewers"}, Method: "token"}},
		{"upper-case hash in config", "ci-bot", "ci-token", &protocols.Identity{Name: "ci-bot", Groups: []string{"machines"}, Method: "token"}},
		{"identity without groups", "reporter", "report-token", &protocols.Identity{Name: "reporter", Method: "token"}},
		{"wrong token", "dev", "dev-tokem", nil},
		{"another identity's token", "dev", "ci-token", nil},
		{"unknown name", "nobody", "dev-token", nil},
		{"name differs in case", "DEV", "dev-token", nil},
		{"token with trailing newline", "dev", "dev-token\n", nil},
		{"empty secret", "dev", "", nil},
		{"oversized secret", "dev", strings.Repeat("x", maxSecretLen+1), nil},
		{"token pasted as name", "dev-token", "dev-token", nil},
		{"empty name finds by token", "", "dev-token", &protocols.Identity{Name: "dev", Groups: []string{"developers", "reviewers"}, Method: "token"}},
		{"empty name finds the last identity", "", "report-token", &protocols.Identity{Name: "reporter", Method: "token"}},
		{"empty name, unknown token", "", "nope", nil},
		{"empty name, empty secret", "", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(context.Background(), tc.given, tc.secret)
			if tc.want == nil {
				if !errors.Is(err, protocols.ErrAuthFailed) || err.Error() != protocols.ErrAuthFailed.Error() {
					t.Fatalf("err = %v, want exactly ErrAuthFailed", err)
				}
				if id.Name != "" || id.Groups != nil {
					t.Fatalf("refusal returned %+v", id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Name != tc.want.Name || !slices.Equal(id.Groups, tc.want.Groups) || id.Method != tc.want.Method {
				t.Fatalf("identity = %+v, want %+v", id, *tc.want)
			}
		})
	}
}

func TestStaticIdentityGroupsAreCopies(t *testing.T) {
	a, err := New(staticConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(context.Background(), "dev", "dev-token")
	if err != nil {
		t.Fatal(err)
	}
	id.Groups[0] = "admins"
	id, err = a.Authenticate(context.Background(), "", "dev-token")
	if err != nil {
		t.Fatal(err)
	}
	if id.Groups[0] != "developers" {
		t.Fatalf("a caller changed the configured groups: %v", id.Groups)
	}
}

// TestUnknownNameComparesDummy proves the unknown-name path does the same
// work as a known name (a full comparison against a hash) and still refuses
// when the secret matches that dummy hash.
func TestUnknownNameComparesDummy(t *testing.T) {
	s, err := newTokenStore(staticConfig().Identities)
	if err != nil {
		t.Fatal(err)
	}
	if s.dummy == ([sha256.Size]byte{}) {
		t.Fatal("dummy hash is zero")
	}
	s.dummy = sha256.Sum256([]byte("matches-the-dummy"))
	if _, ok := s.lookup("nobody", "matches-the-dummy"); ok {
		t.Fatal("a secret matching the dummy hash authenticated an unknown name")
	}
	if _, ok := s.lookup("dev", "matches-the-dummy"); ok {
		t.Fatal("a secret matching the dummy hash authenticated a known name")
	}
	if _, ok := s.find("matches-the-dummy"); ok {
		t.Fatal("find matched the dummy hash")
	}
}

// TestFindEveryPosition checks the branch-free selection for a match at
// every position of a larger store.
func TestFindEveryPosition(t *testing.T) {
	var list []Static
	for i := range 40 {
		list = append(list, Static{Name: fmt.Sprintf("id-%d", i), TokenSHA256: HashToken(fmt.Sprintf("token-%d", i))})
	}
	s, err := newTokenStore(list)
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		id, ok := s.find(fmt.Sprintf("token-%d", i))
		if !ok || id.Name != list[i].Name {
			t.Fatalf("find(token-%d) = %+v, %v", i, id, ok)
		}
	}
	if _, ok := s.find("token-40"); ok {
		t.Fatal("find matched a token nobody has")
	}
	empty, err := newTokenStore(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.find("anything"); ok {
		t.Fatal("an empty store matched")
	}
	if _, ok := empty.lookup("anyone", "anything"); ok {
		t.Fatal("an empty store matched")
	}
}

func TestJWTShapedStaticTokenWithoutOIDC(t *testing.T) {
	// Without an issuer a JWT-shaped secret is an ordinary static token.
	tok := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"
	a, err := New(Config{Identities: []Static{{Name: "odd", TokenSHA256: HashToken(tok)}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Authenticate(context.Background(), "odd", tok); err != nil || id.Name != "odd" {
		t.Fatalf("%+v, %v", id, err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{Identities: []Static{{Name: "x", TokenSHA256: "abc"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "identities[0].token_sha256") {
		t.Fatalf("New = %v", err)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", true}, // unsigned: the verifier refuses it
		{"eyJhbGciOiJub25lIn0..c2ln", false},
		{"dev-token", false},
		{"airlock_abc.def.ghi", false},
		{"eyJ.eyJ", false},
		{"eyJa.eyJb.c.d", false},
		{"eyJa.ey+b.c", false},
		{"eyJa.eyJb.c=", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := looksLikeJWT(tc.in); got != tc.want {
			t.Errorf("looksLikeJWT(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestAuthenticateProof: a proof is checked against the named identity's
// stored hash only, an unknown name is checked against a hash no token has,
// and every refusal is the uniform error.
func TestAuthenticateProof(t *testing.T) {
	a, err := New(staticConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	knows := func(token string) func([32]byte) bool {
		return func(h [32]byte) bool { return h == sha256.Sum256([]byte(token)) }
	}
	id, err := a.AuthenticateProof("dev", knows("dev-token"))
	if err != nil || id.Name != "dev" || id.Method != "token" || !slices.Equal(id.Groups, []string{"developers", "reviewers"}) {
		t.Fatalf("AuthenticateProof(dev) = %+v, %v", id, err)
	}
	for _, tc := range []struct{ name, token string }{
		{"dev", "ci-token"},      // another identity's token
		{"ci-bot", "dev-token"},  // the same, the other way
		{"mallory", "dev-token"}, // unknown name
		{"", "dev-token"},        // no name
		{"reporter", "reporter"}, // wrong token
	} {
		calls := 0
		verify := func(h [32]byte) bool { calls++; return knows(tc.token)(h) }
		if _, err := a.AuthenticateProof(tc.name, verify); !errors.Is(err, protocols.ErrAuthFailed) {
			t.Errorf("AuthenticateProof(%q, %q) = %v, want ErrAuthFailed", tc.name, tc.token, err)
		}
		if calls != 1 {
			t.Errorf("AuthenticateProof(%q) called verify %d times, want 1 whether or not the name exists", tc.name, calls)
		}
	}
}
