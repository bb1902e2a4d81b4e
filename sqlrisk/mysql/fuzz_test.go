package mysql

import (
	"testing"

	"github.com/airlock-gw/airlock/sqlrisk/internal/ruletest"
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
	f.Fuzz(func(t *testing.T, sql string) { ruletest.CheckAnalyze(t, a.Text, sql, dangerSuffix) })
}
