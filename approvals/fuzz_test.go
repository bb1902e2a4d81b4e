package approvals

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeCookie checks that any cookie value either decodes to a valid
// bearer token that re-encodes to the same value, or is refused.
func FuzzDecodeCookie(f *testing.F) {
	for _, s := range []string{"", encodeCookie("tok-bob"), "dG9r", "!!", "dG9r=", strings.Repeat("A", 30000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, ok := decodeCookie(v)
		if !ok {
			return
		}
		if !validToken(tok) || encodeCookie(tok) != v {
			t.Fatalf("decoded %q from %q", tok, v)
		}
	})
}

// FuzzReadDecision feeds arbitrary bodies to the decision decoder: it
// never panics, and what it accepts is a single JSON object with at most a
// reason.
func FuzzReadDecision(f *testing.F) {
	for _, s := range []string{"", `{}`, `{"reason":"ok"}`, `{"reason":1}`, `{"reason":"a"} {}`, `{"x":1}`, "\x00", `[{"reason":"a"}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/api/approvals/x/approve", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		got, err := readDecision(httptest.NewRecorder(), r)
		if err == nil && strings.TrimSpace(body) != "" && !strings.Contains(body, "{") {
			t.Fatalf("accepted %q as %+v", body, got)
		}
	})
}

// FuzzVisible checks that Visible leaves nothing hidden and loses nothing
// visible.
func FuzzVisible(f *testing.F) {
	for _, s := range []string{"DROP TABLE t", "a\u202eb", "\x1b[2J", "x\u200by", "\xff\xfe", "line\nnext\ttab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := Visible(s)
		if HasHidden(v) || !utf8.ValidString(v) {
			t.Fatalf("Visible(%q) = %q still hides something", s, v)
		}
		if !HasHidden(s) && utf8.ValidString(s) && v != s {
			t.Fatalf("Visible changed plain text %q to %q", s, v)
		}
		if one := oneLine(s, 40); strings.ContainsAny(one, "\n\t") || utf8.RuneCountInString(one) > 40 {
			t.Fatalf("oneLine(%q) = %q", s, one)
		}
	})
}

// FuzzSafeNext checks that a post-login redirect always stays on the
// approvals pages of this host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"", "/approvals", "//evil", "/approvals/../x", "https://e/", "/approvals?x=1#y", "/\\e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := safeNext(s)
		if !strings.HasPrefix(n, "/approvals") || strings.HasPrefix(n, "//") || strings.ContainsAny(n, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", s, n)
		}
		if n != "/approvals" && n[len("/approvals")] != '/' && n[len("/approvals")] != '?' {
			t.Fatalf("safeNext(%q) = %q leaves the approvals pages", s, n)
		}
	})
}
