package redact

import "testing"

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		text  string
		spans []Span
		want  string
	}{
		{"a 'x' b", []Span{{2, 5}}, "a '***' b"},
		{"a 'x' 'y'", []Span{{6, 9}, {2, 5}}, "a '***' '***'"},
		{"a 'xy' b", []Span{{2, 6}, {3, 5}}, "a '***' b"}, // nested: merged
		{"a 'xy' b", []Span{{2, 5}, {4, 6}}, "a '***' b"}, // overlapping: merged
		{"a 'x", []Span{{2, 100}}, "a '***'"},             // clipped
		{"abc", nil, "abc"},
		{"abc", []Span{{2, 1}}, "abc"},
	} {
		if got := Apply(tc.text, tc.spans, Mask); got != tc.want {
			t.Errorf("Apply(%q, %v) = %q, want %q", tc.text, tc.spans, got, tc.want)
		}
	}
}

func TestSecretLiteral(t *testing.T) {
	for s, want := range map[string]bool{
		"'host=h user=u password=p'":    true,
		"'host=h PASSWORD = p'":         true,
		"'postgresql://u:p@h/db'":       true,
		"'mysql://root:pw@evil:3306/x'": true,
		`'{"password": "x"}'`:           true,
		"'Pwd=abc;Server=x'":            true,
		"'my password is long'":         false,
		"'https://example.com/a@b'":     false,
		"'user@example.com'":            false,
	} {
		if got := SecretLiteral(s); got != want {
			t.Errorf("SecretLiteral(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestQuickPassAgrees: the quick pass never rules out what the regular
// expression matches.
func TestQuickPassAgrees(t *testing.T) {
	for _, s := range []string{
		"password=x", "PWD=1", "Secret = y", "x://u:p@h", `{"PassWd": 1}`, "pass=", "a pwd= b",
		"nothing here", "user@example.com", "https://example.com/a@b", "ftp://h/p", "", "p", "s", ":", "@",
	} {
		if secretContent.MatchString(s) && !mayHoldSecret(s) {
			t.Errorf("the quick pass rules out %q, which the expression matches", s)
		}
	}
}

func FuzzQuickPass(f *testing.F) {
	for _, s := range []string{"password=x", "x://u:p@h", `"pass": 1`, "plain text"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if secretContent.MatchString(s) && !mayHoldSecret(s) {
			t.Fatalf("the quick pass rules out %q, which the expression matches", s)
		}
	})
}

func BenchmarkSecretLiteralLarge(b *testing.B) {
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = "abcdefghijklmnoqrtuvwxyz0123456789 ,.;"[i%38]
	}
	s := string(blob)
	b.SetBytes(int64(len(s)))
	for range b.N {
		SecretLiteral(s)
	}
}
