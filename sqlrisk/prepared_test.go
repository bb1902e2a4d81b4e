package sqlrisk

import (
	"slices"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// TestPreparedNames: the classification names the SQL-level prepared
// statements a command creates and runs, wherever EXECUTE hides, so the
// pipeline can hold an approved PREPARE to one run.
func TestPreparedNames(t *testing.T) {
	c := New(Config{})
	for _, tc := range []struct {
		sql                string
		prepares, executes []string
	}{
		{"PREPARE Wipe AS DELETE FROM t", []string{"wipe"}, nil},
		{`PREPARE "Wipe"(int) AS DELETE FROM t WHERE id = $1`, []string{"Wipe"}, nil},
		{"EXECUTE wipe", nil, []string{"wipe"}},
		{"EXECUTE wipe(1); EXECUTE other", nil, []string{"wipe", "other"}},
		{"EXPLAIN ANALYZE EXECUTE wipe", nil, []string{"wipe"}},
		{"CREATE TABLE copy AS EXECUTE wipe", nil, []string{"wipe"}},
		{"PREPARE q AS SELECT 1; EXECUTE q", []string{"q"}, []string{"q"}},
		{"DEALLOCATE wipe", nil, nil},
		{"SELECT 'EXECUTE wipe'", nil, nil},
	} {
		cl := c.Classify(&protocols.Command{Protocol: protocols.Postgres, Text: tc.sql})
		if !slices.Equal(cl.Prepares, tc.prepares) || !slices.Equal(cl.Executes, tc.executes) {
			t.Errorf("%s: prepares %q executes %q, want %q and %q", tc.sql, cl.Prepares, cl.Executes, tc.prepares, tc.executes)
		}
	}
}

// TestPreparedNamesMySQL: the same for MySQL's PREPARE … FROM and
// EXECUTE … USING, whose names are case-insensitive.
func TestPreparedNamesMySQL(t *testing.T) {
	c := New(Config{})
	for _, tc := range []struct {
		sql                string
		prepares, executes []string
	}{
		{"PREPARE Wipe FROM 'DELETE FROM t'", []string{"wipe"}, nil},
		{"PREPARE w FROM @sql", []string{"w"}, nil},
		{"EXECUTE Wipe USING @a", nil, []string{"wipe"}},
		{"PREPARE q FROM 'SELECT 1'; EXECUTE q", []string{"q"}, []string{"q"}},
		{"DEALLOCATE PREPARE wipe", nil, nil},
		{"SELECT 'EXECUTE wipe'", nil, nil},
	} {
		cl := c.Classify(&protocols.Command{Protocol: protocols.MySQL, Text: tc.sql})
		if !slices.Equal(cl.Prepares, tc.prepares) || !slices.Equal(cl.Executes, tc.executes) {
			t.Errorf("%s: prepares %q executes %q, want %q and %q", tc.sql, cl.Prepares, cl.Executes, tc.prepares, tc.executes)
		}
	}
}
