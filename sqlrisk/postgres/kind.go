package postgres

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-gw/airlock/sqlrisk/internal/kindname"
)

// kindOf names a top-level statement's kind: "select", "delete",
// "drop_table", "create_function", "begin", …
func kindOf(n *pg.Node) string {
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		if x.SelectStmt.IntoClause != nil {
			return "select_into"
		}
		return "select"
	case *pg.Node_DropStmt:
		return "drop_" + objectKind(x.DropStmt.RemoveType)
	case *pg.Node_CreateStmt:
		return "create_table"
	case *pg.Node_IndexStmt:
		return "create_index"
	case *pg.Node_ViewStmt:
		return "create_view"
	case *pg.Node_CreatedbStmt:
		return "create_database"
	case *pg.Node_DropdbStmt:
		return "drop_database"
	case *pg.Node_CreateSeqStmt:
		return "create_sequence"
	case *pg.Node_CreateTableAsStmt:
		if x.CreateTableAsStmt.Objtype == pg.ObjectType_OBJECT_MATVIEW {
			return "create_materialized_view"
		}
		return "create_table_as"
	case *pg.Node_CreateFunctionStmt:
		if x.CreateFunctionStmt.IsProcedure {
			return "create_procedure"
		}
		return "create_function"
	case *pg.Node_CreateTrigStmt:
		return "create_trigger"
	case *pg.Node_RuleStmt:
		return "create_rule"
	case *pg.Node_CreateRoleStmt:
		return "create_" + strings.ToLower(strings.TrimPrefix(x.CreateRoleStmt.StmtType.String(), "ROLESTMT_"))
	case *pg.Node_AlterTableStmt:
		return "alter_" + objectKind(x.AlterTableStmt.Objtype)
	case *pg.Node_RenameStmt:
		return "rename_" + objectKind(x.RenameStmt.RenameType)
	case *pg.Node_GrantStmt:
		if x.GrantStmt.IsGrant {
			return "grant"
		}
		return "revoke"
	case *pg.Node_GrantRoleStmt:
		if x.GrantRoleStmt.IsGrant {
			return "grant_role"
		}
		return "revoke_role"
	case *pg.Node_TransactionStmt:
		return strings.ToLower(strings.TrimPrefix(x.TransactionStmt.Kind.String(), "TRANS_STMT_"))
	case *pg.Node_VariableSetStmt:
		switch x.VariableSetStmt.Kind {
		case pg.VariableSetKind_VAR_RESET, pg.VariableSetKind_VAR_RESET_ALL:
			return "reset"
		}
		return "set"
	case *pg.Node_VariableShowStmt:
		return "show"
	case *pg.Node_VacuumStmt:
		if x.VacuumStmt.IsVacuumcmd {
			return "vacuum"
		}
		return "analyze"
	case *pg.Node_DoStmt:
		return "do"
	case *pg.Node_CheckPointStmt:
		return "checkpoint"
	case *pg.Node_DeclareCursorStmt:
		return "declare_cursor"
	case *pg.Node_FetchStmt:
		if x.FetchStmt.Ismove {
			return "move"
		}
		return "fetch"
	case *pg.Node_ClosePortalStmt:
		return "close"
	}
	if n == nil || n.GetNode() == nil {
		return "empty"
	}
	r := n.ProtoReflect()
	fd := r.WhichOneof(nodeOneof)
	return kindname.Snake(strings.TrimSuffix(string(fd.Message().Name()), "Stmt"))
}

func objectKind(t pg.ObjectType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "OBJECT_"))
}
