// Package ruletest holds the checks every SQL dialect's analyzer tests
// share: the fuzz property (deterministic, risk consistent with rules,
// appending a dangerous statement is seen and never lowers the risk) and
// the writer of the committed seed corpus.
package ruletest

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// CheckAnalyze checks one fuzz input against text, a dialect's
// classifier. suffix appends a DROP TABLE that the dialect's lexer always
// reads as code once sql parses (it starts on a new line, ending any line
// comment).
func CheckAnalyze(t *testing.T, text func(string) *protocols.Classification, sql, suffix string) {
	t.Helper()
	c1 := text(sql)
	c2 := text(sql)
	if fmt.Sprint(c1) != fmt.Sprint(c2) {
		t.Fatalf("not deterministic:\n%v\n%v", c1, c2)
	}
	if c1.Risk != rule.RiskOfMax(c1.Rules) {
		t.Fatalf("risk %s does not match rules %v", c1.Risk, c1.Rules)
	}
	if slices.Contains(c1.Rules, rule.ParseError) {
		return
	}
	c3 := text(sql + suffix)
	if c3.Risk < c1.Risk {
		t.Fatalf("appending a DROP lowered the risk from %s to %s\n%q", c1.Risk, c3.Risk, sql)
	}
	if !slices.Contains(c3.Rules, rule.SchemaDrop) && !slices.Contains(c3.Rules, rule.ParseError) {
		t.Fatalf("appended DROP not seen: %v\n%q", c3.Rules, sql)
	}
}

var seed = flag.Bool("seed", false, "write the table tests' inputs to testdata/fuzz/FuzzAnalyze")

// WriteSeed adds sql to the package's committed FuzzAnalyze seed corpus
// when the tests run with -seed.
func WriteSeed(t *testing.T, sql string) {
	if !*seed {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzAnalyze")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%x", sha256.Sum256([]byte(sql)))[:16]
	data := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", sql)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
