package mysql

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/internal/ruletest"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

type riskCase struct {
	name string
	sql  string
	risk protocols.Risk
	rule string
}

const (
	none     = protocols.RiskNone
	low      = protocols.RiskLow
	medium   = protocols.RiskMedium
	high     = protocols.RiskHigh
	critical = protocols.RiskCritical
)

func runCases(t *testing.T, cases []riskCase) {
	t.Helper()
	a := New()
	for _, tc := range cases {
		ruletest.WriteSeed(t, tc.sql)
		t.Run(tc.name, func(t *testing.T) {
			c := a.Text(tc.sql)
			if c.Risk != tc.risk {
				t.Errorf("risk = %s, want %s (rules %v)\n%s", c.Risk, tc.risk, c.Rules, tc.sql)
			}
			if tc.rule != "" && !slices.Contains(c.Rules, tc.rule) {
				t.Errorf("rules = %v, want %s\n%s", c.Rules, tc.rule, tc.sql)
			}
			if tc.rule == "" && tc.risk == none && len(c.Rules) != 0 {
				t.Errorf("rules = %v, want none\n%s", c.Rules, tc.sql)
			}
		})
	}
}

func TestDangerous(t *testing.T) {
	runCases(t, []riskCase{
		// Schema destruction.
		{"drop table", "DROP TABLE users", high, rule.SchemaDrop},
		{"obfuscated", "dRoP/**/TaBlE `users`", high, rule.SchemaDrop},
		{"hash comment then drop", "SELECT 1 # comment\n; DROP TABLE users", high, rule.SchemaDrop},
		{"drop database", "DROP DATABASE prod", high, rule.SchemaDrop},
		{"drop view", "DROP VIEW v", high, rule.SchemaDrop},
		{"drop index", "DROP INDEX i ON t", high, rule.SchemaDrop},
		{"drop procedure", "DROP PROCEDURE p", high, rule.SchemaDrop},
		{"truncate", "TRUNCATE TABLE users", high, rule.SchemaTruncate},
		{"truncate partition", "ALTER TABLE t TRUNCATE PARTITION p0", high, rule.SchemaTruncate},
		{"drop column", "ALTER TABLE users DROP COLUMN email", high, rule.SchemaAlterDrop},
		{"drop primary key", "ALTER TABLE users DROP PRIMARY KEY", high, rule.SchemaAlterDrop},
		{"drop foreign key", "ALTER TABLE users DROP FOREIGN KEY fk", high, rule.SchemaAlterDrop},
		{"rename table", "RENAME TABLE users TO old_users", high, rule.SchemaRename},
		{"alter rename", "ALTER TABLE users RENAME TO old_users", high, rule.SchemaRename},
		{"version comment", "SELECT 1 /*!50000 ; DROP TABLE users */", high, rule.SchemaDrop},
		{"version comment six digits", "/*!800001 DROP TABLE users */", high, rule.SchemaDrop},
		{"bare version comment", "/*! DROP TABLE users */", high, rule.SchemaDrop},
		{"mariadb comment", "SELECT 1 /*M!100100 ; DROP TABLE users */", high, rule.SchemaDrop},
		{"mariadb comment inside expression", "SELECT 1 /*M! + (SELECT LOAD_FILE('/etc/passwd')) */", critical, rule.ReachFile},

		// Unbounded writes.
		{"delete all", "DELETE FROM users", high, rule.WriteUnbounded},
		{"where 1", "DELETE FROM users WHERE 1", high, rule.WriteUnbounded},
		{"where 1=1", "delete from users where 1=1", high, rule.WriteUnbounded},
		{"where case-insensitive strings", "DELETE FROM users WHERE 'a' = 'A'", high, rule.WriteUnbounded},
		{"where numeric string", "UPDATE users SET admin = 1 WHERE '1abc'", high, rule.WriteUnbounded},
		{"where true", "UPDATE users SET admin = 1 WHERE TRUE", high, rule.WriteUnbounded},
		{"where not false", "UPDATE users SET admin = 1 WHERE NOT FALSE", high, rule.WriteUnbounded},
		{"where !0", "UPDATE users SET admin = 1 WHERE !0", high, rule.WriteUnbounded},
		{"where id = id", "DELETE FROM users WHERE id = id", high, rule.WriteUnbounded},
		{"same function both sides", "DELETE FROM users WHERE lower(email) = LOWER(email)", high, rule.WriteUnbounded},
		{"same arithmetic both sides", "DELETE FROM users WHERE id + 0 = id + 0", high, rule.WriteUnbounded},
		{"xa with a sub-query stays an error", "XA START (SELECT LOAD_FILE('/etc/passwd'))", critical, rule.ReachFile},
		{"null-safe equal to itself", "DELETE FROM users WHERE id <=> id", high, rule.WriteUnbounded},
		{"or tautology", "DELETE FROM users WHERE id = 5 OR 2 > 1", high, rule.WriteUnbounded},
		{"like percent", "DELETE FROM users WHERE name LIKE '%%'", high, rule.WriteUnbounded},
		{"limit does not bound", "DELETE FROM users LIMIT 100", high, rule.WriteUnbounded},
		{"order by limit does not bound", "UPDATE users SET x = 1 ORDER BY id LIMIT 10", high, rule.WriteUnbounded},
		{"multi-table without condition", "DELETE a, b FROM a, b", high, rule.WriteUnbounded},
		{"multi-table cross join", "DELETE u FROM users u, banned b", high, rule.WriteUnbounded},
		{"multi-table join on constant", "DELETE u FROM users u JOIN banned b ON 1 = 1", high, rule.WriteUnbounded},
		{"multi-table update join on other table only", "UPDATE users u JOIN flags f ON f.on = 1 SET u.admin = 1", high, rule.WriteUnbounded},
		// A join condition bounds nothing: every target row with a partner
		// is hit. Only a WHERE predicate bounds a multi-table write.
		{"join delete without where", "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.t1_id", high, rule.WriteUnbounded},
		{"join update without where", "UPDATE t1 JOIN t2 ON t1.id = t2.t1_id SET t1.x = t2.x", high, rule.WriteUnbounded},
		{"join update unqualified set", "UPDATE t1 JOIN t2 ON t1.id = t2.t1_id SET x = 1", high, rule.WriteUnbounded},
		{"join condition in where", "DELETE t1 FROM t1, t2 WHERE t1.id = t2.t1_id", high, rule.WriteUnbounded},
		{"theta join in where", "DELETE t1 FROM t1, t2 WHERE t1.created < t2.cutoff", high, rule.WriteUnbounded},
		{"join using", "DELETE t1 FROM t1 JOIN t2 USING (id)", high, rule.WriteUnbounded},
		{"natural join", "UPDATE t1 NATURAL JOIN t2 SET t1.x = 1", high, rule.WriteUnbounded},
		{"join on derived table", "UPDATE t1 JOIN (SELECT id FROM t2 LIMIT 5) s ON s.id = t1.id SET t1.x = 1", high, rule.WriteUnbounded},
		{"join condition repeated in where", "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.t1_id WHERE t1.id = t2.t1_id", high, rule.WriteUnbounded},
		{"cross join filtered on the other table", "DELETE t1 FROM t1, t2 WHERE t2.kind = 'x'", high, rule.WriteUnbounded},
		{"semi-join", "DELETE FROM users WHERE id IN (SELECT user_id FROM banned)", high, rule.WriteUnbounded},
		{"anti-join", "DELETE FROM users WHERE id NOT IN (SELECT user_id FROM banned)", high, rule.WriteUnbounded},
		{"correlated exists link only", "DELETE FROM users WHERE EXISTS (SELECT 1 FROM banned b WHERE b.uid = users.id)", high, rule.WriteUnbounded},
		{"replace select with limit", "REPLACE INTO users SELECT * FROM staging LIMIT 10", high, rule.WriteUnbounded},
		{"replace select", "REPLACE INTO users SELECT * FROM staging", high, rule.WriteUnbounded},
		{"replace select tautology", "REPLACE INTO users SELECT * FROM staging WHERE 1", high, rule.WriteUnbounded},
		{"cte", "WITH x AS (SELECT 1) DELETE FROM users", high, rule.WriteUnbounded},
		{"explain analyze", "EXPLAIN ANALYZE DELETE FROM users", high, rule.WriteUnbounded},
		{"prepared literal", "PREPARE s FROM 'DELETE FROM users'", high, rule.WriteUnbounded},
		{"execute immediate literal", "EXECUTE IMMEDIATE 'DELETE FROM users'", high, rule.WriteUnbounded},
		{"procedure body", "CREATE PROCEDURE p() BEGIN DELETE FROM users; END", high, rule.WriteUnbounded},
		{"trigger body", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN DELETE FROM users; END", high, rule.WriteUnbounded},

		// Privilege and identity.
		{"grant", "GRANT ALL PRIVILEGES ON *.* TO 'app'@'%'", high, rule.PrivilegeGrant},
		{"revoke", "REVOKE SELECT ON db.* FROM app", high, rule.PrivilegeGrant},
		{"grant role", "GRANT admin TO app", high, rule.PrivilegeGrant},
		{"create user", "CREATE USER 'x'@'%' IDENTIFIED BY 'p'", high, rule.PrivilegeRole},
		{"alter user", "ALTER USER app IDENTIFIED BY 'p'", high, rule.PrivilegeRole},
		{"drop user", "DROP USER app", high, rule.PrivilegeRole},
		{"rename user", "RENAME USER a TO b", high, rule.PrivilegeRole},
		{"set password", "SET PASSWORD FOR app = 'p'", high, rule.PrivilegeRole},
		{"set role", "SET ROLE admin", high, rule.PrivilegeSetRole},
		{"set default role", "SET DEFAULT ROLE ALL TO app", high, rule.PrivilegeSetRole},
		{"foreign key checks off", "SET foreign_key_checks = 0", high, rule.IntegrityDisable},
		{"binlog off", "SET SESSION sql_log_bin = OFF", high, rule.IntegrityDisable},
		{"set_var hint", "UPDATE /*+ SET_VAR(foreign_key_checks=OFF) */ t SET a = 1 WHERE id = 1", high, rule.IntegrityDisable},
		{"credentials", "SELECT user, authentication_string FROM mysql.user", high, rule.ReadCredentials},
		{"show create user", "SHOW CREATE USER root", high, rule.ReadCredentials},

		// Reach beyond the database.
		{"outfile", "SELECT * FROM users INTO OUTFILE '/tmp/users'", critical, rule.ReachFile},
		{"dumpfile", "SELECT 0x3c3f706870 INTO DUMPFILE '/var/www/x.php'", critical, rule.ReachFile},
		{"load_file", "SELECT LOAD_FILE('/etc/passwd')", critical, rule.ReachFile},
		{"load_file upper quoted", "SELECT `LOAD_FILE`('/etc/passwd')", critical, rule.ReachFile},
		{"load_file nested", "SELECT * FROM t WHERE a = (SELECT HEX(load_file('/etc/passwd')))", critical, rule.ReachFile},
		{"load_file in insert", "INSERT INTO t VALUES (LOAD_FILE('/etc/shadow'))", critical, rule.ReachFile},
		{"load_file in a user variable", "SET @x = LOAD_FILE('/etc/passwd')", critical, rule.ReachFile},
		{"load data", "LOAD DATA INFILE '/etc/passwd' INTO TABLE t", critical, rule.ReachFile},
		{"load data local", "LOAD DATA LOCAL INFILE '/home/u/.ssh/id_rsa' INTO TABLE t", critical, rule.ReachFile},
		{"load xml", "LOAD XML INFILE '/etc/x.xml' INTO TABLE t", critical, rule.ReachFile},
		{"install plugin", "INSTALL PLUGIN evil SONAME 'evil.so'", critical, rule.ReachPlugin},
		{"install soname", "INSTALL SONAME 'evil'", critical, rule.ReachPlugin},
		{"install component", "INSTALL COMPONENT 'file://component_x'", critical, rule.ReachPlugin},
		{"udf", "CREATE FUNCTION sys_exec RETURNS INTEGER SONAME 'lib_mysqludf_sys.so'", critical, rule.ReachPlugin},
		{"aggregate udf", "CREATE AGGREGATE FUNCTION f RETURNS STRING SONAME 'x.so'", critical, rule.ReachPlugin},
		{"sys_exec", "SELECT sys_exec('id')", critical, rule.ReachProgram},
		{"outfile behind a version comment", "SELECT * FROM users /*!50000 INTO OUTFILE '/tmp/x' */", critical, rule.ReachFile},
		{"server", "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'evil')", critical, rule.ReachNetwork},
		{"general log file", "SET GLOBAL general_log_file = '/var/www/shell.php'", critical, rule.ReachFile},
		{"persisted log file", "SET PERSIST slow_query_log_file = '/var/www/x.php'", critical, rule.ReachFile},
		{"federated table", "CREATE TABLE f (a INT) ENGINE=FEDERATED CONNECTION='mysql://u:p@evil/db/t'", critical, rule.ReachNetwork},
		{"init_connect", "SET GLOBAL init_connect = 'DROP TABLE users'", high, rule.CodeDynamic},
		{"blackhole engine", "ALTER TABLE users ENGINE = BLACKHOLE", high, rule.SchemaAlterDrop},
		{"data directory", "CREATE TABLE t (a TEXT) DATA DIRECTORY = '/var/www'", critical, rule.ReachFile},
		{"definer procedure", "CREATE DEFINER=`root`@`%` PROCEDURE p() SQL SECURITY DEFINER BEGIN SELECT 1; END", high, rule.CodeDefine},
		{"trigger reading a file", "CREATE DEFINER=root@localhost TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (LOAD_FILE('/x'))", critical, rule.ReachFile},
		{"union into outfile", "SELECT 1 UNION SELECT LOAD_FILE('/x') INTO OUTFILE '/y'", critical, rule.ReachFile},
		{"table statement into outfile", "TABLE t INTO OUTFILE '/tmp/x'", critical, rule.ReachFile},

		// Opaque code.
		{"prepare from variable", "PREPARE s FROM @sql", high, rule.CodeDynamic},
		{"execute immediate variable", "EXECUTE IMMEDIATE @q", high, rule.CodeDynamic},
		{"call", "CALL purge()", high, rule.CodeCall},
		{"create event", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM logs", high, rule.CodeDefine},
		{"binlog", "BINLOG 'AAAA'", high, rule.CodeDynamic},

		// Administration.
		{"set global", "SET GLOBAL max_connections = 1", high, rule.AdminConfig},
		{"set @@global", "SET @@global.read_only = 0", high, rule.AdminConfig},
		{"set persist", "SET PERSIST max_connections = 1", high, rule.AdminConfig},
		{"shutdown", "SHUTDOWN", high, rule.AdminShutdown},
		{"kill", "KILL 42", high, rule.AdminKill},
		{"kill query", "KILL QUERY 42", high, rule.AdminKill},
		{"flush", "FLUSH TABLES WITH READ LOCK", high, rule.AdminFlush},
		{"reset master", "RESET MASTER", high, rule.AdminReplication},
		{"change master", "CHANGE MASTER TO MASTER_HOST = 'evil'", high, rule.AdminReplication},
		{"purge logs", "PURGE BINARY LOGS BEFORE NOW()", high, rule.AdminReplication},
		{"optimize", "OPTIMIZE TABLE users", high, rule.AdminMaintenance},

		// Lexing ambiguity.
		{"no-backslash-escapes reading", `SELECT 'a\'; DROP TABLE users; -- '`, high, rule.SchemaDrop},
		{"ansi-quotes reading", `SELECT "a\"; DROP TABLE users; -- "`, high, rule.SchemaDrop},
		{"dash-dash ambiguity", "SELECT 1 --\xa0, 2 FROM t; DROP TABLE t", high, rule.ParseError},
		{"unparseable", "SELEC 1", high, rule.ParseError},
		{"unterminated string", "SELECT 'abc", high, rule.ParseError},
		{"valid then garbage", "DROP TABLE users; GARBAGE", high, rule.SchemaDrop},
	})
}

func TestBenign(t *testing.T) {
	runCases(t, []riskCase{
		{"empty", "", none, ""},
		{"select", "SELECT * FROM users WHERE id = ?", none, ""},
		{"keyword in string", "SELECT 'DROP TABLE users'", none, ""},
		{"dangerous text as data", "INSERT INTO audit (q) VALUES ('DELETE FROM users')", low, rule.WriteInsert},
		{"keyword in backticks", "SELECT * FROM `drop table`", none, ""},
		{"keyword in comment", "SELECT 1 /* ; DROP TABLE users */", none, ""},
		{"keyword in hint position comment", "SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", none, ""},
		{"hash comment", "SELECT 1 # DROP TABLE users", none, ""},
		{"dash comment", "SELECT 1 -- ; DROP TABLE users", none, ""},
		{"double dash without space is arithmetic", "SELECT 1--1", none, ""},
		{"table drops", "SELECT * FROM drops", none, ""},
		{"column delete_at", "SELECT delete_at FROM events", none, ""},
		{"function named like a keyword in a string", "SELECT 'load_file(''/etc/passwd'')'", none, ""},
		{"update by key", "UPDATE users SET name = ? WHERE id = ?", low, rule.WriteUpdate},
		{"delete by filtered subquery", "DELETE FROM users WHERE id IN (SELECT user_id FROM banned WHERE expires > NOW())", low, rule.WriteDelete},
		{"correlated exists with a filter", "DELETE FROM users WHERE EXISTS (SELECT 1 FROM banned b WHERE b.uid = users.id AND b.hard)", low, rule.WriteDelete},
		{"delete limit with where", "DELETE FROM logs WHERE created < NOW() - INTERVAL 30 DAY LIMIT 1000", low, rule.WriteDelete},
		{"join delete with a where on the target", "DELETE u FROM users u JOIN banned b ON b.uid = u.id WHERE u.id = 7", low, rule.WriteDelete},
		{"join delete with a where on the joined table", "DELETE u FROM users u JOIN banned b ON b.uid = u.id WHERE b.reason = 'spam'", low, rule.WriteDelete},
		{"join update with a where through the join", "UPDATE users u JOIN orders o ON o.uid = u.id SET u.total = o.total WHERE o.uid = 5", low, rule.WriteUpdate},
		{"comma join with a where", "DELETE t1 FROM t1, t2 WHERE t1.id = t2.t1_id AND t1.status = 'old'", low, rule.WriteDelete},
		{"insert select", "INSERT INTO archive SELECT * FROM logs", low, rule.WriteInsert},
		{"replace values", "REPLACE INTO kv (k, v) VALUES ('a', 'b')", low, rule.WriteInsert},
		{"replace select bounded", "REPLACE INTO users SELECT * FROM staging WHERE batch = 7", low, rule.WriteInsert},
		{"upsert", "INSERT INTO kv VALUES (1, 2) ON DUPLICATE KEY UPDATE v = VALUES(v)", low, rule.WriteInsert},
		{"explain delete", "EXPLAIN DELETE FROM users", none, ""},
		{"describe", "DESCRIBE users", none, ""},
		{"transaction", "START TRANSACTION; SELECT 1; COMMIT", none, ""},
		{"show", "SHOW TABLES", none, ""},
		{"show grants", "SHOW GRANTS", none, ""},
		{"use", "USE app", none, ""},
		{"set names", "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci", none, ""},
		{"client setup", "SET autocommit = 1, sql_select_limit = 1000; SET character_set_results = NULL", none, ""},
		{"user variable", "SET @a = 1", none, ""},
		{"select into variable", "SELECT COUNT(*) FROM users INTO @n", none, ""},
		{"sql mode", "SET SESSION sql_mode = 'STRICT_ALL_TABLES'", medium, rule.SessionSet},
		{"foreign key checks on", "SET foreign_key_checks = 1", medium, rule.SessionSet},
		{"create table", "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10) DEFAULT 'x')", medium, rule.DDLCreate},
		{"add column", "ALTER TABLE t ADD COLUMN w INT", medium, rule.DDLAlter},
		{"analyze", "ANALYZE TABLE t", medium, rule.MaintenanceRoutine},
		{"lock tables", "LOCK TABLES t READ", medium, rule.LockTable},
		{"execute prepared", "EXECUTE s USING @a", medium, rule.CodeExecute},
		{"deallocate", "DEALLOCATE PREPARE s", none, ""},
		{"dump header", "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;", none, ""},
		{"escaped quote", `SELECT 'O\'Brien'`, none, ""},
		{"doubled quote", `SELECT 'O''Brien'`, none, ""},
		{"double-quoted string", `SELECT "it's"`, none, ""},
		{"do sleep", "DO SLEEP(1)", none, ""},
		{"prepare benign literal", "PREPARE s FROM 'SELECT * FROM t WHERE id = ?'", none, ""},
		{"xa", "XA START 'xid1'; XA END 'xid1'; XA PREPARE 'xid1'; XA COMMIT 'xid1'", none, ""},
		{"check table", "CHECK TABLE t, u EXTENDED", medium, rule.MaintenanceRoutine},
		{"show slave status", "SHOW SLAVE STATUS", none, ""},
		{"drop temporary table", "DROP TEMPORARY TABLE IF EXISTS tmp", medium, rule.DDLOther},
		{"safe updates off", "SET SQL_SAFE_UPDATES = 0", medium, rule.SessionSet},
		{"ORM select", "SELECT `users`.`id`, `users`.`email` FROM `users` LEFT JOIN `orders` ON `orders`.`user_id` = `users`.`id` WHERE `users`.`deleted_at` IS NULL AND `orders`.`status` IN (?, ?, ?) ORDER BY `users`.`created_at` DESC LIMIT ? OFFSET ?", none, ""},
	})
}

func TestRedaction(t *testing.T) {
	tests := []struct{ name, sql, want string }{
		{"create user", "CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'", "CREATE USER '***'@'%' IDENTIFIED BY '***'"},
		{"alter user", "ALTER USER bob IDENTIFIED WITH mysql_native_password BY 'hunter2'", "ALTER USER bob IDENTIFIED WITH mysql_native_password BY '***'"},
		{"set password", "SET PASSWORD FOR bob = 'hunter2'", "SET PASSWORD FOR bob = '***'"},
		{"old grant syntax", "GRANT ALL ON *.* TO bob IDENTIFIED BY 'hunter2'", "GRANT ALL ON *.* TO bob IDENTIFIED BY '***'"},
		{"change master", "CHANGE MASTER TO MASTER_USER='r', MASTER_PASSWORD='hunter2'", "CHANGE MASTER TO MASTER_USER='***', MASTER_PASSWORD='***'"},
		{"only that statement", "SELECT 'keep'; SET PASSWORD = 'hunter2'", "SELECT 'keep'; SET PASSWORD = '***'"},
		{"escaped quote inside", `CREATE USER u IDENTIFIED BY 'hun\'ter2'`, `CREATE USER u IDENTIFIED BY '***'`},
		{"inside a version comment", "/*!80000 CREATE USER u IDENTIFIED BY 'hunter2' */", "/*!80000 CREATE USER u IDENTIFIED BY '***' */"},
		{"inside a prepared literal", "PREPARE s FROM 'CREATE USER u IDENTIFIED BY ''hunter2'''", "PREPARE s FROM '***'"},
		{"aes key", "SELECT AES_ENCRYPT(data, 'hunter2') FROM t", "SELECT AES_ENCRYPT(data, '***') FROM t"},
		{"unterminated", "CREATE USER u IDENTIFIED BY 'hunter2", "CREATE USER u IDENTIFIED BY '***'"},
		{"plain", "SELECT 'password' FROM t", "SELECT 'password' FROM t"},
	}
	a := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := a.Text(tc.sql).Redacted
			if got != tc.want {
				t.Errorf("redacted = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("secret leaked: %q", got)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT * FROM app.users u JOIN orders o ON o.uid = u.id", "[{select [app.users orders]}]"},
		{"DELETE FROM users WHERE id = 1; DROP TABLE a, b.c", "[{delete [users]} {drop_table [a b.c]}]"},
		{"WITH x AS (SELECT 1) SELECT * FROM x, y", "[{select [y]}]"},
		{"REPLACE INTO t VALUES (1)", "[{replace [t]}]"},
		{"INSTALL PLUGIN x SONAME 'x.so'", "[{install_plugin []}]"},
		{"CREATE OR REPLACE DEFINER=x EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1", "[{create_event []}]"},
		{"SET NAMES utf8", "[{set []}]"},
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

func TestLexer(t *testing.T) {
	tests := []struct {
		text string
		mode lexMode
		n    int // statements
		err  bool
	}{
		{"SELECT 1; SELECT 2", lexMode{}, 2, false},
		{"SELECT ';'; SELECT 2", lexMode{}, 2, false},
		{`SELECT 'a\';' ; SELECT 2`, lexMode{}, 2, false},
		{`SELECT 'a\';' ; SELECT 2`, lexMode{noBackslashEscapes: true}, 3, true},
		{`SELECT "a;b"`, lexMode{}, 1, false},
		{`SELECT "a;b"`, lexMode{ansiQuotes: true}, 1, false},
		{"SELECT 1 -- ;\n; SELECT 2", lexMode{}, 2, false},
		{"SELECT 1 /*!50000 ; SELECT 2 */", lexMode{}, 2, false},
		{"SELECT 1 /* ; SELECT 2", lexMode{}, 0, true},
		{";;;", lexMode{}, 0, false},
	}
	for _, tc := range tests {
		lx := lex(tc.text, tc.mode)
		if lx.err != tc.err {
			t.Errorf("%q %+v: err = %v, want %v", tc.text, tc.mode, lx.err, tc.err)
		}
		if n := len(split(tc.text, lx.tokens)); !tc.err && n != tc.n {
			t.Errorf("%q %+v: %d statements, want %d", tc.text, tc.mode, n, tc.n)
		}
	}
}

func TestDepthGuard(t *testing.T) {
	a := New()
	deep := "SELECT " + strings.Repeat("1 + ", 60000) + "1"
	if c := a.Text(deep); !slices.Contains(c.Rules, rule.ParseError) {
		t.Errorf("deep chain: %s %v", c.Risk, c.Rules)
	}
	if c := a.Text("DROP TABLE t; SELECT " + strings.Repeat("(", 60000) + "1" + strings.Repeat(")", 60000)); !slices.Contains(c.Rules, rule.SchemaDrop) {
		t.Errorf("keywords of a refused text still count: %v", c.Rules)
	}
	var or strings.Builder
	or.WriteString("DELETE FROM t WHERE ")
	for i := range 10000 {
		if i > 0 {
			or.WriteString(" OR ")
		}
		fmt.Fprintf(&or, "id = %d", i)
	}
	if c := a.Text(or.String()); c.Risk != low {
		t.Errorf("ORM-style OR list: %s %v", c.Risk, c.Rules)
	}
}
