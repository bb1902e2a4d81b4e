package mysql

import (
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/airlock-gw/airlock/sqlrisk/internal/pred"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

var myMode = pred.Mode{MySQL: true}

// target names the tables a write changes, as its columns may be qualified
// (alias, name, schema.name; compared case-insensitively).
type target struct {
	names       map[string]bool
	tables      map[string]bool
	unqualified bool
}

func newTarget() *target {
	return &target{names: map[string]bool{}, tables: map[string]bool{}, unqualified: true}
}

func (t *target) addTable(tn *ast.TableName, alias string) {
	t.names[tn.Name.L] = true
	t.tables[tn.Name.L] = true
	if tn.Schema.L != "" {
		t.names[tn.Schema.L+"."+tn.Name.L] = true
	}
	if alias != "" {
		t.names[strings.ToLower(alias)] = true
	}
}

// sources lists the table sources of a FROM/join tree and the ON
// conditions that join them.
func sources(n ast.ResultSetNode, out *[]*ast.TableSource, on *[]ast.ExprNode) {
	switch x := n.(type) {
	case *ast.Join:
		if x.Left != nil {
			sources(x.Left, out, on)
		}
		if x.Right != nil {
			sources(x.Right, out, on)
		}
		if x.On != nil && x.On.Expr != nil {
			*on = append(*on, x.On.Expr)
		}
	case *ast.TableSource:
		*out = append(*out, x)
	}
}

// condition joins WHERE and the ON conditions of the join tree: together
// they decide which rows a multi-table write reaches.
func condition(t *target, where ast.ExprNode, on []ast.ExprNode) *pred.Expr {
	var parts []*pred.Expr
	if where != nil {
		parts = append(parts, t.expr(where))
	}
	for _, e := range on {
		parts = append(parts, t.expr(e))
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	return &pred.Expr{Kind: pred.And, Args: parts}
}

func (w *walker) deleteRule(x *ast.DeleteStmt) string {
	t := newTarget()
	var srcs []*ast.TableSource
	var on []ast.ExprNode
	if x.TableRefs != nil && x.TableRefs.TableRefs != nil {
		sources(x.TableRefs.TableRefs, &srcs, &on)
	}
	if x.IsMultiTable && x.Tables != nil {
		for _, tn := range x.Tables.Tables {
			t.names[tn.Name.L] = true
			if tn.Schema.L != "" {
				t.names[tn.Schema.L+"."+tn.Name.L] = true
			}
			for _, s := range srcs { // DELETE a FROM users a …: the alias's table
				if tbl, ok := s.Source.(*ast.TableName); ok && (s.AsName.L == tn.Name.L || tbl.Name.L == tn.Name.L) {
					t.addTable(tbl, s.AsName.O)
				}
			}
		}
	} else {
		for _, s := range srcs {
			if tbl, ok := s.Source.(*ast.TableName); ok {
				t.addTable(tbl, s.AsName.O)
			}
		}
	}
	if myMode.Unbounded(condition(t, x.Where, on)) {
		return rule.WriteUnbounded
	}
	return rule.WriteDelete
}

func (w *walker) updateRule(x *ast.UpdateStmt) string {
	t := newTarget()
	var srcs []*ast.TableSource
	var on []ast.ExprNode
	if x.TableRefs != nil && x.TableRefs.TableRefs != nil {
		sources(x.TableRefs.TableRefs, &srcs, &on)
	}
	// The changed tables are those the SET list qualifies; an unqualified
	// column could belong to any of them.
	qualified := map[string]bool{}
	all := len(srcs) == 1
	for _, a := range x.List {
		if a.Column == nil || a.Column.Table.L == "" {
			all = true
			continue
		}
		qualified[a.Column.Table.L] = true
	}
	for _, s := range srcs {
		tbl, ok := s.Source.(*ast.TableName)
		if !ok {
			continue
		}
		if all || qualified[tbl.Name.L] || (s.AsName.L != "" && qualified[s.AsName.L]) {
			t.addTable(tbl, s.AsName.O)
		}
	}
	if myMode.Unbounded(condition(t, x.Where, on)) {
		return rule.WriteUnbounded
	}
	return rule.WriteUpdate
}

// insertRule: REPLACE deletes every row that conflicts with a new one, so
// REPLACE … SELECT from a table without WHERE or LIMIT can rewrite the whole
// target.
func (w *walker) insertRule(x *ast.InsertStmt) string {
	if x.IsReplace && x.Select != nil && selectsAll(x.Select) {
		return rule.WriteUnbounded
	}
	return rule.WriteInsert
}

func selectsAll(n ast.ResultSetNode) bool {
	switch s := n.(type) {
	case *ast.SelectStmt:
		return s.From != nil && s.Limit == nil && (s.Where == nil || myMode.Unbounded(newTarget().expr(s.Where)))
	case *ast.SetOprStmt:
		return true
	}
	return false
}

func (t *target) column(c *ast.ColumnName) *pred.Expr {
	qual := c.Table.L
	if c.Schema.L != "" {
		qual = c.Schema.L + "." + qual
	}
	switch {
	case qual == "" && t.unqualified:
		return &pred.Expr{Kind: pred.Column, Key: c.Name.L, Target: true}
	case qual == "":
		return &pred.Expr{Kind: pred.Column, Key: "?." + c.Name.L}
	case t.names[qual]:
		return &pred.Expr{Kind: pred.Column, Key: c.Name.L, Target: true}
	}
	return &pred.Expr{Kind: pred.Column, Key: qual + "." + c.Name.L}
}

var cmpOps = map[opcode.Op]string{
	opcode.EQ: "=", opcode.NE: "<>", opcode.LT: "<", opcode.GT: ">", opcode.LE: "<=", opcode.GE: ">=",
	opcode.NullEQ: "is not distinct",
}

func (t *target) expr(e ast.ExprNode) *pred.Expr {
	switch x := e.(type) {
	case nil:
		return nil
	case *driver.ValueExpr:
		return valueExpr(x)
	case *ast.ColumnNameExpr:
		return t.column(x.Name)
	case *ast.ParenthesesExpr:
		return t.expr(x.Expr)
	case *ast.BinaryOperationExpr:
		switch x.Op {
		case opcode.LogicAnd:
			return &pred.Expr{Kind: pred.And, Args: []*pred.Expr{t.expr(x.L), t.expr(x.R)}}
		case opcode.LogicOr:
			return &pred.Expr{Kind: pred.Or, Args: []*pred.Expr{t.expr(x.L), t.expr(x.R)}}
		}
		if op, ok := cmpOps[x.Op]; ok {
			return &pred.Expr{Kind: pred.Cmp, Op: op, Args: []*pred.Expr{t.expr(x.L), t.expr(x.R)}}
		}
		switch x.Op {
		case opcode.Plus, opcode.Minus, opcode.Mul, opcode.Div, opcode.Mod, opcode.IntDiv:
			return &pred.Expr{Kind: pred.Func, Op: x.Op.String(), Args: []*pred.Expr{t.expr(x.L), t.expr(x.R)}}
		}
	case *ast.FuncCallExpr:
		if pred.Deterministic[x.FnName.L] {
			e := &pred.Expr{Kind: pred.Func, Op: x.FnName.L}
			for _, a := range x.Args {
				e.Args = append(e.Args, t.expr(a))
			}
			return e
		}
	case *ast.UnaryOperationExpr:
		switch x.Op {
		case opcode.Not, opcode.Not2:
			return &pred.Expr{Kind: pred.Not, Args: []*pred.Expr{t.expr(x.V)}}
		case opcode.Minus:
			if v := t.expr(x.V); v != nil && v.Kind == pred.Const && v.Val.Kind == pred.Num {
				return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Num, N: -v.Val.N}}
			}
		case opcode.Plus:
			return t.expr(x.V)
		}
	case *ast.IsNullExpr:
		k := pred.IsNull
		if x.Not {
			k = pred.IsNotNull
		}
		return &pred.Expr{Kind: k, Args: []*pred.Expr{t.expr(x.Expr)}}
	case *ast.IsTruthExpr:
		op := map[[2]bool]string{{true, false}: "true", {true, true}: "not true", {false, false}: "false", {false, true}: "not false"}[[2]bool{x.True != 0, x.Not}]
		return &pred.Expr{Kind: pred.BoolTest, Op: op, Args: []*pred.Expr{t.expr(x.Expr)}}
	case *ast.PatternLikeOrIlikeExpr:
		like := &pred.Expr{Kind: pred.Like, Op: "like", Args: []*pred.Expr{t.expr(x.Expr), t.expr(x.Pattern)}}
		if x.Not {
			return &pred.Expr{Kind: pred.Not, Args: []*pred.Expr{like}}
		}
		return like
	case *ast.PatternRegexpExpr:
		re := &pred.Expr{Kind: pred.Like, Op: "regex", Args: []*pred.Expr{t.expr(x.Expr), t.expr(x.Pattern)}}
		if x.Not {
			return &pred.Expr{Kind: pred.Not, Args: []*pred.Expr{re}}
		}
		return re
	case *ast.PatternInExpr:
		in := &pred.Expr{Kind: pred.In, Args: []*pred.Expr{t.expr(x.Expr)}}
		if x.Sel != nil {
			if col := t.selectsAllOf(x.Sel); col != "" {
				in.Args = append(in.Args, &pred.Expr{Kind: pred.SubSelectAll, Key: col})
			} else {
				in.Args = append(in.Args, &pred.Expr{Kind: pred.Opaque, Refs: t.refs(x.Sel)})
			}
		}
		for _, item := range x.List {
			in.Args = append(in.Args, t.expr(item))
		}
		if x.Not {
			return &pred.Expr{Kind: pred.Not, Args: []*pred.Expr{in}}
		}
		return in
	}
	return &pred.Expr{Kind: pred.Opaque, Refs: t.refs(e)}
}

func valueExpr(v *driver.ValueExpr) *pred.Expr {
	switch v.Kind() {
	case driver.KindNull:
		return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Null}}
	case driver.KindInt64:
		return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Num, N: float64(v.GetInt64())}}
	case driver.KindUint64:
		return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Num, N: float64(v.GetUint64())}}
	case driver.KindFloat32, driver.KindFloat64:
		return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Num, N: v.GetFloat64()}}
	case driver.KindMysqlDecimal:
		f, err := strconv.ParseFloat(v.GetMysqlDecimal().String(), 64)
		if err != nil {
			return &pred.Expr{Kind: pred.Opaque}
		}
		return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Num, N: f}}
	case driver.KindString, driver.KindBytes:
		return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Str, S: v.GetString()}}
	}
	return &pred.Expr{Kind: pred.Opaque}
}

// selectsAllOf returns the column when sub is (SELECT col FROM target) with
// no filter, grouping or limit.
func (t *target) selectsAllOf(sub ast.ExprNode) string {
	sq, ok := sub.(*ast.SubqueryExpr)
	if !ok {
		return ""
	}
	sel, ok := sq.Query.(*ast.SelectStmt)
	if !ok || sel.Where != nil || sel.Having != nil || sel.Limit != nil || sel.GroupBy != nil ||
		sel.From == nil || sel.From.TableRefs == nil || sel.Fields == nil || len(sel.Fields.Fields) != 1 {
		return ""
	}
	j := sel.From.TableRefs
	if j.Right != nil {
		return ""
	}
	ts, ok := j.Left.(*ast.TableSource)
	if !ok {
		return ""
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok || !t.tables[tn.Name.L] {
		return ""
	}
	c, ok := sel.Fields.Fields[0].Expr.(*ast.ColumnNameExpr)
	if !ok {
		return ""
	}
	return c.Name.Name.L
}

// refs reports whether any column under e resolves to the target. Inside a
// sub-query with its own FROM only qualified references count.
func (t *target) refs(e ast.Node) bool {
	v := &refVisitor{t: t, unq: []bool{t.unqualified}}
	e.Accept(v)
	return v.found
}

type refVisitor struct {
	t     *target
	unq   []bool
	found bool
}

func (v *refVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if v.found {
		return n, true
	}
	switch x := n.(type) {
	case *ast.SelectStmt:
		v.unq = append(v.unq, v.unq[len(v.unq)-1] && x.From == nil)
	case *ast.ColumnNameExpr:
		tt := *v.t
		tt.unqualified = v.unq[len(v.unq)-1]
		if tt.column(x.Name).Target {
			v.found = true
		}
	}
	return n, false
}

func (v *refVisitor) Leave(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*ast.SelectStmt); ok && len(v.unq) > 1 {
		v.unq = v.unq[:len(v.unq)-1]
	}
	return n, true
}
