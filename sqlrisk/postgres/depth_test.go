package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// TestDepthGuard feeds chains that would overflow pg_query's C stack (and
// crash the process) and flat statements of the same size that must still
// be classified normally.
func TestDepthGuard(t *testing.T) {
	const n = 100000
	deep := map[string]string{
		"operator chain": "SELECT " + strings.Repeat("a + ", n) + "1",
		"cast chain":     "SELECT 1" + strings.Repeat("::int", n),
		"union chain":    strings.Repeat("SELECT 1 UNION ", n) + "SELECT 1",
		"concat chain":   "SELECT " + strings.Repeat("'x' || ", n) + "'y'",
		"in a DO body":   "DO $$ BEGIN PERFORM " + strings.Repeat("a + ", n) + "1; END $$",
	}
	a := New()
	for name, sql := range deep {
		t.Run(name, func(t *testing.T) {
			c := a.Text(sql)
			if c.Risk < protocols.RiskHigh || !strings.Contains(fmt.Sprint(c.Rules), rule.ParseError) {
				t.Errorf("got %s %v, want parse.error", c.Risk, c.Rules)
			}
		})
	}
	var in, or, vals strings.Builder
	in.WriteString("SELECT * FROM t WHERE id IN (")
	or.WriteString("SELECT * FROM t WHERE ")
	vals.WriteString("INSERT INTO t VALUES ")
	for i := range 20000 {
		if i > 0 {
			in.WriteString(", ")
			or.WriteString(" OR ")
			vals.WriteString(", ")
		}
		fmt.Fprintf(&in, "%d", i)
		fmt.Fprintf(&or, "(a = %d AND b <> -%d)", i, i)
		fmt.Fprintf(&vals, "(-%d, 'x' || 'y', now() - interval '1 day')", i)
	}
	in.WriteString(")")
	for name, sql := range map[string]string{"long IN list": in.String(), "long OR of ANDs": or.String(), "bulk VALUES": vals.String()} {
		t.Run(name, func(t *testing.T) {
			if tooDeep(sql) {
				t.Fatal("a flat statement was refused as too deep")
			}
			if c := a.Text(sql); c.Risk > protocols.RiskLow {
				t.Errorf("got %s %v", c.Risk, c.Rules)
			}
		})
	}
}
