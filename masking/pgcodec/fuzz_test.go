package pgcodec

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// FuzzRow masks a row of mixed types as PostgreSQL's dialect reads them:
// no panic, bounded values, and a value of an opaque type (bytea and
// binary arrays among them) is either untouched or NULL.
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
			opaque := c.Type == protocols.TypeNumber || c.Type == protocols.TypeNet || c.Type == protocols.TypeBytes ||
				c.Type == protocols.TypeOther || (c.Type == protocols.TypeArray && c.Binary)
			if opaque && v != nil && !bytes.Equal(v, orig[i]) {
				t.Fatalf("column %d (%v): opaque value rewritten: %q -> %q", i, c.Type, orig[i], v)
			}
		}
	})
}

// FuzzCopy masks arbitrary bytes as a COPY line in text and CSV: no panic,
// bounded output, and a masked line splits into as many fields again.
func FuzzCopy(f *testing.F) {
	for _, s := range []string{"1\tjane@example.com\t\\N\n", "a\\tb\t\\101\\x41\t\\N", "1,\"a,\"\"b\"\" jane@example.com\",\n", ",,\r\n"} {
		f.Add([]byte(s))
	}
	m := newMasker(f, fuzzConfig())
	cols := []protocols.Column{{Name: "a", Type: protocols.TypeText}, {Name: "ssn", Type: protocols.TypeText}, {Name: "c", Type: protocols.TypeJSON}}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, format := range []CopyFormat{{}, {CSV: true}} {
			c := PlanCopy(m, cols, format)
			out, err := c.MaskLine(bytes.Clone(in))
			if err != nil {
				continue
			}
			if !bounded(in, out) {
				t.Fatalf("%d bytes for %d", len(out), len(in))
			}
			if _, err := PlanCopy(m, cols, format).MaskLine(bytes.Clone(out)); err != nil {
				t.Fatalf("csv=%v: %q masked to %q, which no longer splits: %v", format.CSV, in, out, err)
			}
		}
	})
}
