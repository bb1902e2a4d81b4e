package pgcodec

import (
	"testing"

	"github.com/airlock-gw/airlock/masking"
)

// TestTextColumnValues checks that values PostgreSQL's error details quote
// for rule-masked columns are masked in free text.
func TestTextColumnValues(t *testing.T) {
	m := newMasker(t, masking.Config{
		Detect:  []masking.DetectRule{{Entity: "email", Strategy: masking.Redact}},
		Columns: []masking.ColumnRule{{Name: "ssn", Strategy: masking.Null}, {TableColumn: "public.users.tax_id", Strategy: masking.Hash}},
		HashKey: "0123456789abcdef0123",
	})
	cases := []struct{ in, want string }{
		{"DETAIL: Key (ssn)=(123-45-6789) already exists.", "DETAIL: Key (ssn)=([redacted]) already exists."},
		{"Key (email, SSN)=(jane@example.com, 123-45-6789) already exists.", "Key (email, SSN)=([redacted]) already exists."},
		{`Key ("tax_id")=(DE123(4)) is not present in table "users".`, `Key ("tax_id")=([redacted]) is not present in table "users".`},
		{"Key (name)=(Jane (jane@example.com)) already exists.", "Key (name)=(Jane ([redacted:email])) already exists."},
		{"DETAIL: Failing row contains (7, null, 123-45-6789).\nHINT: x", "DETAIL: Failing row contains ([redacted]).\nHINT: x"},
		{"Key (ssn)=(", "Key (ssn)=("},
		// MySQL's form is not PostgreSQL's: only the detectors apply.
		{"Duplicate entry '123-45-6789' for key 'users.ssn'", "Duplicate entry '123-45-6789' for key 'users.ssn'"},
	}
	for _, tc := range cases {
		if got := string(m.Text([]byte(tc.in))); got != tc.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	plain := newMasker(t, detectAll(masking.Redact))
	in := "DETAIL: Failing row contains (7, Jane, 123-45-6789)."
	if got := string(plain.Text([]byte(in))); got != in {
		t.Errorf("without column rules rows in messages are only scanned: %q", got)
	}
}

// FuzzMessages reads arbitrary bytes as a message: quotes lie inside it,
// and masking it with column rules is deterministic and bounded.
func FuzzMessages(f *testing.F) {
	for _, s := range []string{
		"DETAIL: Key (ssn)=(123-45-6789) already exists. Failing row contains (1, a@b.co)",
		"Key (ssn)=(Key (ssn)=()\nFailing row contains ()Key (",
		"Key (a, \"ssn\")=((x), (y)) Key (b)=(jane@example.com)",
	} {
		f.Add([]byte(s))
	}
	m := newMasker(f, fuzzConfig())
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, q := range (Dialect{}).AppendQuotes(nil, in) {
			if q.Start < 0 || q.End > len(in) || q.Start >= q.End {
				t.Fatalf("quote [%d:%d] of %d bytes", q.Start, q.End, len(in))
			}
		}
		out := m.Text(in)
		if string(out) != string(m.Text(in)) {
			t.Fatalf("not deterministic for %q", in)
		}
		if !bounded(in, out) {
			t.Fatalf("output %d bytes for %d input bytes", len(out), len(in))
		}
	})
}
