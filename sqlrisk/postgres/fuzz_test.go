package postgres

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

// dangerSuffix starts on a new line so that it ends any line comment; when
// the input parses it has no open block comment, literal or dollar quote,
// so the statement is always code.
const dangerSuffix = "\n; DROP TABLE airlock_fuzz"

// FuzzAnalyze checks that the classifier never panics, is deterministic,
// and that appending a dangerous statement to text that parses is always
// seen and never lowers the risk.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "DELETE FROM t WHERE id = $1", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"SELECT pg_read_file('/etc/passwd')", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$",
		"SELECT 'a\\'' ; DROP TABLE users; --'", "CREATE ROLE x PASSWORD 'p'", "SELECT 1 -- c",
		"EXPLAIN ANALYZE DELETE FROM t", "COPY t TO PROGRAM 'id'",
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
