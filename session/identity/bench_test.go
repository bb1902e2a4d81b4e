package identity

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func benchStore(b *testing.B, n int) *Authenticator {
	b.Helper()
	var list []Static
	for i := range n {
		list = append(list, Static{Name: fmt.Sprintf("id-%d", i), TokenSHA256: HashToken(fmt.Sprintf("token-%d", i))})
	}
	a, err := New(Config{Identities: list}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkStatic compares a known name, right and wrong, with an unknown one
// (the dummy comparison) and the nameless lookup over stores of growing size.
func BenchmarkStatic(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 100, 1000} {
		a := benchStore(b, n)
		b.Run(fmt.Sprintf("n=%d/known-name", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, "id-3", "token-3"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/known-name-wrong-token", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, "id-3", "token-4"); err == nil {
					b.Fatal("accepted")
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/unknown-name", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, "nobody", "token-3"); err == nil {
					b.Fatal("accepted")
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/no-name", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, "", "token-3"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOIDC measures verifying one JWT with a warm key cache: the cost a
// cache of verified tokens would save.
func BenchmarkOIDC(b *testing.B) {
	for _, kind := range []string{"RS256", "ES256"} {
		b.Run(kind, func(b *testing.B) {
			idp := newTestIdP(b, false)
			key := rsaKey(b, "k")
			if kind == "ES256" {
				key = ecKey(b, "k")
			}
			idp.publish(key)
			a, err := New(Config{OIDC: &OIDCConfig{Issuer: idp.issuer, Audience: "airlock"}}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			tok := sign(b, key, map[string]any{
				"iss": idp.issuer, "aud": "airlock", "preferred_username": "alice",
				"groups": []string{"developers", "reviewers"}, "exp": time.Now().Add(time.Hour).Unix(),
			})
			ctx := context.Background()
			if _, err := a.Authenticate(ctx, "alice", tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(tok)))
			for b.Loop() {
				if _, err := a.Authenticate(ctx, "alice", tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
