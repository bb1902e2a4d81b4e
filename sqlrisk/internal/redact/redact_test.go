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
