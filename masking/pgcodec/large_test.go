package pgcodec

import (
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// TestAdversarialValues feeds multi-megabyte array literals, bytea and
// binary arrays built from repeated triggers: each is masked in linear
// time and the output stays bounded.
func TestAdversarialValues(t *testing.T) {
	size := 4 << 20
	if testing.Short() || raceEnabled {
		size = 256 << 10
	}
	m := newMasker(t, fuzzConfig())
	cases := []struct {
		col protocols.Column
		in  string
	}{
		{arrayCol, strings.Repeat("{", size/2) + strings.Repeat("}", size/2)},
		{arrayCol, "{" + strings.Repeat(`"a@b.co",`, size/9) + "x}"},
		{arrayCol, "{" + strings.Repeat(`\\`, size/2) + "}"},
		{protocols.Column{Type: protocols.TypeBytes}, `\x` + strings.Repeat("6a", size/2)},
		{protocols.Column{Type: protocols.TypeBytes}, strings.Repeat(`\\\001`, size/6)},
		{protocols.Column{Type: protocols.TypeArray, Binary: true}, binArrayOf(strings.Split(strings.Repeat("x,", size/10), ",")...)},
	}
	for i, tc := range cases {
		out, _ := maskOne(t, m, tc.col, []byte(tc.in))
		if !bounded([]byte(tc.in), out) {
			t.Errorf("case %d: %d bytes in, %d out", i, len(tc.in), len(out))
		}
	}
}
