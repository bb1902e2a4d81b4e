package postgres

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// simpleRules maps statement types whose meaning does not depend on their
// content to their rule ("" for risk none). Their children are still walked.
var simpleRules = map[string]string{
	// Reads, transaction control, cursors, notifications.
	"SelectStmt": "", "SetOperationStmt": "", "VariableShowStmt": "", "TransactionStmt": "",
	"ListenStmt": "", "NotifyStmt": "", "UnlistenStmt": "", "DiscardStmt": "", "DeallocateStmt": "",
	"ClosePortalStmt": "", "FetchStmt": "", "DeclareCursorStmt": "", "ConstraintsSetStmt": "",
	"ReturnStmt": "", "PLAssignStmt": "", "PrepareStmt": "",
	"ReplicaIdentityStmt": "", // only inside ALTER TABLE, which carries the rule

	// Non-destructive DDL.
	"CreateStmt": rule.DDLCreate, "ViewStmt": rule.DDLCreate, "IndexStmt": rule.DDLCreate,
	"CreateTableAsStmt": rule.DDLCreate, "CreateSeqStmt": rule.DDLCreate, "CreateSchemaStmt": rule.DDLCreate,
	"CreatedbStmt": rule.DDLCreate, "CompositeTypeStmt": rule.DDLCreate, "CreateEnumStmt": rule.DDLCreate,
	"CreateRangeStmt": rule.DDLCreate, "CreateDomainStmt": rule.DDLCreate, "CreateStatsStmt": rule.DDLCreate,
	"CreateCastStmt": rule.DDLCreate, "DefineStmt": rule.DDLCreate, "CreateOpClassStmt": rule.DDLCreate,
	"CreateOpFamilyStmt": rule.DDLCreate, "CreateConversionStmt": rule.DDLOther,
	"CommentStmt": rule.DDLOther, "SecLabelStmt": rule.DDLOther,
	"AlterCollationStmt": rule.DDLAlter, "AlterEnumStmt": rule.DDLAlter, "AlterSeqStmt": rule.DDLAlter,
	"AlterStatsStmt": rule.DDLAlter, "AlterTypeStmt": rule.DDLAlter, "AlterOperatorStmt": rule.DDLAlter,
	"AlterOpFamilyStmt": rule.DDLAlter, "AlterTSConfigurationStmt": rule.DDLAlter,
	"AlterTSDictionaryStmt": rule.DDLAlter, "AlterObjectDependsStmt": rule.DDLAlter,
	"AlterDatabaseRefreshCollStmt": rule.DDLAlter,

	// Maintenance and locks.
	"RefreshMatViewStmt": rule.MaintenanceRoutine, "ClusterStmt": rule.AdminMaintenance,
	"CheckPointStmt": rule.AdminMaintenance, "AlterTableMoveAllStmt": rule.AdminMaintenance,
	"LockStmt": rule.LockTable,

	// Destruction.
	"TruncateStmt": rule.SchemaTruncate, "DropdbStmt": rule.SchemaDrop, "DropOwnedStmt": rule.SchemaDrop,
	"DropTableSpaceStmt": rule.SchemaDrop, "DropSubscriptionStmt": rule.SchemaDrop,
	"DropUserMappingStmt": rule.SchemaDrop, "AlterObjectSchemaStmt": rule.SchemaRename,

	// Privilege and identity.
	"GrantStmt": rule.PrivilegeGrant, "GrantRoleStmt": rule.PrivilegeGrant,
	"AlterDefaultPrivilegesStmt": rule.PrivilegeGrant, "DropRoleStmt": rule.PrivilegeRole,
	"AlterRoleSetStmt": rule.PrivilegeRole, "ReassignOwnedStmt": rule.PrivilegeRole,
	"AlterOwnerStmt": rule.PrivilegeRole, "CreatePolicyStmt": rule.PrivilegePolicy,
	"AlterPolicyStmt": rule.PrivilegePolicy,

	// Code.
	"CallStmt": rule.CodeCall, "ExecuteStmt": rule.CodeExecute, "CreateTrigStmt": rule.CodeDefine,
	"CreateEventTrigStmt": rule.CodeDefine, "AlterEventTrigStmt": rule.CodeDefine,
	"CreateExtensionStmt": rule.CodeDefine, "AlterExtensionStmt": rule.CodeDefine,
	"AlterExtensionContentsStmt": rule.CodeDefine, "AlterFunctionStmt": rule.CodeDefine,
	"CreateTransformStmt": rule.CodeDefine, "CreateAmStmt": rule.CodeDefine, "RuleStmt": rule.CodeDefine,

	// Administration and replication.
	"AlterSystemStmt": rule.AdminConfig, "AlterDatabaseSetStmt": rule.AdminConfig,
	"AlterDatabaseStmt": rule.AdminConfig, "AlterTableSpaceOptionsStmt": rule.AdminConfig,
	"CreatePublicationStmt": rule.AdminReplication, "AlterPublicationStmt": rule.AdminReplication,

	// Reach beyond the database.
	"LoadStmt": rule.ReachPlugin, "CreateTableSpaceStmt": rule.ReachFile,
	"CreateForeignServerStmt": rule.ReachNetwork, "AlterForeignServerStmt": rule.ReachNetwork,
	"CreateFdwStmt": rule.ReachNetwork, "AlterFdwStmt": rule.ReachNetwork,
	"CreateUserMappingStmt": rule.ReachNetwork, "AlterUserMappingStmt": rule.ReachNetwork,
	"CreateSubscriptionStmt": rule.ReachNetwork, "AlterSubscriptionStmt": rule.ReachNetwork,
	"ImportForeignSchemaStmt": rule.ReachNetwork,
}

// specialStmts are statement types handled by their own code in special.
var specialStmts = map[string]bool{
	"InsertStmt": true, "UpdateStmt": true, "DeleteStmt": true, "MergeStmt": true, "CopyStmt": true,
	"ExplainStmt": true, "DoStmt": true, "CreateFunctionStmt": true, "CreatePLangStmt": true,
	"VariableSetStmt": true, "AlterTableStmt": true, "RenameStmt": true, "DropStmt": true,
	"CreateRoleStmt": true, "AlterRoleStmt": true, "VacuumStmt": true, "ReindexStmt": true,
	"CreateForeignTableStmt": true, "AlterDomainStmt": true,
}

// secretStmts carry passwords or connection strings in their literals.
var secretStmts = map[string]bool{
	"CreateRoleStmt": true, "AlterRoleStmt": true, "CreateUserMappingStmt": true,
	"AlterUserMappingStmt": true, "CreateForeignServerStmt": true, "AlterForeignServerStmt": true,
	"CreateSubscriptionStmt": true, "AlterSubscriptionStmt": true,
}

// objectStmts name functions as objects rather than calling them.
var objectStmts = map[string]bool{
	"DropStmt": true, "CommentStmt": true, "SecLabelStmt": true, "AlterOwnerStmt": true,
	"AlterObjectSchemaStmt": true, "RenameStmt": true, "AlterObjectDependsStmt": true,
	"AlterExtensionContentsStmt": true,
}

// special applies the meaning of m's type and reports whether it already
// walked m's children.
func (w *walker) special(m proto.Message) bool {
	switch x := m.(type) {
	case *pg.PrepareStmt:
		w.b.Prepared(x.Name)
	case *pg.ExecuteStmt:
		w.b.Executed(x.Name)
	}
	name := string(m.ProtoReflect().Descriptor().Name())
	if strings.HasSuffix(name, "Stmt") && name != "RawStmt" {
		if secretStmts[name] {
			w.markSecret()
		}
		if id, ok := simpleRules[name]; ok {
			if id != "" {
				w.effect(id)
			}
		} else if !specialStmts[name] {
			w.effectAlways(rule.StatementUnclassified)
		}
	}
	if w.specialNode(m) {
		return true
	}
	if objectStmts[name] {
		w.objects++
		w.children(m)
		w.objects--
		return true
	}
	return false
}

// specialNode applies the meaning of node types that need more than a
// fixed rule, and reports whether it walked the children itself.
func (w *walker) specialNode(m proto.Message) bool {
	switch n := m.(type) {
	case *pg.RangeVar:
		w.rangeVar(n)
	case *pg.FuncCall:
		w.funcCall(n)
	case *pg.ObjectWithArgs:
		if w.objects == 0 {
			if id := funcRule(lastName(n.Objname)); id != "" {
				w.effectAlways(id) // CREATE CAST/OPERATOR … pg_read_file, GRANT EXECUTE ON it
			}
		}
	case *pg.DefElem:
		w.defElem(n)
	case *pg.SelectStmt:
		w.with(n.WithClause)
		if n.IntoClause != nil {
			w.effect(rule.DDLCreate)
		}
	case *pg.InsertStmt:
		w.with(n.WithClause)
		w.effect(rule.WriteInsert)
	case *pg.UpdateStmt:
		w.with(n.WithClause)
		w.effect(w.updateRule(n))
	case *pg.DeleteStmt:
		w.with(n.WithClause)
		w.effect(w.deleteRule(n))
	case *pg.MergeStmt:
		w.with(n.WithClause)
		w.effect(w.mergeRule(n))
	case *pg.CopyStmt:
		w.copyStmt(n)
	case *pg.ExplainStmt:
		if optionOn(n.Options, "analyze") {
			w.node(n.Query)
		} else {
			w.plan++
			w.node(n.Query)
			w.plan--
		}
		w.nodes(n.Options)
		return true
	case *pg.DoStmt:
		w.doStmt(n)
	case *pg.CreateFunctionStmt:
		w.createFunction(n)
	case *pg.CreateExtensionStmt:
		// CREATE LANGUAGE plpythonu is parsed as CREATE EXTENSION.
		if id := languageRule(strings.ToLower(n.Extname)); id == rule.ReachProgram {
			w.effectAlways(id)
		}
	case *pg.DefineStmt:
		// CREATE OPERATOR/AGGREGATE/TYPE name the functions they call.
		for _, d := range n.Definition {
			if tn := d.GetDefElem().GetArg().GetTypeName(); tn != nil {
				if id := funcRule(lastName(tn.Names)); id != "" {
					w.effectAlways(id)
				}
			}
		}
	case *pg.GrantRoleStmt:
		if n.IsGrant {
			for _, r := range n.GrantedRoles {
				if id := predefinedRoles[r.GetAccessPriv().GetPrivName()]; id != "" {
					w.effectAlways(id)
				}
			}
		}
	case *pg.CreatePLangStmt:
		w.effectAlways(rule.CodeDefine)
		if id := languageRule(n.Plname); id != rule.CodeDefine {
			w.effectAlways(id)
		}
	case *pg.VariableSetStmt:
		w.variableSet(n)
	case *pg.AlterTableStmt:
		w.alterTable(n)
	case *pg.AlterDomainStmt:
		if n.Subtype == "X" { // DROP CONSTRAINT
			w.effectAlways(rule.SchemaAlterDrop)
		} else {
			w.effectAlways(rule.DDLAlter)
		}
	case *pg.RenameStmt:
		if n.RenameType == pg.ObjectType_OBJECT_ROLE {
			w.effectAlways(rule.PrivilegeRole)
		} else {
			w.effectAlways(rule.SchemaRename)
		}
	case *pg.DropStmt:
		w.dropStmt(n)
	case *pg.CreateRoleStmt, *pg.AlterRoleStmt:
		w.effectAlways(rule.PrivilegeRole)
	case *pg.VacuumStmt:
		if optionOn(n.Options, "full") {
			w.effectAlways(rule.AdminMaintenance)
		} else {
			w.effectAlways(rule.MaintenanceRoutine)
		}
	case *pg.ReindexStmt:
		if optionOn(n.Params, "concurrently") {
			w.effectAlways(rule.MaintenanceRoutine)
		} else {
			w.effectAlways(rule.AdminMaintenance)
		}
	case *pg.CreateForeignTableStmt:
		w.effectAlways(rule.ReachNetwork)
		w.foreignOptions(n.Options)
	}
	return false
}

// defElem looks at options that reach outside the database wherever they
// appear (file_fdw's filename and program, on foreign tables, servers or
// ALTER … OPTIONS).
func (w *walker) defElem(d *pg.DefElem) {
	if d.Defnamespace != "" {
		return
	}
	switch strings.ToLower(d.Defname) {
	case "program":
		if _, ok := defElemString(d); ok {
			w.effectAlways(rule.ReachProgram)
		}
	case "filename":
		if _, ok := defElemString(d); ok {
			w.effectAlways(rule.ReachFile)
		}
	}
}

func (w *walker) foreignOptions(opts []*pg.Node) {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil {
			w.defElem(d)
		}
	}
}

func (w *walker) copyStmt(n *pg.CopyStmt) {
	switch {
	case n.IsProgram:
		w.effectAlways(rule.ReachProgram)
	case n.Filename != "":
		w.effectAlways(rule.ReachFile)
	case n.IsFrom:
		w.effect(rule.WriteInsert)
	}
}

func (w *walker) dropStmt(n *pg.DropStmt) {
	switch {
	case n.RemoveType == pg.ObjectType_OBJECT_POLICY:
		w.effectAlways(rule.PrivilegePolicy)
	case onlyTemp(n):
		w.effectAlways(rule.DDLOther) // pg_temp.x: session-local data only
	default:
		w.effectAlways(rule.SchemaDrop)
	}
	switch n.RemoveType {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
		pg.ObjectType_OBJECT_FOREIGN_TABLE, pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_INDEX:
		for _, o := range n.Objects {
			if l := o.GetList(); l != nil {
				w.table(names(l.Items))
			}
		}
	}
}

// onlyTemp reports whether a DROP TABLE names only tables qualified with
// pg_temp, the session's own temporary schema.
func onlyTemp(n *pg.DropStmt) bool {
	if n.RemoveType != pg.ObjectType_OBJECT_TABLE || len(n.Objects) == 0 || n.Behavior == pg.DropBehavior_DROP_CASCADE {
		return false
	}
	for _, o := range n.Objects {
		l := o.GetList()
		if l == nil || len(l.Items) != 2 || l.Items[0].GetString_().GetSval() != "pg_temp" {
			return false
		}
	}
	return true
}

var alterDropSubtypes = map[pg.AlterTableType]bool{
	pg.AlterTableType_AT_DropColumn:              true,
	pg.AlterTableType_AT_DropConstraint:          true,
	pg.AlterTableType_AT_DetachPartition:         true,
	pg.AlterTableType_AT_DetachPartitionFinalize: true,
	pg.AlterTableType_AT_DropInherit:             true,
	pg.AlterTableType_AT_DropOf:                  true,
}

func (w *walker) alterTable(n *pg.AlterTableStmt) {
	for _, c := range n.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		switch t := cmd.Subtype; {
		case alterDropSubtypes[t]:
			w.effectAlways(rule.SchemaAlterDrop)
		case t == pg.AlterTableType_AT_EnableRowSecurity, t == pg.AlterTableType_AT_DisableRowSecurity,
			t == pg.AlterTableType_AT_ForceRowSecurity, t == pg.AlterTableType_AT_NoForceRowSecurity:
			w.effectAlways(rule.PrivilegePolicy)
		case t == pg.AlterTableType_AT_DisableTrig, t == pg.AlterTableType_AT_DisableTrigAll,
			t == pg.AlterTableType_AT_DisableTrigUser, t == pg.AlterTableType_AT_DisableRule,
			t == pg.AlterTableType_AT_EnableReplicaTrig, t == pg.AlterTableType_AT_EnableReplicaRule:
			w.effectAlways(rule.IntegrityDisable)
		case t == pg.AlterTableType_AT_ChangeOwner:
			w.effectAlways(rule.PrivilegeRole)
		case t == pg.AlterTableType_AT_GenericOptions && n.Objtype == pg.ObjectType_OBJECT_FOREIGN_TABLE:
			w.effectAlways(rule.ReachNetwork)
		default:
			w.effectAlways(rule.DDLAlter)
		}
	}
}

func (w *walker) variableSet(n *pg.VariableSetStmt) {
	name := strings.ToLower(n.Name)
	switch n.Kind {
	case pg.VariableSetKind_VAR_RESET_ALL:
		w.effectAlways(rule.SessionSet)
		return
	case pg.VariableSetKind_VAR_RESET, pg.VariableSetKind_VAR_SET_DEFAULT:
		if id := settingRule(name, "", false, true); id != "" {
			w.effectAlways(id)
		}
		return
	case pg.VariableSetKind_VAR_SET_MULTI:
		// SET TRANSACTION …, SET SESSION CHARACTERISTICS AS TRANSACTION …
		for _, a := range n.Args {
			d := a.GetDefElem()
			if d == nil || d.Defname != "transaction_read_only" {
				continue
			}
			if v, ok := defElemString(d); name == "session characteristics" && (!ok || v == "0" || v == "false") {
				w.effectAlways(rule.SessionReadWrite)
			}
		}
		return
	}
	if strings.Contains(name, "pass") || strings.Contains(name, "conninfo") || strings.Contains(name, "secret") {
		w.markSecret()
	}
	value, known := "", len(n.Args) == 1
	if known {
		value, known = settingValue(n.Args[0])
	}
	if id := settingRule(name, value, known, false); id != "" {
		w.effectAlways(id)
	}
}

// settingValue renders a SET argument (a word, a string or a number).
func settingValue(n *pg.Node) (string, bool) {
	if s, ok := constString(n); ok {
		return s, true
	}
	if c := n.GetAConst(); c != nil {
		switch {
		case c.GetIval() != nil:
			if c.GetIval().Ival == 0 {
				return "0", true
			}
			return "1", true
		case c.GetBoolval() != nil:
			if c.GetBoolval().Boolval {
				return "true", true
			}
			return "false", true
		}
	}
	return "", false
}
