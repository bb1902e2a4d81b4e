package mysql

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// dangerSuffix starts on a new line so that it ends any # or -- comment;
// when the input parses, no block comment, literal or executable comment is
// open, so the statement is always code.
const dangerSuffix = "\n; DROP TABLE airlock_fuzz"

// FuzzAnalyze checks that the classifier never panics, is deterministic,
// and that appending a dangerous statement to text that parses is always
// seen and never lowers the risk.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "DELETE FROM t WHERE id = ?", "SELECT 1 /*!50000 ; DROP TABLE t */",
		"SELECT LOAD_FILE('/etc/passwd')", "INSTALL PLUGIN x SONAME 'x.so'", `SELECT 'a\'; DROP TABLE t; -- '`,
		"CREATE USER u IDENTIFIED BY 'p'", "SELECT 1 # c", "UPDATE /*+ SET_VAR(foreign_key_checks=OFF) */ t SET a = 1",
		"CREATE PROCEDURE p() BEGIN DELETE FROM t; END", "SELECT 1 /*M!100100 ; DROP TABLE t */",
	} {
		f.Add(s)
	}
	a := New()
	f.Fuzz(func(t *testing.T, sql string) {
		c1 := a.Text(sql)
		c2 := a.Text(sql)
		if fmt.Sprint(c1) != fmt.Sprint(c2) {
			t.Fatalf("not deterministic:\n%v\n%v", c1, c2)
		}
		if c1.Risk != rule.RiskOfMax(c1.Rules) {
			t.Fatalf("risk %s does not match rules %v", c1.Risk, c1.Rules)
		}
		if slices.Contains(c1.Rules, rule.ParseError) {
			return
		}
		c3 := a.Text(sql + dangerSuffix)
		if c3.Risk < c1.Risk {
			t.Fatalf("appending a DROP lowered the risk from %s to %s\n%q", c1.Risk, c3.Risk, sql)
		}
		if !slices.Contains(c3.Rules, rule.SchemaDrop) && !slices.Contains(c3.Rules, rule.ParseError) {
			t.Fatalf("appended DROP not seen: %v\n%q", c3.Rules, sql)
		}
	})
}

var seed = flag.Bool("seed", false, "write the table tests' inputs to testdata/fuzz/FuzzAnalyze")

// writeSeed adds sql to the committed seed corpus when run with -seed.
func writeSeed(t *testing.T, sql string) {
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
