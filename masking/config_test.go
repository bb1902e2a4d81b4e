package masking

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"gopkg.in/yaml.v3"
)

func intp(v int) *int { return &v }

func TestValidate(t *testing.T) {
	const key = "0123456789abcdef0123"
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings of the joined error; none means valid
	}{
		{"empty", Config{}, nil},
		{"full", Config{HashKey: key,
			Detect:  []DetectRule{{Entity: "pii", Strategy: Partial}, {Entity: "email", Strategy: Hash}, {Entity: "secrets", Strategy: Redact}, {Entity: "us_ssn", Strategy: Null}},
			Columns: []ColumnRule{{Name: "*password*", Strategy: Null}, {TableColumn: "public.users.ssn", Strategy: Partial, Keep: intp(4)}},
			Exempt:  []string{"group:dba", "alice"}}, nil},
		{"unknown strategy", Config{Detect: []DetectRule{{Entity: "email", Strategy: "blur"}}},
			[]string{`m.detect[0].strategy: unknown strategy "blur" (want redact, partial, hash or null)`}},
		{"missing strategy", Config{Columns: []ColumnRule{{Name: "x"}}},
			[]string{`m.columns[0].strategy: missing (want redact, partial, hash or null; write null quoted, "null")`}},
		{"unknown entity", Config{Detect: []DetectRule{{Entity: "creditcard", Strategy: Redact}}},
			[]string{`m.detect[0].entity: unknown entity "creditcard" (want email, payment_card`}},
		{"missing entity", Config{Detect: []DetectRule{{Strategy: Redact}}}, []string{`m.detect[0].entity: missing`}},
		{"duplicate entity", Config{Detect: []DetectRule{{Entity: "email", Strategy: Redact}, {Entity: "email", Strategy: Hash}}, HashKey: key},
			[]string{`m.detect[1].entity: email already configured by m.detect[0]`}},
		{"overlapping groups", Config{Detect: []DetectRule{{Entity: "pii", Strategy: Redact}, {Entity: "all", Strategy: Redact}}},
			[]string{`m.detect[1].entity: email, payment_card, iban, phone, ip_address already configured by m.detect[0]`}},
		{"keep without partial", Config{Detect: []DetectRule{{Entity: "email", Strategy: Redact, Keep: intp(2)}}},
			[]string{`m.detect[0].keep: only applies to strategy partial`}},
		{"keep range", Config{Columns: []ColumnRule{{Name: "x", Strategy: Partial, Keep: intp(-1)}}},
			[]string{`m.columns[0].keep: -1 is out of range (want 0 to 64)`}},
		{"name and table", Config{Columns: []ColumnRule{{Name: "x", TableColumn: "t.x", Strategy: Null}}},
			[]string{`m.columns[0]: set name or table_column, not both`}},
		{"neither", Config{Columns: []ColumnRule{{Strategy: Null}}}, []string{`m.columns[0]: missing name or table_column`}},
		{"bad table column", Config{Columns: []ColumnRule{{TableColumn: "ssn", Strategy: Null}, {TableColumn: "a..b", Strategy: Null}, {TableColumn: "a.b.c.d", Strategy: Null}}},
			[]string{`m.columns[0].table_column: "ssn" has 1 parts`, `m.columns[1].table_column: empty part in "a..b"`, `m.columns[2].table_column: "a.b.c.d" has 4 parts`}},
		{"hash without key", Config{Detect: []DetectRule{{Entity: "email", Strategy: Hash}}, Columns: []ColumnRule{{Name: "x", Strategy: Hash}}},
			[]string{`m.hash_key: missing, but the hash strategy is used by m.detect[0], m.columns[0]`}},
		{"short key", Config{HashKey: "short"}, []string{`m.hash_key: too short (want at least 16 bytes`}},
		{"unexpanded key", Config{HashKey: "${AIRLOCK_MASK_KEY}"}, []string{`m.hash_key: contains an unexpanded ${...} reference`}},
		{"bad exempt", Config{Exempt: []string{"", "group:", "*"}},
			[]string{`m.exempt[0]: empty principal`, `m.exempt[1]: missing group name`, `m.exempt[2]: "*" would exempt every caller`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate("m")
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tc.want) {
				t.Errorf("got %d problems, want %d: %v", n, len(tc.want), err)
			}
		})
	}
}

func TestValidateNeverEchoesKey(t *testing.T) {
	for _, key := range []string{"hunter2", "${SECRET_hunter2}"} {
		err := (&Config{HashKey: protocols.Secret(key)}).Validate("m")
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error for a bad key must not show it: %v", err)
		}
	}
}

// TestYAMLShape decodes the documented YAML strictly, as the config loader
// does.
func TestYAMLShape(t *testing.T) {
	const doc = `
hash_key: "0123456789abcdef0123456789abcdef"
detect:
  - entity: email
    strategy: partial
  - entity: payment_card
    strategy: partial
    keep: 4
  - entity: secrets
    strategy: redact
  - entity: us_ssn
    strategy: hash
columns:
  - name: "*password*"
    strategy: "null"
  - table_column: public.users.ssn
    strategy: hash
exempt: ["group:dba"]
`
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate("masking"); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Detect) != 4 || *cfg.Detect[1].Keep != 4 || cfg.Columns[0].Strategy != Null || cfg.Exempt[0] != "group:dba" {
		t.Errorf("decoded %+v", cfg)
	}
	if _, err := New(cfg, "c", nil, nil); err != nil {
		t.Fatal(err)
	}
	var bare Config
	if err := yaml.Unmarshal([]byte("columns:\n  - name: x\n    strategy: null\n"), &bare); err != nil {
		t.Fatal(err)
	}
	if err := bare.Validate("m"); err == nil || !strings.Contains(err.Error(), `write null quoted, "null"`) {
		t.Errorf("a bare YAML null must explain itself: %v", err)
	}
	var bad Config
	dec = yaml.NewDecoder(strings.NewReader("detect:\n  - entity: email\n    stratgy: redact\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Error("a misspelt field must be rejected")
	}
}

func TestNewRejectsInvalid(t *testing.T) {
	_, err := New(Config{Detect: []DetectRule{{Entity: "email", Strategy: "blur"}}}, "orders", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "masking.detect[0].strategy") || !strings.Contains(err.Error(), "orders") {
		t.Fatalf("got %v", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Error("problems should stay joined")
	}
}
