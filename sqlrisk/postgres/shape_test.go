package postgres

import (
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

func TestShape(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 52613;", "SELECT abalance FROM pgbench_accounts WHERE aid = ?;", true},
		{"UPDATE t SET v = v + -3045 WHERE id = 7", "UPDATE t SET v = v + -? WHERE id = ?", true},
		{"SELECT 1.5e10, .5, t1.c2, 2147483647, 2147483648 FROM t1", "SELECT #, #, t1.c2, ?, # FROM t1", true},
		{"SELECT '42', \"col9\" /* 7 */ -- 8\n FROM x WHERE y = $1", "", false}, // no numeric literal left
		{"SELECT 5 /* a /* nested 6 */ comment */", "SELECT ? /* a /* nested 6 */ comment */", true},
		{"SELECT 'it''s 5', 6", "SELECT 'it''s 5', ?", true},
		{`SELECT 'a\'', 1`, "", false},
		{"SELECT E'x', 1", "", false},
		{"SELECT U&'x', 1", "", false},
		{"SELECT $$x$$, 1", "", false},
		{"SELECT $tag$x$tag$, 1", "", false},
		{"SELECT 0x1F", "", false},
		{"SELECT 1_000", "", false},
		{"SELECT 12abc", "", false},
		{"SELECT 'unterminated, 1", "", false},
		{"SELECT 1 /* open", "", false},
		{"SELECT 'ü', 1", "SELECT 'ü', ?", true},
		{"SELECT ü, 1", "", false},
	} {
		got, ok := Shape(tc.in)
		got = strings.NewReplacer("\x00", "?", "\x01", "#").Replace(got)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("Shape(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestShapeCacheableOnlyWhenLiteralsDoNotMatter pins which results may be
// shared by texts of the same shape.
func TestShapeCacheableOnlyWhenLiteralsDoNotMatter(t *testing.T) {
	a := New()
	for _, tc := range []struct {
		sql  string
		same bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 5", true},
		{"UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 6", true},
		{"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)", true},
		{"DELETE FROM t WHERE id IN (1, 2, 3)", true},
		{"DELETE FROM t WHERE 1 = 1", false},
		{"DELETE FROM t WHERE id = 5 OR 1 = 2", false},
		{"UPDATE t SET v = 1 WHERE id + 1 = id + 2", false},
		{"DELETE FROM t WHERE id = abs(-5)", false},
		{"SET statement_timeout = 5", false},
		{"EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 5", false},
		{"ALTER ROLE x PASSWORD 'secret1'", false},
	} {
		c, same := a.AnalyzeShaped(&protocols.Command{Protocol: protocols.Postgres, Text: tc.sql})
		if same != tc.same {
			t.Errorf("%s: shape-cacheable = %v, want %v (rules %v)", tc.sql, same, tc.same, c.Rules)
		}
	}
}

// FuzzShapeSafety checks the shape cache's promise on arbitrary text: when
// two texts share a shape and the first's result is shape-cacheable, the
// second classifies the same way.
func FuzzShapeSafety(f *testing.F) {
	f.Add("DELETE FROM t WHERE id = 5", "7")
	f.Add("UPDATE t SET v = 1 WHERE id = 2 OR 3 = 3", "9")
	f.Add("SELECT * FROM t WHERE a = 1 AND b = 2.5", "0")
	a := New()
	f.Fuzz(func(t *testing.T, text, digit string) {
		if len(digit) != 1 || digit[0] < '0' || digit[0] > '9' {
			return
		}
		shape, ok := Shape(text)
		if !ok {
			return
		}
		c1, same := a.AnalyzeShaped(&protocols.Command{Protocol: protocols.Postgres, Text: text})
		if !same {
			return
		}
		// Rewrite every numeric literal to the digit: same shape.
		var b strings.Builder
		for i := 0; i < len(shape); i++ {
			if shape[i] == 0 {
				b.WriteString(digit)
			} else if shape[i] == 1 {
				b.WriteString(digit + ".5")
			} else {
				b.WriteByte(shape[i])
			}
		}
		other := b.String()
		if s2, ok := Shape(other); !ok || s2 != shape {
			return // the rewrite changed the shape
		}
		c2 := a.Text(other)
		if c1.Risk != c2.Risk || !slices.Equal(c1.Rules, c2.Rules) {
			t.Fatalf("same shape, different judgement:\n%q -> %s %v\n%q -> %s %v", text, c1.Risk, c1.Rules, other, c2.Risk, c2.Rules)
		}
	})
}
