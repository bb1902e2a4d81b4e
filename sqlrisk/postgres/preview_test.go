package postgres

import (
	"strings"
	"testing"
)

func TestPreviewTargetsCountQuery(t *testing.T) {
	for _, tc := range []struct {
		name, sql   string
		kind, count string
		note        string
		rows        int64
	}{
		{"delete with a predicate", "DELETE FROM orders WHERE created < now() - interval '1 year'", "delete",
			"SELECT count(*) FROM orders WHERE created < (now() - '1 year'::interval)", "", -1},
		{"delete everything", "delete from public.t", "delete", "SELECT count(*) FROM public.t", "", -1},
		{"delete only, aliased, using", "DELETE FROM ONLY t AS x USING u WHERE x.id = u.id AND u.gone", "delete",
			"SELECT count(*) FROM ONLY t x WHERE EXISTS (SELECT 1 FROM u WHERE x.id = u.id AND u.gone)", "", -1},
		{"update keeps the predicate, not the SET", "UPDATE accounts SET balance = 0 WHERE region = 'eu' RETURNING id", "update",
			"SELECT count(*) FROM accounts WHERE region = 'eu'", "", -1},
		{"update from counts each target row once", `UPDATE "Big"."T" t SET a = s.a FROM s WHERE t.id = s.id`, "update",
			`SELECT count(*) FROM "Big"."T" t WHERE EXISTS (SELECT 1 FROM s WHERE t.id = s.id)`, "", -1},
		{"read-only WITH is kept", "WITH old AS (SELECT id FROM t WHERE a < 3) DELETE FROM t WHERE id IN (SELECT id FROM old)", "delete",
			"WITH old AS (SELECT id FROM t WHERE a < 3) SELECT count(*) FROM t WHERE id IN (SELECT id FROM old)", "", -1},
		{"data-modifying WITH is not counted", "WITH d AS (DELETE FROM a RETURNING id) DELETE FROM b WHERE id IN (SELECT id FROM d)", "delete",
			"", "WITH modifies data", -1},
		{"cursor", "DELETE FROM t WHERE CURRENT OF c", "delete", "", "CURRENT OF", -1},
		{"insert select", "INSERT INTO archive SELECT * FROM orders WHERE done", "insert",
			"SELECT count(*) FROM (SELECT * FROM orders WHERE done) airlock_preview", "", -1},
		{"insert select on conflict", "INSERT INTO t (id) SELECT id FROM s ON CONFLICT DO NOTHING", "insert",
			"SELECT count(*) FROM (SELECT id FROM s) airlock_preview", "ON CONFLICT", -1},
		{"insert values", "INSERT INTO t VALUES (1), (2), (DEFAULT)", "insert", "", "", 3},
		{"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "merge", "", "MERGE", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PreviewTargets(tc.sql)
			if err != nil || len(got) != 1 {
				t.Fatalf("%v, %+v", err, got)
			}
			p := got[0]
			if p.Kind != tc.kind || p.Count != tc.count || !strings.Contains(p.CountNote, tc.note) || p.Rows != tc.rows {
				t.Fatalf("got kind %q count %q note %q rows %d\nwant kind %q count %q note ~%q rows %d", p.Kind, p.Count, p.CountNote, p.Rows,
					tc.kind, tc.count, tc.note, tc.rows)
			}
			if p.Explain != tc.sql {
				t.Errorf("explain %q, want the statement itself", p.Explain)
			}
			if p.Count != "" {
				// The derived query is one plain read.
				if again, err := PreviewTargets(p.Count); err != nil || len(again) != 0 {
					t.Errorf("count query %q is not a plain read: %v %+v", p.Count, err, again)
				}
			}
		})
	}
}

func TestPreviewTargetsStatements(t *testing.T) {
	got, err := PreviewTargets(`SELECT 1; DROP TABLE IF EXISTS a, "S".b CASCADE; TRUNCATE x, y; ALTER TABLE z DROP COLUMN c;
		DROP FUNCTION f(); WITH d AS (DELETE FROM q RETURNING 1) SELECT count(*) FROM d; ALTER TABLE z RENAME TO zz; SET x = 1`)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		stmt             int
		kind, typ, objs  string
		explain, noteHas string
	}{
		{2, "drop", "table", `"a" "S"."b"`, "", ""},
		{3, "truncate", "table", `"x" "y"`, "", ""},
		{4, "alter", "table", `"z"`, "", ""},
		{5, "drop", "function", "", "", "no size"},
		{6, "write", "", "", "WITH d AS (DELETE FROM q RETURNING 1) SELECT count(*) FROM d", ""},
		{7, "alter", "table", `"z"`, "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d targets: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Statement != w.stmt || g.Kind != w.kind || g.ObjectType != w.typ || strings.Join(g.Objects, " ") != w.objs ||
			g.Explain != w.explain || !strings.Contains(g.Note, w.noteHas) {
			t.Errorf("target %d: %+v, want %+v", i, g, w)
		}
	}
	// A statement with parameters cannot be planned.
	got, _ = PreviewTargets("DELETE FROM t WHERE id = $1")
	if len(got) != 1 || got[0].Explain != "" || got[0].Count != "" || !strings.Contains(got[0].Note, "parameters") {
		t.Errorf("parameters: %+v", got)
	}
	if _, err := PreviewTargets("DELETE FROM"); err == nil {
		t.Error("a statement that does not parse")
	}
}

// FuzzPreviewTargets checks that deriving preview targets never panics
// and that every derived count query is one plain read.
func FuzzPreviewTargets(f *testing.F) {
	for _, s := range []string{
		"DELETE FROM t WHERE a = 1", "UPDATE t SET a = 1 FROM u WHERE t.id = u.id", "INSERT INTO t SELECT * FROM s",
		"WITH x AS (SELECT 1) DELETE FROM t USING x", "DROP TABLE a, b; TRUNCATE c", "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		got, err := PreviewTargets(sql)
		if err != nil {
			return
		}
		for _, p := range got {
			if p.Count == "" {
				continue
			}
			if again, err := PreviewTargets(p.Count); err != nil || len(again) != 0 {
				t.Fatalf("count query %q of %q is not a plain read: %v %+v", p.Count, sql, err, again)
			}
		}
	})
}
