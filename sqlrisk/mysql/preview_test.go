package mysql

import (
	"fmt"
	"strings"
	"testing"
)

func TestPreviewTargetsWrites(t *testing.T) {
	for _, tc := range []struct {
		name, sql       string
		kind, tables    string
		explain, count  string
		note            string // in CountNote, Note or Caution
		limit, rows     int64
		multi           bool
		unresolved, src string
	}{
		{name: "delete with a predicate", sql: "DELETE FROM orders WHERE created < NOW() - INTERVAL 1 YEAR", kind: "delete", tables: "orders",
			explain: "SELECT 1 FROM `orders` WHERE `created`<DATE_SUB(NOW(), INTERVAL 1 YEAR)",
			count:   "SELECT COUNT(*) FROM `orders` WHERE `created`<DATE_SUB(NOW(), INTERVAL 1 YEAR)", limit: -1, rows: -1},
		{name: "delete everything, qualified", sql: "delete from shop.t", kind: "delete", tables: "shop.t",
			explain: "SELECT 1 FROM `shop`.`t`", count: "SELECT COUNT(*) FROM `shop`.`t`", limit: -1, rows: -1},
		{name: "delete with modifiers, partition, order and limit", sql: "DELETE LOW_PRIORITY QUICK IGNORE FROM t PARTITION (p1) WHERE a = 'x' ORDER BY id LIMIT 10",
			kind: "delete", tables: "t", explain: "SELECT 1 FROM `t` PARTITION(`p1`) WHERE `a`='x'",
			count: "SELECT COUNT(*) FROM (SELECT 1 FROM `t` PARTITION(`p1`) WHERE `a`='x' LIMIT 10) AS `airlock_preview`", limit: 10, rows: -1},
		{name: "update keeps the predicate and the index hint, not the SET", sql: "UPDATE accounts USE INDEX (region) SET balance = 0 WHERE region = 'eu'",
			kind: "update", tables: "accounts", explain: "SELECT 1 FROM `accounts` USE INDEX (`region`) WHERE `region`='eu'",
			count: "SELECT COUNT(*) FROM `accounts` USE INDEX (`region`) WHERE `region`='eu'", limit: -1, rows: -1},
		{name: "update with an alias", sql: "UPDATE items AS i SET i.price = 0 WHERE i.owner IN (SELECT id FROM gone)", kind: "update", tables: "items",
			explain: "SELECT 1 FROM `items` AS `i` WHERE `i`.`owner` IN (SELECT `id` FROM `gone`)",
			count:   "SELECT COUNT(*) FROM `items` AS `i` WHERE `i`.`owner` IN (SELECT `id` FROM `gone`)", limit: -1, rows: -1},
		{name: "read-only WITH is kept", sql: "WITH old AS (SELECT id FROM t WHERE a < 3) DELETE FROM t WHERE id IN (SELECT id FROM old)",
			kind: "delete", tables: "t", explain: "WITH `old` AS (SELECT `id` FROM `t` WHERE `a`<3) SELECT 1 FROM `t` WHERE `id` IN (SELECT `id` FROM `old`)",
			count: "WITH `old` AS (SELECT `id` FROM `t` WHERE `a`<3) SELECT COUNT(*) FROM `t` WHERE `id` IN (SELECT `id` FROM `old`)", limit: -1, rows: -1},
		{name: "executable comments are code", sql: "DELETE FROM t WHERE id = 1 /*!50000 OR 1 = 1 */ /*M!100000 OR 2 = 2 */", kind: "delete", tables: "t",
			explain: "SELECT 1 FROM `t` WHERE `id`=1 OR 1=1 OR 2=2", count: "SELECT COUNT(*) FROM `t` WHERE `id`=1 OR 1=1 OR 2=2", limit: -1, rows: -1},
		{name: "strings are escaped for the server", sql: `DELETE FROM t WHERE a = 'it''s' AND b = 'c:\\dir' AND c = _binary'x'`, kind: "delete", tables: "t",
			explain: "SELECT 1 FROM `t` WHERE `a`='it''s' AND `b`='c:\\\\dir' AND `c`=_BINARY'x'",
			count:   "SELECT COUNT(*) FROM `t` WHERE `a`='it''s' AND `b`='c:\\\\dir' AND `c`=_BINARY'x'", limit: -1, rows: -1,
			note: "sql_mode NO_BACKSLASH_ESCAPES"},
		{name: "double quotes read differently under ANSI_QUOTES", sql: `UPDATE t SET a = 1 WHERE "b" = 'b'`, kind: "update", tables: "t",
			explain: "SELECT 1 FROM `t` WHERE 'b'='b'", count: "SELECT COUNT(*) FROM `t` WHERE 'b'='b'", limit: -1, rows: -1, note: "ANSI_QUOTES"},
		{name: "user variables", sql: "DELETE FROM t WHERE id = @id", kind: "delete", tables: "t",
			explain: "SELECT 1 FROM `t` WHERE `id`=@`id`", count: "SELECT COUNT(*) FROM `t` WHERE `id`=@`id`", limit: -1, rows: -1, note: "user variables"},
		{name: "parameters", sql: "UPDATE t SET a = ? WHERE id = ?", kind: "update", tables: "t", limit: -1, rows: -1, note: "parameters"},
		{name: "multi-table delete", sql: "DELETE a, b.* FROM t AS a JOIN u b ON a.id = b.tid WHERE b.gone", kind: "delete", tables: "t u",
			explain: "SELECT 1 FROM `t` AS `a` JOIN `u` AS `b` ON `a`.`id`=`b`.`tid` WHERE `b`.`gone`", limit: -1, rows: -1, multi: true, src: "`a` `b`"},
		{name: "multi-table delete with USING", sql: "DELETE FROM a USING t AS a, u WHERE a.id = u.id", kind: "delete", tables: "t",
			explain: "SELECT 1 FROM (`t` AS `a`) JOIN `u` WHERE `a`.`id`=`u`.`id`", limit: -1, rows: -1, multi: true, src: "`a` `u`"},
		{name: "multi-table syntax on one table", sql: "DELETE t FROM t WHERE a = 1", kind: "delete", tables: "t",
			explain: "SELECT 1 FROM `t` WHERE `a`=1", count: "SELECT COUNT(*) FROM `t` WHERE `a`=1", limit: -1, rows: -1},
		{name: "multi-table delete naming no table", sql: "DELETE x FROM t JOIN u ON t.id = u.id", kind: "delete",
			explain: "SELECT 1 FROM `t` JOIN `u` ON `t`.`id`=`u`.`id`", limit: -1, rows: -1, multi: true, note: "x names no table", src: "`t` `u`"},
		{name: "multi-table update", sql: "UPDATE t1 JOIN s.t2 ON t1.id = t2.id SET t1.a = t2.a, s.t2.b = 1, c = 3 WHERE t2.c > 0", kind: "update",
			tables: "t1 s.t2", explain: "SELECT 1 FROM `t1` JOIN `s`.`t2` ON `t1`.`id`=`t2`.`id` WHERE `t2`.`c`>0", limit: -1, rows: -1,
			multi: true, unresolved: "c", src: "`t1` `s`.`t2`"},
		{name: "update joined to a derived table", sql: "UPDATE t JOIN (SELECT k, MAX(v) m FROM s GROUP BY k) d ON d.k = t.k SET t.v = d.m", kind: "update",
			tables: "t", explain: "SELECT 1 FROM `t` JOIN (SELECT `k`,MAX(`v`) AS `m` FROM `s` GROUP BY `k`) AS `d` ON `d`.`k`=`t`.`k`", limit: -1, rows: -1,
			multi: true, src: "`t`"},
		{name: "insert select", sql: "INSERT INTO archive SELECT * FROM orders WHERE done", kind: "insert", tables: "archive",
			explain: "SELECT 1 FROM (SELECT 1 FROM `orders` WHERE `done`) AS `airlock_preview`",
			count:   "SELECT COUNT(*) FROM (SELECT 1 FROM `orders` WHERE `done`) AS `airlock_preview`", limit: -1, rows: -1},
		{name: "insert select with same-named columns", sql: "INSERT INTO pairs (a, b) SELECT x.id, y.id AS yid FROM x JOIN y ON x.k = y.k", kind: "insert",
			tables: "pairs", explain: "SELECT 1 FROM (SELECT `x`.`id` AS `airlock_1`,`y`.`id` AS `yid` FROM `x` JOIN `y` ON `x`.`k`=`y`.`k`) AS `airlock_preview`",
			count: "SELECT COUNT(*) FROM (SELECT `x`.`id` AS `airlock_1`,`y`.`id` AS `yid` FROM `x` JOIN `y` ON `x`.`k`=`y`.`k`) AS `airlock_preview`", limit: -1, rows: -1},
		{name: "insert select distinct * keeps its columns", sql: "INSERT INTO t SELECT DISTINCT * FROM s", kind: "insert", tables: "t",
			explain: "SELECT 1 FROM (SELECT DISTINCT * FROM `s`) AS `airlock_preview`", count: "SELECT COUNT(*) FROM (SELECT DISTINCT * FROM `s`) AS `airlock_preview`",
			limit: -1, rows: -1},
		{name: "insert select on duplicate key", sql: "INSERT INTO t (id) SELECT id FROM s ON DUPLICATE KEY UPDATE n = n + 1", kind: "insert", tables: "t",
			explain: "SELECT 1 FROM (SELECT `id` AS `airlock_1` FROM `s`) AS `airlock_preview`",
			count:   "SELECT COUNT(*) FROM (SELECT `id` AS `airlock_1` FROM `s`) AS `airlock_preview`", note: "ON DUPLICATE KEY UPDATE", limit: -1, rows: -1},
		{name: "replace select union", sql: "REPLACE INTO t SELECT a FROM s UNION ALL SELECT b FROM u", kind: "replace", tables: "t",
			explain: "SELECT 1 FROM (SELECT `a` AS `airlock_1` FROM `s` UNION ALL SELECT `b` FROM `u`) AS `airlock_preview`",
			count:   "SELECT COUNT(*) FROM (SELECT `a` AS `airlock_1` FROM `s` UNION ALL SELECT `b` FROM `u`) AS `airlock_preview`", note: "REPLACE first deletes",
			limit: -1, rows: -1},
		{name: "insert values", sql: "INSERT INTO t VALUES (1), (2), (DEFAULT)", kind: "insert", tables: "t", limit: -1, rows: 3},
		{name: "insert values with parameters", sql: "INSERT IGNORE INTO t (a, b) VALUES (?, ?), (?, ?)", kind: "insert", tables: "t", note: "IGNORE", limit: -1, rows: 2},
		{name: "insert set", sql: "INSERT INTO t SET a = 1, b = 2", kind: "insert", tables: "t", limit: -1, rows: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PreviewTargets(tc.sql)
			if err != nil || len(got) != 1 {
				t.Fatalf("%v, %+v", err, got)
			}
			p := got[0]
			var tables, srcs []string
			for _, tb := range p.Tables {
				tables = append(tables, strings.TrimPrefix(tb.Schema+"."+tb.Name, "."))
			}
			if p.MultiTable() {
				for _, s := range p.Sources {
					srcs = append(srcs, s.Ref)
				}
			}
			notes := p.CountNote + "|" + p.Note + "|" + p.Caution
			if p.Kind != tc.kind || strings.Join(tables, " ") != tc.tables || p.Explain != tc.explain || p.Count != tc.count ||
				p.Limit != tc.limit || p.Rows != tc.rows || p.MultiTable() != tc.multi || strings.Join(p.Unresolved, " ") != tc.unresolved ||
				strings.Join(srcs, " ") != tc.src || !strings.Contains(notes, tc.note) {
				t.Fatalf("got kind %q tables %q explain %q\n count %q limit %d rows %d multi %v unresolved %v sources %v notes %q",
					p.Kind, tables, p.Explain, p.Count, p.Limit, p.Rows, p.MultiTable(), p.Unresolved, srcs, notes)
			}
			checkDerived(t, &p)
		})
	}
}

// checkDerived checks that every query derived for p is a plain read that
// has nothing to preview itself.
func checkDerived(t *testing.T, p *PreviewTarget) {
	t.Helper()
	derived := []string{p.Explain, p.Count}
	for _, tb := range p.Tables {
		if q, err := p.CountTarget(tb, []string{"id", "we`ird"}); err == nil {
			derived = append(derived, q)
		} else if p.MultiTable() {
			t.Errorf("count of %v: %v", tb, err)
		}
	}
	for _, q := range derived {
		if q == "" {
			continue
		}
		if err := CheckRead(q); err != nil {
			t.Errorf("derived %q: %v", q, err)
		}
		if again, err := PreviewTargets(q); err != nil || len(again) != 0 {
			t.Errorf("derived %q is not a plain read: %v %+v", q, err, again)
		}
	}
}

func TestCountTarget(t *testing.T) {
	got, err := PreviewTargets("DELETE a FROM t AS a JOIN u ON a.id = u.tid WHERE u.gone OR u.old")
	if err != nil || len(got) != 1 {
		t.Fatal(err)
	}
	p := got[0]
	q, err := p.CountTarget(p.Tables[0], []string{"id"})
	want := "SELECT COUNT(*) FROM `t` AS `airlock_target` WHERE EXISTS (SELECT 1 FROM `t` AS `a` JOIN `u` ON `a`.`id`=`u`.`tid` " +
		"WHERE (`u`.`gone` OR `u`.`old`) AND `a`.`id`<=>`airlock_target`.`id`)"
	if err != nil || q != want {
		t.Fatalf("got %q (%v)\nwant %q", q, err, want)
	}
	// The FROM clause already uses the target alias: another is chosen.
	got, _ = PreviewTargets("DELETE airlock_target FROM s.t AS airlock_target JOIN u ON airlock_target.id = u.id")
	q, err = got[0].CountTarget(got[0].Tables[0], []string{"k1", "k2"})
	want = "SELECT COUNT(*) FROM `s`.`t` AS `airlock_target2` WHERE EXISTS (SELECT 1 FROM `s`.`t` AS `airlock_target` JOIN `u` " +
		"ON `airlock_target`.`id`=`u`.`id` WHERE `airlock_target`.`k1`<=>`airlock_target2`.`k1` AND `airlock_target`.`k2`<=>`airlock_target2`.`k2`)"
	if err != nil || q != want {
		t.Fatalf("got %q (%v)\nwant %q", q, err, want)
	}
	if _, err := got[0].CountTarget(got[0].Tables[0], nil); err == nil {
		t.Error("a count without a key")
	}
	single, _ := PreviewTargets("DELETE FROM t")
	if _, err := single[0].CountTarget(single[0].Tables[0], []string{"id"}); err == nil {
		t.Error("a per-target count of a single-table write")
	}
}

func TestPreviewTargetsStatements(t *testing.T) {
	got, err := PreviewTargets("SELECT 1; DROP TABLE IF EXISTS a, `S`.b; TRUNCATE x; ALTER TABLE z DROP COLUMN c; " +
		"DROP VIEW v; RENAME TABLE p TO q, s.r TO s.r2; DROP DATABASE d; DROP TEMPORARY TABLE tmp; SET @x = 1; CALL p(); " +
		"CREATE TABLE n (a INT); DROP PROCEDURE p")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2 drop table a S.b", "3 truncate table x", "4 alter table z", "5 drop view v", "6 alter table p s.r", "7 drop database d"}
	var have []string
	for _, g := range got {
		s := fmt.Sprintf("%d %s %s", g.Statement, g.Kind, g.ObjectType)
		for _, tb := range g.Tables {
			s += " " + strings.TrimPrefix(tb.Schema+"."+tb.Name, ".")
		}
		have = append(have, s)
		if g.Explain != "" || g.Count != "" {
			t.Errorf("a DDL target with queries: %+v", g)
		}
	}
	if strings.Join(have, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}

	// A statement the parser rejects is named by its first word; the
	// others around it still have targets.
	got, err = PreviewTargets("DELETE FROM t RETURNING id; UPDATE t SET a = 1; SELECT 2")
	if err != nil || len(got) != 2 || got[0].Kind != "delete" || !strings.Contains(got[0].Note, "could not be parsed") ||
		got[1].Statement != 2 || got[1].Count != "SELECT COUNT(*) FROM `t`" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, sql := range []string{"SELECT * FROM t", "SHOW TABLES", "SET NAMES utf8mb4", "BEGIN", ""} {
		if got, err := PreviewTargets(sql); err != nil || len(got) != 0 {
			t.Errorf("%q: %v %+v", sql, err, got)
		}
	}
	if _, err := PreviewTargets("DELETE FROM t WHERE a = 'open"); err == nil {
		t.Error("a text that ends inside a literal")
	}
}

// TestCheckRead: what a preview would run must be one plain read.
func TestCheckRead(t *testing.T) {
	for _, q := range []string{
		"SELECT COUNT(*) FROM `t` WHERE `a`=1",
		"SELECT 1 FROM (SELECT `a` FROM `s` UNION SELECT `b` FROM `u`) AS `x`",
		"WITH `c` AS (SELECT 1) SELECT COUNT(*) FROM `c`",
	} {
		if err := CheckRead(q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	for _, q := range []string{
		"DELETE FROM t",
		"UPDATE t SET a = 1",
		"INSERT INTO t SELECT 1",
		"SELECT 1; DROP TABLE t",
		"SELECT 1 /*!50000 ; DROP TABLE t */",
		"SELECT 1 /*M!100000 , (SELECT 1) */",
		"SELECT 1 INTO OUTFILE '/tmp/x'",
		"SELECT 1 INTO @x",
		"SELECT * FROM t FOR UPDATE",
		"SELECT * FROM t LOCK IN SHARE MODE",
		"SELECT LOAD_FILE('/etc/passwd')",
		"SELECT sys_exec('id')",
		"SELECT * FROM mysql.user",
		"DROP TABLE t",
		"SELECT 'unterminated",
		"",
	} {
		if err := CheckRead(q); err == nil {
			t.Errorf("%q passes as a plain read", q)
		}
	}
}

// TestPreviewTargetsDeriveNoWrite: whatever a write's text holds, what is
// derived from it is one plain read, or nothing.
func TestPreviewTargetsDeriveNoWrite(t *testing.T) {
	for _, tc := range []struct {
		sql     string
		refused bool // no read is derived
	}{
		{"DELETE FROM t WHERE a = '); DROP TABLE t; --'", false},
		{"DELETE FROM t WHERE a = 1 /*!50000 ; DROP TABLE t */", false},
		{"UPDATE t SET a = 1 WHERE b = `x``); DROP TABLE t; --`", false},
		{"DELETE FROM `a``b` WHERE `c``d` = 1", false},
		{"INSERT INTO t SELECT * FROM s INTO OUTFILE '/tmp/x'", true},
		{"INSERT INTO t SELECT * FROM s FOR UPDATE", true},
		{"DELETE FROM t WHERE id IN (SELECT id FROM s FOR UPDATE)", true},
		{"UPDATE t JOIN (SELECT * FROM s LOCK IN SHARE MODE) d ON d.id = t.id SET t.a = 1", true},
		{"DELETE FROM t WHERE a = LOAD_FILE('/etc/passwd')", true},
	} {
		got, err := PreviewTargets(tc.sql)
		if err != nil || len(got) == 0 {
			t.Fatalf("%q: %v", tc.sql, err)
		}
		p := &got[0]
		checkDerived(t, p)
		if refused := p.Explain == "" && p.Count == "" && strings.Contains(p.Note, "no read could be derived"); refused != tc.refused {
			t.Errorf("%q: explain %q count %q note %q", tc.sql, p.Explain, p.Count, p.Note)
		}
	}
}

// FuzzPreviewTargets checks that deriving preview targets never panics and
// that every query derived is one plain read with nothing to preview.
func FuzzPreviewTargets(f *testing.F) {
	for _, s := range []string{
		"DELETE FROM t WHERE a = 1", "UPDATE t SET a = 1 WHERE b IN (SELECT c FROM u) ORDER BY id LIMIT 5",
		"DELETE a, b FROM t a JOIN u b ON a.id = b.id WHERE b.x", "UPDATE t1, t2 SET t1.a = t2.b, c = 1 WHERE t1.id = t2.id",
		"INSERT INTO t SELECT x.id, y.id FROM x JOIN y", "REPLACE INTO t SELECT * FROM s UNION SELECT * FROM u",
		"WITH c AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM c)", "DROP TABLE a, b; TRUNCATE c; RENAME TABLE d TO e",
		`DELETE FROM t WHERE "a" = 'b\'c'`, "DELETE FROM t WHERE a = 1 /*M!100000 OR 1 = 1 */",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		got, err := PreviewTargets(sql)
		if err != nil {
			return
		}
		for i := range got {
			p := &got[i]
			queries := []string{p.Explain, p.Count}
			for _, tb := range p.Tables {
				if q, err := p.CountTarget(tb, []string{"id", "`k"}); err == nil {
					queries = append(queries, q)
				}
			}
			for _, q := range queries {
				if q == "" {
					continue
				}
				if err := CheckRead(q); err != nil {
					t.Fatalf("derived %q of %q: %v", q, sql, err)
				}
				if again, err := PreviewTargets(q); err != nil || len(again) != 0 {
					t.Fatalf("derived %q of %q is not a plain read: %v %+v", q, sql, err, again)
				}
			}
		}
	})
}
