package pgcodec

import (
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

func TestOpaqueForms(t *testing.T) {
	m := newMasker(t, detectAll(masking.Redact))
	cases := []struct {
		name string
		col  protocols.Column
		in   string
		null bool
	}{
		{"bytea hex", protocols.Column{Type: protocols.TypeBytes}, `\x6a616e65406578616d706c652e636f6d`, true},
		{"bytea hex clean", protocols.Column{Type: protocols.TypeBytes}, `\x0001020304`, false},
		{"bytea hex malformed", protocols.Column{Type: protocols.TypeBytes}, `\x6a6 jane@example.com`, true},
		{"bytea escape", protocols.Column{Type: protocols.TypeBytes}, `\001\0024111111111111111`, true},
		{"bytea escape hides", protocols.Column{Type: protocols.TypeBytes}, `jane\100example.com`, true},
		{"bytea binary", protocols.Column{Type: protocols.TypeBytes, Binary: true}, "raw AKIAIOSFODNN7EXAMPLE", true},
		{"binary array", protocols.Column{Type: protocols.TypeArray, Binary: true}, binArrayOf("ok", "4111111111111111"), true},
		{"binary array clean", protocols.Column{Type: protocols.TypeArray, Binary: true}, binArrayOf("ok", "fine"), false},
		{"binary array malformed", protocols.Column{Type: protocols.TypeArray, Binary: true}, "\x00\x00\x00\x01jane@example.com", true},
		// A 52-byte element: its length prefix ends in 0x34 ('4'), which
		// glued to the card's digits in the raw bytes would hide it.
		{"binary array glued length", protocols.Column{Type: protocols.TypeArray, Binary: true}, binArrayOf("4111111111111111" + strings.Repeat(" ", 0x34-16)), true},
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

// binArrayOf encodes a one-dimensional text[] in PostgreSQL's binary form.
func binArrayOf(els ...string) string {
	be := func(b []byte, v uint32) []byte { return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	b := be(nil, 1)
	b = be(b, 0)
	b = be(b, 25)
	b = be(b, uint32(len(els)))
	b = be(b, 1)
	for _, e := range els {
		b = be(b, uint32(len(e)))
		b = append(b, e...)
	}
	return string(b)
}

func TestColumnRules(t *testing.T) {
	m := newMasker(t, masking.Config{HashKey: "0123456789abcdef0123", Columns: []masking.ColumnRule{
		{Name: "secret_*", Strategy: masking.Redact},
		{Name: "tag?", Strategy: masking.Partial},
		{Name: "hashed", Strategy: masking.Hash},
	}})
	cases := []struct {
		col  protocols.Column
		in   string
		want string // "NULL" for NULL
	}{
		{protocols.Column{Name: "secret_list", Type: protocols.TypeArray}, `{a,"b c",NULL,7}`, `{"[redacted]","[redacted]",NULL,NULL}`},
		{protocols.Column{Name: "secret_bins", Type: protocols.TypeArray, Binary: true}, binArrayOf("a"), "NULL"},
		{protocols.Column{Name: "secret_b", Type: protocols.TypeBytes}, `\x00`, "NULL"},
		{protocols.Column{Name: "secret_b", Type: protocols.TypeBytes, Binary: true}, "\x00", "NULL"},
		{protocols.Column{Name: "secret_bad", Type: protocols.TypeArray}, `{a`, "NULL"},
		{protocols.Column{Name: "tags", Type: protocols.TypeArray}, `{{"jane doe",x},{"a\"b",NULL}}`, `{{"**** doe","*"},{"**b",NULL}}`},
		{protocols.Column{Name: "hashed", Type: protocols.TypeArray}, `[1:1]={jane}`, `[1:1]={"hash:`},
	}
	for _, tc := range cases {
		t.Run(tc.col.Name, func(t *testing.T) {
			out, changed := maskOne(t, m, tc.col, []byte(tc.in))
			got := string(out)
			if out == nil {
				got = "NULL"
			}
			if !strings.HasPrefix(got, tc.want) || !changed {
				t.Errorf("got %q (changed %v), want %q", got, changed, tc.want)
			}
		})
	}
	if out, changed := maskOne(t, m, protocols.Column{Name: "secret_empty", Type: protocols.TypeArray}, []byte("{}")); changed || string(out) != "{}" {
		t.Errorf("an empty array has nothing to mask: %q (changed %v)", out, changed)
	}
}
