package mysqlcodec

import (
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

// TestTextColumnValues checks that the value of a duplicate key error on an
// index named after a rule-masked column is masked in free text.
func TestTextColumnValues(t *testing.T) {
	src, err := masking.New(masking.Config{
		Detect:  []masking.DetectRule{{Entity: "email", Strategy: masking.Redact}},
		Columns: []masking.ColumnRule{{Name: "ssn", Strategy: masking.Null}, {TableColumn: "shop.users.tax_id", Strategy: masking.Hash}},
		HashKey: "0123456789abcdef0123",
	}, "test", nil, Dialect{})
	if err != nil {
		t.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: "agent"})
	cases := []struct{ in, want string }{
		{"Duplicate entry '123-45-6789' for key 'users.ssn'", "Duplicate entry '[redacted]' for key 'users.ssn'"},
		{"Duplicate entry 'DE123' for key 'tax_id'", "Duplicate entry '[redacted]' for key 'tax_id'"},
		{"Duplicate entry 'jane@example.com' for key 'users.email'", "Duplicate entry '[redacted:email]' for key 'users.email'"},
		{"Duplicate entry '' for key 'users.ssn'", "Duplicate entry '' for key 'users.ssn'"},
		{"Duplicate entry '1-2' for key 'users.ssn", "Duplicate entry '1-2' for key 'users.ssn"},
		// PostgreSQL's form is not MySQL's: only the detectors apply.
		{"DETAIL: Key (ssn)=(123-45-6789) already exists.", "DETAIL: Key (ssn)=(123-45-6789) already exists."},
	}
	for _, tc := range cases {
		if got := string(m.Text([]byte(tc.in))); got != tc.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	rm := m.Plan([]protocols.Column{{Name: "doc", Type: protocols.TypeBytes}, {Name: "list", Type: protocols.TypeArray}})
	row := [][]byte{[]byte("\x00blob jane@example.com"), []byte("{clean}")}
	if !rm.MaskRow(row) || row[0] != nil || string(row[1]) != "{clean}" {
		t.Errorf("MySQL values are plain bytes: %q", row)
	}
}

// FuzzQuotes reads arbitrary bytes as a message: quotes lie inside it, and
// masking it with column rules is deterministic and bounded.
func FuzzQuotes(f *testing.F) {
	for _, s := range []string{
		"Duplicate entry '123-45-6789' for key 'users.ssn'",
		"Duplicate entry 'a' for key 'Duplicate entry '' for key 'ssn''",
		"Duplicate entry ''' for key '.'",
	} {
		f.Add([]byte(s))
	}
	src, err := masking.New(masking.Config{Detect: []masking.DetectRule{{Entity: "all", Strategy: masking.Redact}},
		Columns: []masking.ColumnRule{{Name: "ssn", Strategy: masking.Null}}}, "test", nil, Dialect{})
	if err != nil {
		f.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: "agent"})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, q := range (Dialect{}).AppendQuotes(nil, in) {
			if q.Start < 0 || q.End > len(in) || q.Start >= q.End {
				t.Fatalf("quote [%d:%d] of %d bytes", q.Start, q.End, len(in))
			}
		}
		out := m.Text(in)
		if string(out) != string(m.Text(in)) || len(out) > 6*len(in)+64 {
			t.Fatalf("%q masked to %q", in, out)
		}
	})
}
