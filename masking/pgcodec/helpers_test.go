package pgcodec

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

// newMasker compiles cfg with PostgreSQL's dialect.
func newMasker(t testing.TB, cfg masking.Config) protocols.Masker {
	t.Helper()
	src, err := masking.New(cfg, "test", nil, Dialect{})
	if err != nil {
		t.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: "agent"})
	if m == nil {
		t.Fatal("nothing configured")
	}
	return m
}

// maskOne plans one column and masks one value; it returns the value after
// masking (nil for NULL) and whether MaskRow reported a change.
func maskOne(t testing.TB, m protocols.Masker, col protocols.Column, v []byte) ([]byte, bool) {
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
	arrayCol = protocols.Column{Name: "list", Type: protocols.TypeArray}
)

func detectAll(s masking.Strategy) masking.Config {
	return masking.Config{HashKey: "0123456789abcdef0123", Detect: []masking.DetectRule{{Entity: "all", Strategy: s}}}
}

// fuzzConfig mixes every strategy so each replacement path runs.
func fuzzConfig() masking.Config {
	return masking.Config{HashKey: "0123456789abcdef0123", Detect: []masking.DetectRule{
		{Entity: "email", Strategy: masking.Partial}, {Entity: "payment_card", Strategy: masking.Partial},
		{Entity: "phone", Strategy: masking.Hash}, {Entity: "pii", Strategy: masking.Redact},
		{Entity: "secrets", Strategy: masking.Redact}, {Entity: "us_ssn", Strategy: masking.Null},
	}, Columns: []masking.ColumnRule{{Name: "ssn", Strategy: masking.Hash}, {TableColumn: "users.tax_*", Strategy: masking.Null}}}
}

// bounded is the core's output bound (a small constant factor).
func bounded(in, out []byte) bool { return len(out) <= 6*len(in)+64 }

// corpusLines reads the core's detector corpus: every positive and
// negative example.
func corpusLines(t testing.TB) []string {
	files, _ := filepath.Glob("../testdata/detect/*.txt")
	if len(files) == 0 {
		t.Fatal("no detector corpus")
	}
	var out []string
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			l := sc.Text()
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if rest, ok := strings.CutPrefix(l, "q:"); ok {
				if u, err := strconv.Unquote(rest); err == nil {
					l = u
				}
			}
			out = append(out, l)
		}
		fh.Close()
	}
	return out
}
