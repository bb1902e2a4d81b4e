package masking

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

func TestMaskRowText(t *testing.T) {
	m := newMasker(t, detectAll(Redact))
	cols := []protocols.Column{textCol, {Name: "id", Type: protocols.TypeNumber}, {Name: "bin", Type: protocols.TypeText, Binary: true}}
	rm := m.Plan(cols)
	if rm == nil {
		t.Fatal("Plan returned nil with detection on")
	}
	clean := [][]byte{[]byte("Jane Smith, 12 Elm Street"), []byte("42"), nil}
	orig := [][]byte{clean[0], clean[1], clean[2]}
	if rm.MaskRow(clean) {
		t.Fatal("a row without PII was reported changed")
	}
	for i := range clean {
		if !bytes.Equal(clean[i], orig[i]) || (clean[i] == nil) != (orig[i] == nil) {
			t.Fatalf("value %d changed: %q", i, clean[i])
		}
	}
	row := [][]byte{[]byte("mail jane@example.com now"), []byte("4111111111111111"), []byte("ip 10.0.0.1")}
	if !rm.MaskRow(row) {
		t.Fatal("row with PII not reported changed")
	}
	if got := string(row[0]); got != "mail [redacted:email] now" {
		t.Errorf("text: %q", got)
	}
	if row[1] != nil {
		t.Errorf("a card in a number column must become NULL, got %q", row[1])
	}
	if got := string(row[2]); got != "ip [redacted:ip_address]" {
		t.Errorf("binary text: %q", got)
	}
	// Replaced values must not alias each other: appending to one must
	// not overwrite the next.
	_ = append(row[0], "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"...)
	if got := string(row[2]); got != "ip [redacted:ip_address]" {
		t.Errorf("values alias the same buffer: %q", got)
	}
}

func TestPlanSkips(t *testing.T) {
	m := newMasker(t, detectAll(Redact))
	cols := []protocols.Column{
		{Name: "t", Type: protocols.TypeTime}, {Name: "u", Type: protocols.TypeUUID},
		{Name: "b", Type: protocols.TypeBool}, {Name: "n", Type: protocols.TypeNumber, Binary: true},
	}
	if rm := m.Plan(cols); rm != nil {
		t.Error("Plan must return nil when no column can hold text")
	}
	onlyCols := newMasker(t, Config{Columns: []ColumnRule{{Name: "ssn", Strategy: Null}}})
	if rm := onlyCols.Plan([]protocols.Column{textCol}); rm != nil {
		t.Error("Plan must return nil when no column rule matches and nothing is detected")
	}
}

func TestOpaqueTypes(t *testing.T) {
	m := newMasker(t, detectAll(Redact))
	cases := []struct {
		name string
		col  protocols.Column
		in   string
		null bool
	}{
		{"numeric card", protocols.Column{Type: protocols.TypeNumber}, "4111111111111111", true},
		{"numeric plain", protocols.Column{Type: protocols.TypeNumber}, "1234567.89", false},
		{"inet text", protocols.Column{Type: protocols.TypeNet}, "192.168.0.10/32", true},
		{"inet binary", protocols.Column{Type: protocols.TypeNet, Binary: true}, "\x02\x20\x00\x04\xc0\xa8\x00\x0a", true},
		{"record text", protocols.Column{Type: protocols.TypeOther}, `(jane@example.com,1)`, true},
		{"record clean", protocols.Column{Type: protocols.TypeOther}, `(jane,1)`, false},
		{"unknown binary", protocols.Column{Type: protocols.TypeOther, Binary: true}, "\x00\x00\x00\x10jane@example.com", true},
		{"bytes binary", protocols.Column{Type: protocols.TypeBytes, Binary: true}, "raw AKIAIOSFODNN7EXAMPLE", true},
		// Without a dialect bytes are the value itself, in either format,
		// and arrays have no form the core can read: both are opaque.
		{"bytes text", protocols.Column{Type: protocols.TypeBytes}, "\x00\x01mail jane@example.com\xff", true},
		{"bytes text clean", protocols.Column{Type: protocols.TypeBytes}, "\x89PNG\r\n\x1a\n", false},
		{"bytes hex is not decoded", protocols.Column{Type: protocols.TypeBytes}, `\x6a616e65406578616d706c652e636f6d`, false},
		{"array", protocols.Column{Type: protocols.TypeArray}, `{ok,jane@example.com}`, true},
		{"array clean", protocols.Column{Type: protocols.TypeArray}, `{ok,fine}`, false},
		{"array binary", protocols.Column{Type: protocols.TypeArray, Binary: true}, "\x00\x00\x00\x01jane@example.com", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, changed := maskOne(t, m, tc.col, []byte(tc.in))
			if tc.null && (out != nil || !changed) {
				t.Errorf("want NULL, got %q (changed %v)", out, changed)
			}
			if !tc.null && (changed || string(out) != tc.in) {
				t.Errorf("want unchanged, got %q", out)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	m := newMasker(t, detectAll(Redact))
	cases := []struct {
		name, in string
		want     string // "" means unchanged
	}{
		{"clean", `{"name":"Jane","tags":["a","b"],"n":12.5,"ok":true,"x":null}`, ""},
		{"nested", `{"user":{"contact":{"email":"jane@example.com"}},"list":[{"ip":"10.0.0.1"}]}`,
			`{"user":{"contact":{"email":"[redacted:email]"}},"list":[{"ip":"[redacted:ip_address]"}]}`},
		{"in text", `{"note":"write to jane@example.com today"}`, `{"note":"write to [redacted:email] today"}`},
		{"escaped", `{"note":"say \"hi\" to jane@example.com\n\u00e9"}`, `{"note":"say \"hi\" to [redacted:email]\né"}`},
		{"unicode escape hides", `{"e":"jane\u0040example.com"}`, `{"e":"[redacted:email]"}`},
		{"number card", `{"pan":4111111111111111,"qty":3}`, `{"pan":"[redacted:payment_card]","qty":3}`},
		{"key email", `{"jane@example.com":1}`, `{"[redacted:email]":1}`},
		{"credential key", `{"password":"hunter2","user":"jane"}`, `{"password":"[redacted:credential]","user":"jane"}`},
		{"credential key nested", `{"db":{"DB_PASSWORD" : "s3cr3t!"}}`, `{"db":{"DB_PASSWORD" : "[redacted:credential]"}}`},
		{"credential placeholder", `{"password":null,"token":"undefined"}`, ""},
		{"whitespace", "{\n  \"a\" : [ \"jane@example.com\" , 1 ]\n}", "{\n  \"a\" : [ \"[redacted:email]\" , 1 ]\n}"},
		{"top-level string", `"jane@example.com"`, `"[redacted:email]"`},
		{"surrogates", `{"s":"\ud83d\ude00 jane@example.com"}`, `{"s":"😀 [redacted:email]"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, col := range []protocols.Column{jsonCol, jsonbBin} {
				in := []byte(tc.in)
				if col.Binary {
					in = append([]byte{1}, in...)
				}
				out, changed := maskOne(t, m, col, in)
				want := tc.want
				if want == "" {
					want = tc.in
				}
				if col.Binary {
					if len(out) == 0 || out[0] != 1 {
						t.Fatalf("jsonb version byte lost: %q", out)
					}
					out = out[1:]
				}
				if string(out) != want {
					t.Errorf("binary=%v\n got %s\nwant %s", col.Binary, out, want)
				}
				if changed != (tc.want != "") {
					t.Errorf("changed = %v", changed)
				}
				if !json.Valid(out) {
					t.Errorf("output is not valid JSON: %s", out)
				}
			}
		})
	}
}

func TestJSONStrategies(t *testing.T) {
	doc := `{"a":"jane@example.com","n":4111111111111111}`
	cases := []struct {
		s    Strategy
		want string
	}{
		{Null, `{"a":null,"n":null}`},
		{Partial, `{"a":"j***@example.com","n":"************1111"}`},
		{Hash, `{"a":"hash:`},
	}
	for _, tc := range cases {
		t.Run(string(tc.s), func(t *testing.T) {
			m := newMasker(t, detectAll(tc.s))
			out, _ := maskOne(t, m, jsonCol, []byte(doc))
			if !strings.HasPrefix(string(out), tc.want) || !json.Valid(out) {
				t.Errorf("got %s, want prefix %s", out, tc.want)
			}
		})
	}
	// Keys are never nulled: a key cannot be null in JSON.
	m := newMasker(t, detectAll(Null))
	out, _ := maskOne(t, m, jsonCol, []byte(`{"jane@example.com":1}`))
	if string(out) != `{"[redacted:email]":1}` {
		t.Errorf("null strategy on a key: %s", out)
	}
}

func TestJSONInvalidFailsClosed(t *testing.T) {
	m := newMasker(t, detectAll(Redact))
	for _, in := range []string{`{"a": jane@example.com}`, `{"a":"\q jane@example.com"}`, `{"a":"jane@example.com`} {
		out, changed := maskOne(t, m, jsonCol, []byte(in))
		if out != nil || !changed {
			t.Errorf("invalid JSON with PII %q: want NULL, got %q", in, out)
		}
	}
	// Token-level masking needs no structural validity: an unbalanced
	// document is still masked token by token.
	if out, _ := maskOne(t, m, jsonCol, []byte(`{"a":"jane@example.com"`)); string(out) != `{"a":"[redacted:email]"` {
		t.Errorf("unbalanced JSON: %q", out)
	}
	out, changed := maskOne(t, m, jsonCol, []byte(`{"a": nope}`))
	if changed || string(out) != `{"a": nope}` {
		t.Errorf("invalid JSON without PII must pass as it is: %q", out)
	}
}

func TestColumnRulesByType(t *testing.T) {
	m := newMasker(t, Config{HashKey: "0123456789abcdef0123", Columns: []ColumnRule{
		{Name: "secret_*", Strategy: Redact},
		{Name: "ssn", Strategy: Partial},
		{Name: "email", Strategy: Hash},
		{Name: "*password*", Strategy: Null},
	}})
	cases := []struct {
		col  protocols.Column
		in   string
		want string // "NULL" for NULL
	}{
		{protocols.Column{Name: "secret_note", Type: protocols.TypeText}, "anything", "[redacted]"},
		{protocols.Column{Name: "SECRET_NOTE", Type: protocols.TypeText, Binary: true}, "anything", "[redacted]"},
		{protocols.Column{Name: "secret_doc", Type: protocols.TypeJSON}, `{"a":1}`, `"[redacted]"`},
		{protocols.Column{Name: "secret_doc", Type: protocols.TypeJSON, Binary: true, TextOffset: 1}, "\x01{\"a\":1}", "\x01\"[redacted]\""},
		{protocols.Column{Name: "ssn", Type: protocols.TypeText}, "123-45-6789", "***-**-6789"},
		{protocols.Column{Name: "ssn", Type: protocols.TypeJSON}, `"123-45-6789"`, `"***-**-6789"`},
		{protocols.Column{Name: "ssn", Type: protocols.TypeNumber}, "123456789", "NULL"},
		{protocols.Column{Name: "secret_at", Type: protocols.TypeTime}, "2024-01-01", "NULL"},
		{protocols.Column{Name: "secret_id", Type: protocols.TypeUUID}, "550e8400-e29b-41d4-a716-446655440000", "NULL"},
		{protocols.Column{Name: "secret_b", Type: protocols.TypeBytes}, `\x00`, "NULL"},
		{protocols.Column{Name: "old_password_hash", Type: protocols.TypeText}, "x", "NULL"},
		{protocols.Column{Name: "secret_b", Type: protocols.TypeBytes, Binary: true}, "\x00", "NULL"},
		// Without a dialect an array is opaque: a rule nulls it.
		{protocols.Column{Name: "secret_list", Type: protocols.TypeArray}, `{a,"b c",NULL,7}`, "NULL"},
	}
	for _, tc := range cases {
		t.Run(tc.col.Name, func(t *testing.T) {
			out, changed := maskOne(t, m, tc.col, []byte(tc.in))
			got := string(out)
			if out == nil {
				got = "NULL"
			}
			if got != tc.want || !changed {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	h1, _ := maskOne(t, m, protocols.Column{Name: "email", Type: protocols.TypeText}, []byte("jane@example.com"))
	h2, _ := maskOne(t, m, protocols.Column{Name: "Email", Type: protocols.TypeText}, []byte("jane@example.com"))
	h3, _ := maskOne(t, m, protocols.Column{Name: "email", Type: protocols.TypeText}, []byte("john@example.com"))
	if !bytes.Equal(h1, h2) || bytes.Equal(h1, h3) || !strings.HasPrefix(string(h1), "hash:") || len(h1) != len("hash:")+16 {
		t.Errorf("hash must be stable and distinct: %q %q %q", h1, h2, h3)
	}
}
