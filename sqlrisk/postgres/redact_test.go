package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

func TestRedaction(t *testing.T) {
	tests := []struct {
		name, sql, want string
	}{
		{"create role", "CREATE ROLE bob LOGIN PASSWORD 'hunter2'", "CREATE ROLE bob LOGIN PASSWORD '***'"},
		{"alter user hash", "ALTER USER bob WITH ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:abc'", "ALTER USER bob WITH ENCRYPTED PASSWORD '***'"},
		{"every literal of the statement", "CREATE USER u PASSWORD 'p' VALID UNTIL '2030-01-01'", "CREATE USER u PASSWORD '***' VALID UNTIL '***'"},
		{"dollar-quoted password", "ALTER ROLE r PASSWORD $q$hunter2$q$", "ALTER ROLE r PASSWORD '***'"},
		{"only that statement", "SELECT 'keep'; ALTER ROLE r PASSWORD 'x'; SELECT 'also kept'", "SELECT 'keep'; ALTER ROLE r PASSWORD '***'; SELECT 'also kept'"},
		{"user mapping", "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'p')", "CREATE USER MAPPING FOR app SERVER s OPTIONS (user '***', password '***')"},
		{"subscription", "CREATE SUBSCRIPTION s CONNECTION 'host=h password=p' PUBLICATION pub", "CREATE SUBSCRIPTION s CONNECTION '***' PUBLICATION pub"},
		{"dblink connection string", "SELECT * FROM dblink('host=h user=u password=secret', 'SELECT 1') AS t(a int)", "SELECT * FROM dblink('***', 'SELECT 1') AS t(a int)"},
		{"uri with password", "SELECT dblink_connect('postgresql://u:secret@h/db')", "SELECT dblink_connect('***')"},
		{"alter system conninfo", "ALTER SYSTEM SET primary_conninfo = 'host=h password=p'", "ALTER SYSTEM SET primary_conninfo = '***'"},
		{"inside a DO body", "DO $$ BEGIN EXECUTE 'CREATE ROLE x PASSWORD ''y'''; END $$", "DO '***'"},
		{"nothing to redact", "SELECT 'password' FROM t", "SELECT 'password' FROM t"},
		{"unparseable: every literal", "CREATE ROLE x PASSWORD 'p' OOPS 'q'", "CREATE ROLE x PASSWORD '***' OOPS '***'"},
		{"unterminated: from the quote on", "ALTER ROLE x PASSWORD 'secret", "ALTER ROLE x PASSWORD '***'"},
	}
	a := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := a.Text(tc.sql).Redacted
			if got != tc.want {
				t.Errorf("redacted = %q, want %q", got, tc.want)
			}
			for _, secret := range []string{"hunter2", "secret", "SCRAM"} {
				if strings.Contains(tc.sql, secret) && strings.Contains(got, secret) {
					t.Errorf("secret %q leaked: %q", secret, got)
				}
			}
		})
	}
}

func TestStatements(t *testing.T) {
	tests := []struct {
		sql, want string
	}{
		{"SELECT * FROM users u JOIN app.orders o ON o.uid = u.id", "[{select [users app.orders]}]"},
		{"DELETE FROM users; DROP TABLE IF EXISTS a.b, c", "[{delete [users]} {drop_table [a.b c]}]"},
		{"WITH x AS (SELECT 1) SELECT * FROM x, y", "[{select [y]}]"},
		{`SELECT * FROM "Weird Name"`, "[{select [Weird Name]}]"},
		{"EXPLAIN ANALYZE UPDATE t SET a = 1 WHERE id = 2", "[{explain [t]}]"},
		{"BEGIN; INSERT INTO t VALUES (1); COMMIT", "[{begin []} {insert [t]} {commit []}]"},
		{"CREATE INDEX i ON t (a)", "[{create_index [t]}]"},
		{"ALTER TABLE t DROP COLUMN a", "[{alter_table [t]}]"},
		{"TRUNCATE a, b", "[{truncate [a b]}]"},
		{"SET ROLE x", "[{set []}]"},
		{"CREATE FOREIGN TABLE f (a int) SERVER s", "[{create_foreign_table [f]}]"},
		{"", "[]"},
	}
	a := New()
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			if got := fmt.Sprint(a.Text(tc.sql).Statements); got != tc.want {
				t.Errorf("statements = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestEscapeStringReading checks the standard_conforming_strings=off reading.
func TestEscapeStringReading(t *testing.T) {
	// Standard reading: one string literal. Escape reading: a string, then
	// DROP TABLE.
	sql := `SELECT 'a\'' ; DROP TABLE users; --'`
	c := New().Text(sql)
	if len(c.Statements) != 1 {
		t.Fatalf("standard reading has %d statements, want 1: %v", len(c.Statements), c.Statements)
	}
	if !strings.Contains(fmt.Sprint(c.Rules), rule.SchemaDrop) {
		t.Errorf("rules = %v, want schema.drop from the escape reading", c.Rules)
	}
	for _, tc := range []struct{ in, want string }{
		{`SELECT 'x\y', 'plain', E'e\'', $$d\$$`, `SELECT E'x\y', E'plain', E'e\'', $$d\$$`},
		{`SELECT n'a\b' -- 'c\'` + "\n", `SELECT E'a\b' -- 'c\'` + "\n"},
		{`SELECT /* 'a /* nested */ \' */ 'b\c'`, `SELECT /* 'a /* nested */ \' */ E'b\c'`},
		{`SELECT $tag$ 'x\ $tag$, "id'\", b'01', U&'d\0061t\'`, `SELECT $tag$ 'x\ $tag$, "id'\", b'01', U&'d\0061t\'`},
		{`SELECT "a\b", 'c\d'`, `SELECT "a\b", E'c\d'`},
	} {
		alt, ok := escapeStringVariant(tc.in)
		if tc.in == tc.want {
			if ok {
				t.Errorf("variant of %q = %q, want none", tc.in, alt)
			}
			continue
		}
		if !ok || alt != tc.want {
			t.Errorf("variant of %q = %q, %v; want %q", tc.in, alt, ok, tc.want)
		}
	}
	// One pass, whatever the number of literals: a bulk insert of paths.
	var bulk strings.Builder
	bulk.WriteString("INSERT INTO files VALUES ")
	for i := range 20000 {
		if i > 0 {
			bulk.WriteString(", ")
		}
		fmt.Fprintf(&bulk, "(%d, 'C:\\dir\\file%d.txt')", i, i)
	}
	if c := New().Text(bulk.String()); c.Risk != low {
		t.Errorf("bulk insert of backslash paths: %s %v", c.Risk, c.Rules)
	}
	if _, ok := escapeStringVariant(`SELECT 'no backslash'`); ok {
		t.Error("a text without backslashes has no other reading")
	}
}
