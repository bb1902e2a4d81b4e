package masking

import (
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

func newMasker(t testing.TB, cfg Config) *Masker {
	t.Helper()
	src, err := New(cfg, "test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if src.m == nil {
		t.Fatal("nothing configured")
	}
	return src.m
}

// maskOne plans one column and masks one value; it returns the value after
// masking (nil for NULL) and whether MaskRow reported a change.
func maskOne(t testing.TB, m *Masker, col protocols.Column, v []byte) ([]byte, bool) {
	t.Helper()
	rm := m.Plan([]protocols.Column{col})
	if rm == nil {
		return v, false
	}
	row := [][]byte{v}
	changed := rm.MaskRow(row)
	return row[0], changed
}

var (
	textCol  = protocols.Column{Name: "note", Type: protocols.TypeText}
	jsonCol  = protocols.Column{Name: "doc", Type: protocols.TypeJSON}
	jsonbBin = protocols.Column{Name: "doc", Type: protocols.TypeJSON, Binary: true, TextOffset: 1}
)

func detectAll(s Strategy) Config {
	return Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{{Entity: "all", Strategy: s}}}
}
