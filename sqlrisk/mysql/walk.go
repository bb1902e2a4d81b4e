package mysql

import (
	"reflect"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// walker classifies statements with the TiDB AST's own visitor, which
// reaches every expression of a statement: select lists, WHERE, VALUES,
// ORDER BY, sub-queries, derived tables, function arguments, column
// defaults, generated columns and procedure bodies.
type walker struct {
	a    *Analyzer
	b    *rule.Builder
	mode lexMode
	nest int
	top  bool

	plan   int  // > 0 inside a plain EXPLAIN
	secret bool // the statement being walked carries credentials
	ctes   map[string]bool
	stack  []ast.Node
}

// walkAll walks statements and reports whether any carries secrets.
func (w *walker) walkAll(nodes []ast.StmtNode) bool {
	secret := false
	for _, n := range nodes {
		if w.walk(n) {
			secret = true
		}
	}
	return secret
}

// walk classifies one top-level statement and reports whether it carries
// secrets found only by analysis (SQL inside a literal).
func (w *walker) walk(n ast.StmtNode) bool {
	w.secret = false
	w.ctes = nil
	if w.top {
		w.b.Statement(kindOf(n))
	}
	n.Accept(w)
	return w.secret
}

// Enter implements ast.Visitor.
func (w *walker) Enter(n ast.Node) (ast.Node, bool) {
	w.stack = append(w.stack, n)
	if len(w.stack) > maxChain+1000 {
		w.b.Hit(rule.ParseError)
		return n, true
	}
	w.node(n)
	if isProcedurePart(n) {
		w.procedurePart(n)
	}
	return n, false
}

// Leave implements ast.Visitor.
func (w *walker) Leave(n ast.Node) (ast.Node, bool) {
	if e, ok := n.(*ast.ExplainStmt); ok && !e.Analyze {
		w.plan--
	}
	w.stack = w.stack[:len(w.stack)-1]
	return n, true
}

// effect records a rule that applies only when the statement runs.
func (w *walker) effect(id string) {
	if w.plan == 0 {
		w.b.Hit(id)
	}
}

func (w *walker) hit(id string) { w.b.Hit(id) }

func (w *walker) table(t *ast.TableName) {
	name := t.Name.O
	if t.Schema.O == "" && w.ctes[t.Name.L] {
		return
	}
	if t.Schema.O != "" {
		name = t.Schema.O + "." + name
	}
	if w.top {
		w.b.Table(name)
	}
	if credentialTable(t.Schema.L, t.Name.L) {
		w.hit(rule.ReadCredentials)
	}
}

func (w *walker) with(wc *ast.WithClause) {
	if wc == nil {
		return
	}
	for _, c := range wc.CTEs {
		if w.ctes == nil {
			w.ctes = map[string]bool{}
		}
		w.ctes[c.Name.L] = true
	}
}

// node applies the meaning of n's type.
func (w *walker) node(n ast.Node) {
	switch x := n.(type) {
	case *ast.TableName:
		w.table(x)
	case *ast.FuncCallExpr:
		if id := funcRule(x.FnName.L); id != "" {
			w.hit(id)
		}
	case *ast.VariableAssignment:
		w.variable(x)
	case *ast.SelectStmt:
		w.with(x.With)
		if x.SelectStmtOpts != nil {
			w.hints(x.TableHints)
		}
		if x.SelectIntoOpt != nil && x.SelectIntoOpt.Tp != ast.SelectIntoVars {
			w.hit(rule.ReachFile)
		}
	case *ast.SetOprStmt:
		w.with(x.With)
	case *ast.InsertStmt:
		w.hints(x.TableHints)
		w.effect(w.insertRule(x))
	case *ast.DeleteStmt:
		w.with(x.With)
		w.hints(x.TableHints)
		w.effect(w.deleteRule(x))
	case *ast.UpdateStmt:
		w.with(x.With)
		w.hints(x.TableHints)
		w.effect(w.updateRule(x))
	case *ast.ExplainStmt:
		if !x.Analyze {
			w.plan++
		}
	case *ast.PrepareStmt:
		// Statement names are case-insensitive: the server's own form is
		// lower case.
		w.b.Prepared(strings.ToLower(x.Name))
		if x.SQLVar != nil || x.SQLText == "" {
			w.hit(rule.CodeDynamic)
		} else if w.nested(x.SQLText) {
			w.secret = true
		}
	case *ast.AlterTableStmt:
		w.alterTable(x)
	case *ast.DropTableStmt:
		if x.TemporaryKeyword != ast.TemporaryNone && !x.IsView {
			w.hit(rule.DDLOther) // DROP TEMPORARY TABLE: session-local data only
		} else {
			w.hit(rule.SchemaDrop)
		}
	case *ast.ShowStmt:
		if x.Tp == ast.ShowCreateUser {
			w.hit(rule.ReadCredentials)
		}
	case *ast.KillStmt:
		w.hit(rule.AdminKill)
	case *ast.ExecuteStmt:
		w.b.Executed(strings.ToLower(x.Name))
		w.effect(rule.CodeExecute)
	case *ast.CreateTableStmt:
		w.effect(rule.DDLCreate)
		w.tableOptions(x.Options)
	case ast.StmtNode:
		if id, ok := stmtRule(x); ok {
			if id != "" {
				w.effect(id)
			}
		} else {
			w.hit(rule.StatementUnclassified)
		}
	}
}

// hints classifies optimizer hints (the AST visitor does not reach them):
// SET_VAR changes a session variable for the statement
// (SET_VAR(foreign_key_checks=OFF) disables integrity checks).
func (w *walker) hints(hs []*ast.TableOptimizerHint) {
	for _, h := range hs {
		if h != nil && h.HintName.L == "set_var" {
			w.hint(h)
		}
	}
}

func (w *walker) hint(h *ast.TableOptimizerHint) {
	sv, ok := h.HintData.(ast.HintSetVar)
	if !ok {
		w.hit(rule.SessionSet)
		return
	}
	if id := settingRule(strings.ToLower(sv.VarName), sv.Value, true); id != "" {
		w.hit(id)
	}
}

// variable classifies one assignment of a SET statement.
func (w *walker) variable(v *ast.VariableAssignment) {
	name := strings.ToLower(v.Name)
	switch {
	case !v.IsSystem:
		return // a user variable (@x): data, its expression is walked
	case v.IsGlobal || v.IsInstance:
		w.hit(rule.AdminConfig)
		if id := globalReach(name); id != "" {
			w.hit(id)
		}
		return
	}
	value, known := exprText(v.Value)
	if id := settingRule(name, value, known); id != "" {
		w.hit(id)
	}
}

func (w *walker) alterTable(x *ast.AlterTableStmt) {
	for _, s := range x.Specs {
		w.hit(alterSpecRule(s.Tp))
		w.tableOptions(s.Options)
	}
}

// tableOptions looks at storage engines with effects beyond a table:
// BLACKHOLE discards every row, FEDERATED and CONNECT reach other servers
// or files.
func (w *walker) tableOptions(opts []*ast.TableOption) {
	for _, o := range opts {
		if o == nil {
			continue
		}
		switch o.Tp {
		case ast.TableOptionEngine:
			switch strings.ToLower(o.StrValue) {
			case "blackhole":
				w.hit(rule.SchemaAlterDrop)
			case "federated", "federatedx", "connect", "spider":
				w.hit(rule.ReachNetwork)
			}
		case ast.TableOptionConnection:
			w.hit(rule.ReachNetwork)
		case ast.TableOptionDataDirectory, ast.TableOptionIndexDirectory:
			w.hit(rule.ReachFile) // table files placed where the statement says
		}
	}
}

// isProcedurePart reports whether n is part of a stored program body; the
// TiDB AST's Accept does not descend into the statements of those nodes.
func isProcedurePart(n ast.Node) bool {
	t := reflect.TypeOf(n)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return false
	}
	name := t.Elem().Name()
	return strings.HasPrefix(name, "Procedure") || strings.HasSuffix(name, "WhenThenStmt") || strings.HasSuffix(name, "CaseStmt")
}

var (
	nodeType     = reflect.TypeOf((*ast.Node)(nil)).Elem()
	stmtNodeType = reflect.TypeOf((*ast.StmtNode)(nil)).Elem()
	exprNodeType = reflect.TypeOf((*ast.ExprNode)(nil)).Elem()
)

// procedurePart visits every statement and expression a stored-program node
// holds (fields of node types, and slices of them). Visiting a child twice is
// harmless: rules and tables are sets.
func (w *walker) procedurePart(n ast.Node) {
	v := reflect.ValueOf(n).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch {
		case f.Kind() == reflect.Interface && (f.Type() == stmtNodeType || f.Type() == exprNodeType || f.Type().Implements(nodeType)):
			if !f.IsNil() {
				if c, ok := f.Interface().(ast.Node); ok {
					c.Accept(w)
				}
			}
		case f.Kind() == reflect.Pointer && f.Type().Implements(nodeType):
			if !f.IsNil() {
				f.Interface().(ast.Node).Accept(w)
			}
		case f.Kind() == reflect.Slice:
			for j := 0; j < f.Len(); j++ {
				e := f.Index(j)
				if (e.Kind() == reflect.Interface || e.Kind() == reflect.Pointer) && !e.IsNil() {
					if c, ok := e.Interface().(ast.Node); ok {
						c.Accept(w)
					}
				}
			}
		}
	}
}
