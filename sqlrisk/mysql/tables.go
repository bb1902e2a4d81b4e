package mysql

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/airlock-gw/airlock/sqlrisk/internal/kindname"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// stmtRule maps a statement type to its rule ("" for risk none); ok is
// false for a type the classifier does not know, which fails closed.
// Statements whose rule depends on content are handled in walker.node.
func stmtRule(n ast.StmtNode) (string, bool) {
	switch x := n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.InsertStmt, *ast.DeleteStmt, *ast.UpdateStmt,
		*ast.ExplainStmt, *ast.PrepareStmt, *ast.AlterTableStmt, *ast.DropTableStmt, *ast.ShowStmt,
		*ast.KillStmt, *ast.SetStmt:
		return "", true // handled in walker.node and by their parts
	case *ast.UseStmt, *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt,
		*ast.ReleaseSavepointStmt, *ast.HelpStmt, *ast.ExplainForStmt, *ast.TraceStmt, *ast.DoStmt,
		*ast.DeallocateStmt, *ast.UnlockTablesStmt, *ast.SimpleWhenThenStmt,
		*ast.SimpleCaseStmt, *ast.SearchWhenThenStmt, *ast.SearchCaseStmt, *ast.ProcedureRepeatStmt,
		*ast.ProcedureWhileStmt:
		return "", true
	case *ast.ExecuteStmt:
		return rule.CodeExecute, true
	case *ast.CallStmt:
		return rule.CodeCall, true
	case *ast.ProcedureInfo:
		return rule.CodeDefine, true
	case *ast.BinlogStmt:
		return rule.CodeDynamic, true

	case *ast.CreateDatabaseStmt, *ast.CreateTableStmt, *ast.CreateViewStmt, *ast.CreateIndexStmt,
		*ast.CreateSequenceStmt, *ast.CreatePlacementPolicyStmt, *ast.CreateResourceGroupStmt,
		*ast.CreateStatisticsStmt, *ast.CreateBindingStmt, *ast.CreateMaskingPolicyStmt:
		return rule.DDLCreate, true
	case *ast.AlterDatabaseStmt, *ast.AlterSequenceStmt, *ast.AlterPlacementPolicyStmt,
		*ast.AlterResourceGroupStmt, *ast.FlashBackTableStmt, *ast.RecoverTableStmt,
		*ast.AlterRangeStmt:
		return rule.DDLAlter, true
	case *ast.SetBindingStmt, *ast.DropBindingStmt, *ast.DropStatisticsStmt, *ast.DropStatsStmt,
		*ast.LockStatsStmt, *ast.UnlockStatsStmt, *ast.RefreshStatsStmt, *ast.RecommendIndexStmt:
		return rule.DDLOther, true

	case *ast.DropDatabaseStmt, *ast.DropIndexStmt, *ast.DropSequenceStmt, *ast.DropPlacementPolicyStmt,
		*ast.DropResourceGroupStmt, *ast.DropProcedureStmt, *ast.DropQueryWatchStmt:
		return rule.SchemaDrop, true
	case *ast.TruncateTableStmt:
		return rule.SchemaTruncate, true
	case *ast.RenameTableStmt:
		return rule.SchemaRename, true
	case *ast.FlashBackDatabaseStmt, *ast.FlashBackToTimestampStmt:
		return rule.SchemaDrop, true // rewinds data: destroys what came after

	case *ast.GrantStmt, *ast.RevokeStmt, *ast.GrantRoleStmt, *ast.RevokeRoleStmt, *ast.GrantProxyStmt:
		return rule.PrivilegeGrant, true
	case *ast.CreateUserStmt, *ast.AlterUserStmt, *ast.DropUserStmt, *ast.RenameUserStmt, *ast.SetPwdStmt:
		return rule.PrivilegeRole, true
	case *ast.SetRoleStmt, *ast.SetDefaultRoleStmt:
		return rule.PrivilegeSetRole, true
	case *ast.SetSessionStatesStmt, *ast.SetResourceGroupStmt:
		return rule.SessionSet, true

	case *ast.LockTablesStmt, *ast.CleanupTableLockStmt:
		return rule.LockTable, true
	case *ast.AnalyzeTableStmt:
		return rule.MaintenanceRoutine, true
	case *ast.OptimizeTableStmt, *ast.RepairTableStmt, *ast.SplitRegionStmt, *ast.DistributeTableStmt,
		*ast.CompactTableStmt, *ast.CalibrateResourceStmt, *ast.CancelDistributionJobStmt:
		return rule.AdminMaintenance, true

	case *ast.SetConfigStmt, *ast.AdminStmt, *ast.AlterInstanceStmt, *ast.AddQueryWatchStmt:
		return rule.AdminConfig, true
	case *ast.ShutdownStmt, *ast.RestartStmt:
		return rule.AdminShutdown, true
	case *ast.FlushStmt:
		return rule.AdminFlush, true
	case *ast.TrafficStmt:
		return rule.AdminMonitor, true

	case *ast.LoadDataStmt, *ast.ImportIntoStmt, *ast.LoadStatsStmt, *ast.PlanReplayerStmt,
		*ast.ImportIntoActionStmt:
		return rule.ReachFile, true
	case *ast.BRIEStmt:
		return rule.ReachNetwork, true
	case *ast.NonTransactionalDMLStmt:
		return "", true // its DML statement is walked
	default:
		_ = x
		// The parts of a stored procedure body (blocks, IF, loops,
		// cursors, handlers) have no effect of their own; the walker
		// visits the statements they hold.
		if t := reflect.TypeOf(n); t.Kind() == reflect.Pointer && strings.HasPrefix(t.Elem().Name(), "Procedure") {
			return "", true
		}
		return "", false
	}
}

// kindOf names a statement's kind: "select", "replace", "drop_table", …
func kindOf(n ast.StmtNode) string {
	switch x := n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
		return "select"
	case *ast.InsertStmt:
		if x.IsReplace {
			return "replace"
		}
		return "insert"
	case *ast.DropTableStmt:
		if x.IsView {
			return "drop_view"
		}
		return "drop_table"
	case *ast.ProcedureInfo:
		return "create_procedure"
	case *ast.CreateUserStmt:
		if x.IsCreateRole {
			return "create_role"
		}
		return "create_user"
	case *ast.DropUserStmt:
		if x.IsDropRole {
			return "drop_role"
		}
		return "drop_user"
	case *ast.SetPwdStmt:
		return "set_password"
	case *ast.BeginStmt:
		return "begin"
	}
	t := reflect.TypeOf(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return kindname.Snake(strings.TrimSuffix(t.Name(), "Stmt"))
}

// funcRules maps function names (lower case: MySQL function names are case
// insensitive, quoted or not) to the rule a call triggers.
var funcRules = map[string]string{
	"load_file": rule.ReachFile,
	"sys_exec":  rule.ReachProgram, // lib_mysqludf_sys
	"sys_eval":  rule.ReachProgram,
	"sys_get":   rule.ReachProgram,
	"sys_set":   rule.ReachProgram,
}

func funcRule(name string) string { return funcRules[name] }

// credentialTable reports whether schema.name holds account credentials.
func credentialTable(schema, name string) bool {
	switch name {
	case "user", "global_priv":
		return schema == "mysql"
	case "password_history":
		return schema == "mysql"
	}
	return false
}

// alterSpecRule classifies one ALTER TABLE specification.
func alterSpecRule(t ast.AlterTableType) string {
	switch t {
	case ast.AlterTableDropColumn, ast.AlterTableDropPrimaryKey, ast.AlterTableDropIndex,
		ast.AlterTableDropForeignKey, ast.AlterTableDropPartition, ast.AlterTableDropCheck,
		ast.AlterTableDropFirstPartition, ast.AlterTableRemovePartitioning,
		ast.AlterTableExchangePartition, ast.AlterTableDiscardTablespace,
		ast.AlterTableDiscardPartitionTablespace, ast.AlterTableCoalescePartitions,
		ast.AlterTableRemoveTTL, ast.AlterTableDropMaskingPolicy, ast.AlterTableDisableMaskingPolicy:
		return rule.SchemaAlterDrop
	case ast.AlterTableTruncatePartition:
		return rule.SchemaTruncate
	case ast.AlterTableRenameTable, ast.AlterTableRenameColumn, ast.AlterTableRenameIndex:
		return rule.SchemaRename
	case ast.AlterTableDisableKeys:
		return rule.IntegrityDisable
	}
	return rule.DDLAlter
}

// settingRule classifies setting a session system variable (lower case) to
// value; known is false when the value is not a constant.
func settingRule(name, value string, known bool) string {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "session."), "local.")
	off := known && isOff(value)
	switch name {
	case "sql_log_bin", "foreign_key_checks", "unique_checks", "general_log", "slow_query_log", "check_constraint_checks":
		if known && !off {
			return rule.SessionSet
		}
		return rule.IntegrityDisable
	case "sql_log_off": // on means: do not write this session to the general log
		if off {
			return rule.SessionSet
		}
		return rule.IntegrityDisable
	case "tx_read_only", "transaction_read_only":
		if off || !known {
			return rule.SessionReadWrite
		}
		return ""
	case "pseudo_replica_mode", "pseudo_slave_mode", "gtid_next", "sql_replica_skip_counter", "sql_slave_skip_counter":
		return rule.AdminReplication
	}
	if clientSettings[name] {
		return ""
	}
	return rule.SessionSet
}

// globalReach classifies global variables whose value points the server
// at files or libraries: general_log_file = '/var/www/shell.php' plus a
// logged query is a classic way to write a web shell.
func globalReach(name string) string {
	switch {
	case strings.HasSuffix(name, "_file"), strings.HasSuffix(name, "_dir"), name == "datadir",
		strings.HasSuffix(name, "_path"), name == "secure_file_priv":
		return rule.ReachFile
	case name == "init_connect", name == "init_file", name == "init_slave", name == "init_replica":
		return rule.CodeDynamic // SQL the server runs for every new connection
	}
	return ""
}

// clientSettings are what drivers and the mysql client set on connect.
var clientSettings = map[string]bool{
	"autocommit": true, "names": true, "character_set_client": true, "character_set_connection": true,
	"character_set_results": true, "collation_connection": true, "time_zone": true,
	"tx_isolation": true, "transaction_isolation": true, "tx_isolation_one_shot": true,
	"sql_select_limit": true, "max_execution_time": true, "net_write_timeout": true,
	"net_read_timeout": true, "wait_timeout": true, "interactive_timeout": true,
	"session_track_schema": true, "session_track_state_change": true, "session_track_system_variables": true,
	"sql_auto_is_null": true, "group_concat_max_len": true, "lock_wait_timeout": true,
	"innodb_lock_wait_timeout": true, "transaction_isolation_one_shot": true,
}

func isOff(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "off", "false", "no":
		return true
	}
	return false
}

// exprText renders a constant SET value (a literal or a bare word such as
// ON or OFF).
func exprText(e ast.ExprNode) (string, bool) {
	switch x := e.(type) {
	case *driver.ValueExpr:
		if x.Kind() == driver.KindNull {
			return "", false
		}
		return fmt.Sprint(x.GetValue()), true
	case *ast.ColumnNameExpr:
		return x.Name.Name.O, true
	}
	return "", false
}
