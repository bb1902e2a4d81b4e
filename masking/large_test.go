package masking

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// TestAdversarialInputs feeds multi-megabyte inputs built from each
// matcher's trigger repeated back to back. Every matcher either consumes
// what it reads or reads a bounded window, so each input is masked in
// linear time; a quadratic path would not finish. Outputs stay bounded.
func TestAdversarialInputs(t *testing.T) {
	size := 4 << 20
	if testing.Short() || raceEnabled {
		size = 256 << 10
	}
	m := newMasker(t, fuzzConfig())
	patterns := []string{
		"a@", "@a.", "a.a@", "password=", `"password":"`, "password: '", "1 ", "1.", "1-", "+1 ", "(1",
		"eyJ.", "eyJhbGciOiJub25lIn0.", "-----BEGIN A PRIVATE KEY-----", "-----BEGIN A PRIVATE KEY-----x-----END B PRIVATE KEY-----",
		"::", "a:", "abcd:", "1:2::", "Bearer ", "Basic ", "AKIAIOSFODNN7EXAMPLE ", "x", "4", "4111 1111 1111 1111 ",
		"DE89 ", "DE89370400440532013000", "ghp_", "xoxb-", "https://hooks.slack.com/services/", "sk_live_", "//:a@",
		"\\\"token\\\":\\\"", "PASSWORD '", "0", "00 ", "123-45-", "10.0.0.", "a=b=", "é@", "\xff@",
	}
	for _, p := range patterns {
		t.Run(strings.ToValidUTF8(p, "?"), func(t *testing.T) {
			in := bytes.Repeat([]byte(p), size/len(p)+1)
			out := m.Text(in)
			if !bounded(in, out) {
				t.Fatalf("%d bytes in, %d out", len(in), len(out))
			}
			row := [][]byte{in, in}
			rm := m.Plan([]protocols.Column{textCol, {Name: "x", Type: protocols.TypeOther}})
			rm.MaskRow(row)
			if !bounded(in, row[0]) {
				t.Fatalf("row: %d bytes in, %d out", len(in), len(row[0]))
			}
		})
	}
	structured := []struct {
		col protocols.Column
		in  string
	}{
		{jsonCol, strings.Repeat("[", size/2) + strings.Repeat("]", size/2)},
		{jsonCol, `["` + strings.Repeat(`\u0040jane@example.com`, size/22) + `"]`},
		{jsonCol, "{" + strings.Repeat(`"password":"hunter2",`, size/21) + `"x":1}`},
		{jsonCol, `"` + strings.Repeat("a", size) + `"`},
	}
	for i, tc := range structured {
		out, _ := maskOne(t, m, tc.col, []byte(tc.in))
		if !bounded([]byte(tc.in), out) {
			t.Errorf("structured %d: %d bytes in, %d out", i, len(tc.in), len(out))
		}
	}
}

// TestLargeValue masks a 100 MB text value holding a known number of
// entities among ordinary prose, and a large JSON document.
func TestLargeValue(t *testing.T) {
	size := 100 << 20
	if testing.Short() || raceEnabled {
		size = 4 << 20
	}
	reg := 0
	var sb strings.Builder
	sb.Grow(size + 1024)
	for i := 0; sb.Len() < size; i++ {
		sb.WriteString(sentences[i%len(sentences)])
		if i%1000 == 0 {
			sb.WriteString(" contact jane@example.com or 4111 1111 1111 1111. ")
			reg += 2
		}
		sb.WriteByte(' ')
	}
	in := []byte(sb.String())
	m := newMasker(t, Config{Detect: []DetectRule{{Entity: "all", Strategy: Redact}}})
	rm := m.Plan([]protocols.Column{textCol})
	row := [][]byte{in}
	if !rm.MaskRow(row) {
		t.Fatal("nothing masked")
	}
	out := row[0]
	got := bytes.Count(out, []byte("[redacted:email]")) + bytes.Count(out, []byte("[redacted:payment_card]"))
	if got != reg || bytes.Contains(out, []byte("jane@example.com")) || bytes.Count(out, []byte("[redacted:")) != reg {
		t.Fatalf("masked %d entities, want exactly %d", got, reg)
	}
	if len(out) > len(in)+8*reg {
		t.Fatalf("redaction grew %d bytes to %d", len(in), len(out))
	}
	// The next row must not keep the 100 MB buffer alive.
	rm.MaskRow([][]byte{[]byte("small jane@example.com")})
	if r := rm.(*rowMasker); cap(r.out) > maxRetained {
		t.Errorf("row buffer of %d bytes retained", cap(r.out))
	}

	doc := map[string]any{"items": []any{}}
	items := doc["items"].([]any)
	for i := 0; i < size/2000; i++ {
		items = append(items, map[string]any{"note": sentences[i%len(sentences)], "email": "jane@example.com", "n": i})
	}
	doc["items"] = items
	js, _ := json.Marshal(doc)
	jv, _ := maskOne(t, m, jsonCol, js)
	if !json.Valid(jv) || bytes.Contains(jv, []byte("jane@example.com")) {
		t.Fatal("large JSON not masked validly")
	}
}
