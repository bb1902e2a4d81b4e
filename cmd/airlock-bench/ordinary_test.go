package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

func TestOrdinaryScript(t *testing.T) {
	for _, want := range []string{
		`\set start random(1, 9901)`,
		"SELECT id, sku, title, description, price, quantity, status, updated_at FROM bench_ordinary WHERE id BETWEEN :start AND :start + 99;",
	} {
		if !strings.Contains(ordinaryScript, want) {
			t.Errorf("ordinary script lacks %q:\n%s", want, ordinaryScript)
		}
	}
}

func TestOrdinaryRowsAreStableAndPlain(t *testing.T) {
	// A change here changes the table: bump ordinaryVersion with it, so
	// that an existing table is recreated.
	r := makeOrdinaryRow(42)
	want := []string{"42", "STE-CAB-10042", "Matte black steel cabinet knob",
		"A steel cabinet knob in matte black for office desks, sold in packs of 7 with fixings included and a two year guarantee.",
		"333.97", "114", "active", "2026-01-05 19:54:42+00"}
	if got := r.text(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("row 42:\n got %q\nwant %q", got, want)
	}
	skus := map[string]bool{}
	for id := 1; id <= ordinaryRows; id++ {
		r := makeOrdinaryRow(id)
		if skus[r.SKU] {
			t.Fatalf("sku %s repeats", r.SKU)
		}
		skus[r.SKU] = true
		if r.PriceCents < 100 || r.PriceCents > 99999 || r.Quantity < 0 {
			t.Fatalf("row %d: price %d cents, quantity %d", id, r.PriceCents, r.Quantity)
		}
		for _, v := range []string{r.SKU, r.Title, r.Description, r.Status} {
			if n := longestDigitRun(v); n > 5 {
				t.Fatalf("row %d: %q holds a run of %d digits", id, v, n)
			}
			if strings.ContainsAny(v, "@:=+/") {
				t.Fatalf("row %d: %q holds a character masking detectors look at", id, v)
			}
		}
	}
}

func longestDigitRun(s string) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// TestOrdinaryRowsTripNoDetector runs every ordinary row, every value taken
// as text (the strictest plan: text is scanned for every entity), through
// a masker with every detector on, us_ssn included. The harness checks the
// same through a live airlock-full before measuring; this finds a bad
// generator change without a database.
func TestOrdinaryRowsTripNoDetector(t *testing.T) {
	cfg := masking.Config{Detect: []masking.DetectRule{
		{Entity: "all", Strategy: "redact"},
		{Entity: "us_ssn", Strategy: "redact"},
	}}
	if err := cfg.Validate("masking"); err != nil {
		t.Fatal(err)
	}
	src, err := masking.New(cfg, benchConnection, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: benchIdentity})
	cols := make([]protocols.Column, len(ordinaryColumns))
	for i, c := range ordinaryColumns {
		cols[i] = protocols.Column{Name: c, Table: "public." + ordinaryTable, Type: protocols.TypeText}
	}
	rm := m.Plan(cols)
	if rm == nil {
		t.Fatal("no masking plan: the test would prove nothing")
	}
	row := func(id int) [][]byte {
		var out [][]byte
		for _, v := range makeOrdinaryRow(id).text() {
			out = append(out, []byte(v))
		}
		return out
	}
	for id := 1; id <= ordinaryRows; id++ {
		vals := row(id)
		if rm.MaskRow(vals) {
			t.Fatalf("row %d trips a detector: %q", id, vals)
		}
	}
	// The same masker does mask a row with PII in it.
	vals := row(1)
	vals[3] = []byte("Ask jane.doe@example.com or pay with 4111 1111 1111 1111.")
	if !rm.MaskRow(vals) {
		t.Fatal("the masker masks nothing: the test would prove nothing")
	}
}

// text returns the row as PostgreSQL's text output shows it in a session
// whose TimeZone is UTC, in ordinaryColumns order.
func (r ordinaryRow) text() []string {
	return []string{fmt.Sprint(r.ID), r.SKU, r.Title, r.Description,
		fmt.Sprintf("%d.%02d", r.PriceCents/100, r.PriceCents%100), fmt.Sprint(r.Quantity), r.Status,
		r.UpdatedAt.UTC().Format("2006-01-02 15:04:05-07")}
}
