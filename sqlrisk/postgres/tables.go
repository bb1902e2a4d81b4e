package postgres

import (
	"strings"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// funcRules maps built-in (and common extension) function names to the rule
// a call triggers. PostgreSQL folds unquoted names to lower case, so the
// parse tree holds "pg_read_file" for PG_READ_FILE(…) and "PG_READ_FILE" for
// the distinct function "PG_READ_FILE"(…); the lookup is therefore exact. The
// schema is ignored: pg_catalog.pg_read_file and a look-alike wrapper in
// another schema are both flagged.
var funcRules = map[string]string{
	// Server file system.
	"pg_read_file":            rule.ReachFile,
	"pg_read_binary_file":     rule.ReachFile,
	"pg_ls_dir":               rule.ReachFile,
	"pg_stat_file":            rule.ReachFile,
	"pg_ls_logdir":            rule.ReachFile,
	"pg_ls_waldir":            rule.ReachFile,
	"pg_ls_tmpdir":            rule.ReachFile,
	"pg_ls_archive_statusdir": rule.ReachFile,
	"pg_ls_logicalsnapdir":    rule.ReachFile,
	"pg_ls_logicalmapdir":     rule.ReachFile,
	"pg_ls_replslotdir":       rule.ReachFile,
	"lo_import":               rule.ReachFile,
	"lo_export":               rule.ReachFile,
	"pg_file_write":           rule.ReachFile, // adminpack
	"pg_file_rename":          rule.ReachFile,
	"pg_file_unlink":          rule.ReachFile,
	"pg_file_sync":            rule.ReachFile,
	"pg_logdir_ls":            rule.ReachFile,
	"pg_file_read":            rule.ReachFile,

	// Network: dblink is matched by prefix below; pgsql-http and pg_net.
	"http":                         rule.ReachNetwork,
	"http_get":                     rule.ReachNetwork,
	"http_post":                    rule.ReachNetwork,
	"http_put":                     rule.ReachNetwork,
	"http_patch":                   rule.ReachNetwork,
	"http_delete":                  rule.ReachNetwork,
	"http_head":                    rule.ReachNetwork,
	"postgres_fdw_get_connections": rule.ReachNetwork,

	// Operating-system programs (common UDF names).
	"sys_exec": rule.ReachProgram,
	"sys_eval": rule.ReachProgram,

	// Built-ins that execute SQL given as text.
	"query_to_xml":               rule.CodeDynamic,
	"query_to_xml_and_xmlschema": rule.CodeDynamic,
	"query_to_xmlschema":         rule.CodeDynamic,
	"ts_stat":                    rule.CodeDynamic,
	"crosstab":                   rule.CodeDynamic, // tablefunc
	"crosstab2":                  rule.CodeDynamic,
	"crosstab3":                  rule.CodeDynamic,
	"crosstab4":                  rule.CodeDynamic,
	"connectby":                  rule.CodeDynamic,

	// Other sessions.
	"pg_terminate_backend": rule.AdminKill,
	"pg_cancel_backend":    rule.AdminKill,

	// Server configuration and statistics.
	"pg_reload_conf":                         rule.AdminConfig,
	"pg_rotate_logfile":                      rule.AdminConfig,
	"pg_rotate_logfile_old":                  rule.AdminConfig,
	"pg_stat_reset":                          rule.AdminConfig,
	"pg_stat_reset_shared":                   rule.AdminConfig,
	"pg_stat_reset_single_table_counters":    rule.AdminConfig,
	"pg_stat_reset_single_function_counters": rule.AdminConfig,
	"pg_stat_reset_slru":                     rule.AdminConfig,
	"pg_stat_reset_replication_slot":         rule.AdminConfig,
	"pg_stat_reset_subscription_stats":       rule.AdminConfig,
	"pg_stat_statements_reset":               rule.AdminConfig,

	// Replication, WAL and backups.
	"pg_promote":                          rule.AdminReplication,
	"pg_switch_wal":                       rule.AdminReplication,
	"pg_switch_xlog":                      rule.AdminReplication,
	"pg_create_restore_point":             rule.AdminReplication,
	"pg_backup_start":                     rule.AdminReplication,
	"pg_backup_stop":                      rule.AdminReplication,
	"pg_start_backup":                     rule.AdminReplication,
	"pg_stop_backup":                      rule.AdminReplication,
	"pg_create_physical_replication_slot": rule.AdminReplication,
	"pg_create_logical_replication_slot":  rule.AdminReplication,
	"pg_drop_replication_slot":            rule.AdminReplication,
	"pg_copy_physical_replication_slot":   rule.AdminReplication,
	"pg_copy_logical_replication_slot":    rule.AdminReplication,
	"pg_replication_slot_advance":         rule.AdminReplication,
	"pg_logical_slot_get_changes":         rule.AdminReplication,
	"pg_logical_slot_get_binary_changes":  rule.AdminReplication,
	"pg_logical_slot_peek_changes":        rule.AdminReplication,
	"pg_logical_slot_peek_binary_changes": rule.AdminReplication,
	"pg_logical_emit_message":             rule.AdminReplication,
	"pg_replication_origin_create":        rule.AdminReplication,
	"pg_replication_origin_drop":          rule.AdminReplication,
	"pg_replication_origin_advance":       rule.AdminReplication,
	"pg_replication_origin_session_setup": rule.AdminReplication,
	"pg_wal_replay_pause":                 rule.AdminReplication,
	"pg_wal_replay_resume":                rule.AdminReplication,
	"pg_sync_replication_slots":           rule.AdminReplication,
}

// funcRule returns the rule a call of name triggers, or "".
func funcRule(name string) string {
	if id, ok := funcRules[name]; ok {
		return id
	}
	if strings.HasPrefix(name, "dblink") {
		return rule.ReachNetwork
	}
	return ""
}

// credentialTables hold password hashes or stored connection secrets.
var credentialTables = map[string]bool{
	"pg_authid":        true,
	"pg_shadow":        true,
	"pg_user_mapping":  true,
	"pg_user_mappings": true,
	"pg_subscription":  true, // subconninfo may hold a password
}

// settingRule classifies setting name (lower case) being given value. known
// is false when the value is not a constant (a DEFAULT, RESET or an
// expression) and reset is true for RESET / SET … TO DEFAULT.
func settingRule(name, value string, known, reset bool) string {
	switch name {
	case "role", "session_authorization":
		if reset || (known && (strings.EqualFold(value, "none") || strings.EqualFold(value, "default"))) {
			return rule.SessionSet
		}
		return rule.PrivilegeSetRole
	case "session_replication_role":
		if reset || (known && strings.EqualFold(value, "origin")) {
			return rule.SessionSet
		}
		return rule.IntegrityDisable
	case "default_transaction_read_only", "transaction_read_only":
		if reset {
			return rule.SessionSet
		}
		if known {
			if on, ok := pgBool(value); ok && on {
				return ""
			}
		}
		return rule.SessionReadWrite
	case "row_security":
		return rule.SessionSet
	}
	if id := serverReach[name]; id != "" {
		// ALTER SYSTEM / ALTER ROLE|DATABASE … SET / SET of a setting
		// that makes the server run a program, write a file where it
		// says, or load a library.
		if reset {
			return rule.SessionSet
		}
		return id
	}
	if clientSettings[name] {
		return ""
	}
	if superuserSettings[name] || strings.HasPrefix(name, "debug_") {
		return rule.AdminConfig
	}
	if strings.HasPrefix(name, "log_") || strings.HasPrefix(name, "pgaudit.") || strings.HasPrefix(name, "track_") ||
		name == "logging_collector" || name == "event_triggers" {
		return rule.IntegrityDisable
	}
	return rule.SessionSet
}

// serverReach are settings whose value makes the server reach outside the
// database: shell commands it runs, paths it writes, libraries it loads.
var serverReach = map[string]string{
	"archive_command":           rule.ReachProgram,
	"restore_command":           rule.ReachProgram,
	"archive_cleanup_command":   rule.ReachProgram,
	"recovery_end_command":      rule.ReachProgram,
	"ssl_passphrase_command":    rule.ReachProgram,
	"log_directory":             rule.ReachFile,
	"log_filename":              rule.ReachFile,
	"data_directory":            rule.ReachFile,
	"config_file":               rule.ReachFile,
	"hba_file":                  rule.ReachFile,
	"ident_file":                rule.ReachFile,
	"external_pid_file":         rule.ReachFile,
	"ssl_cert_file":             rule.ReachFile,
	"ssl_key_file":              rule.ReachFile,
	"ssl_ca_file":               rule.ReachFile,
	"ssl_crl_file":              rule.ReachFile,
	"ssl_crl_dir":               rule.ReachFile,
	"unix_socket_directories":   rule.ReachFile,
	"shared_preload_libraries":  rule.ReachPlugin,
	"session_preload_libraries": rule.ReachPlugin,
	"local_preload_libraries":   rule.ReachPlugin,
	"dynamic_library_path":      rule.ReachPlugin,
	"archive_library":           rule.ReachPlugin,
	"jit_provider":              rule.ReachPlugin,
	"primary_conninfo":          rule.ReachNetwork,
}

// predefinedRoles grant reach beyond the database to whoever holds them.
var predefinedRoles = map[string]string{
	"pg_read_server_files":      rule.ReachFile,
	"pg_write_server_files":     rule.ReachFile,
	"pg_execute_server_program": rule.ReachProgram,
}

// clientSettings are what drivers, psql and connection pools set up on
// every connection; changing them is risk none.
var clientSettings = map[string]bool{
	"client_encoding":                     true,
	"application_name":                    true,
	"datestyle":                           true,
	"timezone":                            true,
	"intervalstyle":                       true,
	"extra_float_digits":                  true,
	"bytea_output":                        true,
	"client_min_messages":                 true,
	"statement_timeout":                   true,
	"lock_timeout":                        true,
	"idle_in_transaction_session_timeout": true,
	"idle_session_timeout":                true,
	"transaction_timeout":                 true,
	"transaction_isolation":               true,
	"default_transaction_isolation":       true,
	"transaction_deferrable":              true,
	"default_transaction_deferrable":      true,
	"standard_conforming_strings":         true, // the analyzer reads literals both ways
	"escape_string_warning":               true,
	"transaction":                         true, // SET TRANSACTION …
	"transaction snapshot":                true,
}

// superuserSettings change how the server itself behaves or what it loads.
var superuserSettings = map[string]bool{
	"allow_system_table_mods":    true,
	"allow_in_place_tablespaces": true,
	"zero_damaged_pages":         true,
	"ignore_system_indexes":      true,
	"ignore_checksum_failure":    true,
	"ignore_invalid_pages":       true,
	"lo_compat_privileges":       true,
	"dynamic_library_path":       true,
	"session_preload_libraries":  true,
	"local_preload_libraries":    true,
	"jit_provider":               true,
	"data_sync_retry":            true,
	"fsync":                      true,
	"full_page_writes":           true,
}

// languageRule classifies a function or DO language.
func languageRule(lang string) string {
	switch lang {
	case "c", "internal":
		return rule.ReachPlugin
	case "sql", "plpgsql", "plperl", "pltcl", "plv8", "pllua", "plrust", "pljava", "plprql", "plsample":
		return rule.CodeDefine
	case "plsh", "plr", "plpython", "plpythonu", "plpython2u", "plpython3u":
		return rule.ReachProgram
	}
	if strings.HasPrefix(lang, "pl") && strings.HasSuffix(lang, "u") {
		return rule.ReachProgram // untrusted language convention: plperlu, pltclu, pljavau…
	}
	return rule.CodeDefine
}

// pgBool parses PostgreSQL's boolean input forms.
func pgBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
		return true, true
	case "f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0":
		return false, true
	}
	return false, false
}
