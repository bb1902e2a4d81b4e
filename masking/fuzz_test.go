package masking

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// fuzzConfig mixes every strategy so each replacement path runs.
func fuzzConfig() Config {
	return Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{
		{Entity: "email", Strategy: Partial}, {Entity: "payment_card", Strategy: Partial},
		{Entity: "phone", Strategy: Hash}, {Entity: "pii", Strategy: Redact},
		{Entity: "secrets", Strategy: Redact}, {Entity: "us_ssn", Strategy: Null},
	}, Columns: []ColumnRule{{Name: "ssn", Strategy: Hash}, {TableColumn: "users.tax_*", Strategy: Null}}}
}

// bounded is the output bound: the shortest span a detector can take is
// one byte of a URL password ("//:a@" → "//:[redacted:credential]@"), so a
// small constant factor covers every strategy.
func bounded(in, out []byte) bool { return len(out) <= 6*len(in)+64 }

// addCorpusSeeds adds every detector corpus line as a seed.
func addCorpusSeeds(f *testing.F, wrap func(string) string) {
	for _, l := range corpusLines(f) {
		f.Add([]byte(wrap(l)))
	}
}

// FuzzText masks arbitrary bytes as free text: no panic, deterministic,
// bounded output, and with redaction nothing detectable is left.
func FuzzText(f *testing.F) {
	addCorpusSeeds(f, func(s string) string { return s })
	m := newMasker(f, fuzzConfig())
	redact := newMasker(f, Config{Detect: []DetectRule{{Entity: "all", Strategy: Redact}, {Entity: "us_ssn", Strategy: Redact}},
		Columns: []ColumnRule{{Name: "ssn", Strategy: Null}}})
	f.Add([]byte("DETAIL: Key (ssn)=(123-45-6789) already exists. Failing row contains (1, a@b.co)\nDuplicate entry 'x' for key 't.ssn'"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := m.Text(in)
		if !bytes.Equal(out, m.Text(in)) {
			t.Fatalf("not deterministic for %q", in)
		}
		if !bounded(in, out) {
			t.Fatalf("output %d bytes for %d input bytes", len(out), len(in))
		}
		once := redact.Text(in)
		w := redact.e.newWorker()
		for _, sp := range w.sc.scan(once) {
			// Masking changes the context of what stays: "001010010.<card>"
			// reads as a decimal, "001010010.[redacted:…]" as an SSN. Only
			// an entity away from every placeholder was truly missed.
			if !nearPlaceholder(once, sp) {
				t.Fatalf("masked text still holds %s %q:\n in %q\nout %q", sp.ent, once[sp.start:sp.end], in, once)
			}
		}
	})
}

// nearPlaceholder reports whether a placeholder starts or ends within two
// bytes of the span.
func nearPlaceholder(b []byte, sp span) bool {
	for d := 0; d <= 2; d++ {
		if a := sp.end + d; a <= len(b) && bytes.HasPrefix(b[a:], []byte("[redacted")) {
			return true
		}
		if z := sp.start - d; z >= 1 && z <= len(b) && b[z-1] == ']' && bytes.LastIndex(b[:z], []byte("[redacted")) >= 0 {
			return true
		}
	}
	return false
}

// FuzzJSON masks arbitrary bytes as json and jsonb: valid JSON stays valid
// and decodes, the jsonb version byte stays, output is bounded.
func FuzzJSON(f *testing.F) {
	addCorpusSeeds(f, func(s string) string { b, _ := json.Marshal(map[string]string{"v": s, s: "k"}); return string(b) })
	for _, s := range []string{`{"password":"hunter2","n":4111111111111111}`, `["\u0040","a\ud83d\ude00b"]`, `{"a":{"b":[1,2,{"c":"jane@example.com"}]}}`} {
		f.Add([]byte(s))
	}
	m := newMasker(f, fuzzConfig())
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, col := range []protocols.Column{jsonCol, jsonbBin} {
			v := in
			if col.Binary {
				v = append([]byte{1}, in...)
			}
			out, _ := maskOne(t, m, col, bytes.Clone(v))
			if !bounded(v, out) {
				t.Fatalf("output %d bytes for %d", len(out), len(v))
			}
			if !json.Valid(in) || out == nil {
				continue
			}
			if col.Binary {
				if out[0] != 1 {
					t.Fatalf("version byte lost: %q", out)
				}
				out = out[1:]
			}
			var x any
			if err := json.Unmarshal(out, &x); err != nil {
				t.Fatalf("valid JSON %q became invalid %q: %v", in, out, err)
			}
		}
	})
}

// FuzzRow masks a row of mixed types: no panic, bounded values, and a
// value of an opaque type is either untouched or NULL.
func FuzzRow(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte("jane@example.com\xff{\"a\":\"4111111111111111\"}\xff{x,y}\xff\\x6a616e65406578616d706c652e636f6d"))
	f.Add([]byte{7, 8, 9, 10}, []byte("10.0.0.1\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x19\xff1.5\xffAKIAIOSFODNN7EXAMPLE"))
	m := newMasker(f, fuzzConfig())
	f.Fuzz(func(t *testing.T, types []byte, data []byte) {
		vals := bytes.Split(data, []byte{0xff})
		if len(vals) > 16 {
			vals = vals[:16]
		}
		cols := make([]protocols.Column, len(vals))
		for i := range cols {
			var sel byte
			if i < len(types) {
				sel = types[i]
			}
			cols[i] = protocols.Column{Name: "c" + strconv.Itoa(i), Type: protocols.ValueType(sel % 10), Binary: sel&0x10 != 0}
			if cols[i].Type == protocols.TypeJSON && cols[i].Binary {
				cols[i].TextOffset = 1
			}
		}
		rm := m.Plan(cols)
		if rm == nil {
			return
		}
		orig := make([][]byte, len(vals))
		copy(orig, vals)
		rm.MaskRow(vals)
		for i, v := range vals {
			if !bounded(orig[i], v) {
				t.Fatalf("column %d: %d bytes for %d", i, len(v), len(orig[i]))
			}
			c := cols[i]
			// Without a dialect arrays are opaque in either format.
			opaque := c.Type == protocols.TypeNumber || c.Type == protocols.TypeNet || c.Type == protocols.TypeBytes ||
				c.Type == protocols.TypeOther || c.Type == protocols.TypeArray
			if opaque && v != nil && !bytes.Equal(v, orig[i]) {
				t.Fatalf("column %d (%v): opaque value rewritten: %q -> %q", i, c.Type, orig[i], v)
			}
		}
	})
}
