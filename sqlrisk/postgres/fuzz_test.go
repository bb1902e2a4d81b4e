package postgres

import (
	"testing"

	"github.com/airlock-gw/airlock/sqlrisk/internal/ruletest"
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
	f.Fuzz(func(t *testing.T, sql string) { ruletest.CheckAnalyze(t, a.Text, sql, dangerSuffix) })
}
