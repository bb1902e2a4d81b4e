package pgcodec

import (
	"bytes"
	"testing"

	"github.com/airlock-gw/airlock/masking"
)

func TestArray(t *testing.T) {
	m := newMasker(t, detectAll(masking.Redact))
	cases := []struct{ name, in, want string }{
		{"clean", `{a,"b c",NULL,""}`, ""},
		{"bare email", `{jane@example.com,plain}`, `{"[redacted:email]",plain}`},
		{"quoted email", `{"write jane@example.com",NULL}`, `{"write [redacted:email]",NULL}`},
		{"escapes", `{"he said \"jane@example.com\" \\ ok"}`, `{"he said \"[redacted:email]\" \\ ok"}`},
		{"nested", `{{a,jane@example.com},{c,d}}`, `{{a,"[redacted:email]"},{c,d}}`},
		{"numeric card", `{4111111111111111,42}`, `{NULL,42}`},
		{"inet", `{10.0.0.1,2001:db8::1}`, `{NULL,NULL}`},
		{"dimensions", `[0:1]={x,jane@example.com}`, `[0:1]={x,"[redacted:email]"}`},
		{"spaces", `{ jane@example.com , b }`, `{ "[redacted:email]" , b }`},
		{"json elements", `{"{\"e\":\"jane@example.com\"}"}`, `{"{\"e\":\"[redacted:email]\"}"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, changed := maskOne(t, m, arrayCol, []byte(tc.in))
			want := tc.want
			if want == "" {
				want = tc.in
			}
			if string(out) != want || changed != (tc.want != "") {
				t.Errorf("got %s (changed %v), want %s", out, changed, want)
			}
		})
	}
	for _, bad := range []string{`{jane@example.com`, `jane@example.com`, `{"jane@example.com}`, `{a}{jane@example.com}`,
		`{a"b,jane@example.com"}`, `{"a"jane@example.com}`} {
		if out, _ := maskOne(t, m, arrayCol, []byte(bad)); out != nil {
			t.Errorf("malformed array %q with PII: want NULL, got %q", bad, out)
		}
	}
}

// FuzzArray masks arbitrary bytes as an array literal: a literal that
// parses keeps parsing, with the same number of elements.
func FuzzArray(f *testing.F) {
	for _, l := range corpusLines(f) {
		f.Add([]byte("{" + string(appendArrayQuoted(nil, []byte(l))) + ",x,NULL}"))
	}
	for _, s := range []string{`{a,"b c",NULL}`, `[1:2]={{jane@example.com},{x}}`, `{"\"q\" a@b.co \\"}`, `{4111111111111111}`} {
		f.Add([]byte(s))
	}
	m := newMasker(f, fuzzConfig())
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _ := maskOne(t, m, arrayCol, bytes.Clone(in))
		if !bounded(in, out) {
			t.Fatalf("output %d bytes for %d", len(out), len(in))
		}
		n, ok := countArrayElements(in)
		if !ok || out == nil {
			return
		}
		if m, ok := countArrayElements(out); !ok || m != n {
			t.Fatalf("array %q (%d elements) became %q (%d, parses %v)", in, n, out, m, ok)
		}
	})
}

// countArrayElements is an independent reading of the array literal
// grammar (array_in): it counts the elements, or reports a syntax error.
func countArrayElements(b []byte) (int, bool) {
	i := 0
	if len(b) > 0 && b[0] == '[' {
		k := bytes.IndexByte(b, '=')
		if k < 0 {
			return 0, false
		}
		i = k + 1
	}
	depth, count, expect := 0, 0, true // expect: an element or '{' may follow
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case isArraySpace(c):
		case c == '{':
			if !expect {
				return 0, false
			}
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				return 0, false
			}
			expect = false
			if depth == 0 {
				return count, len(bytes.TrimLeft(b[i+1:], " \t\n\r\v\f")) == 0
			}
		case c == ',':
			if depth == 0 || expect {
				return 0, false
			}
			expect = true
		case depth == 0 || !expect:
			return 0, false
		case c == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return 0, false
			}
			count, expect = count+1, false
		default:
			for ; i < len(b) && b[i] != ',' && b[i] != '}'; i++ {
				if b[i] == '"' || b[i] == '{' {
					return 0, false
				}
				if b[i] == '\\' {
					i++
				}
			}
			i--
			count, expect = count+1, false
		}
	}
	return 0, false
}
