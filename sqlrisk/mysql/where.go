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
	// others names the other tables of a multi-table write by each name a
	// column may qualify them with, mapped to the table's index; linked
	// are those a join condition ties to the target, whose columns are
	// part of the row the write's condition judges.
	others map[string]int
	linked map[int]bool
	// equal maps a linked table's column ("name.col") to the target column
	// a join equates it with (ON b.uid = u.id): WHERE b.uid = 5 bounds u.
	equal map[string]string
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

// joinTree is a multi-table write's FROM: its table sources, and the
// conditions that join them (ON, and USING's columns).
type joinTree struct {
	sources []*ast.TableSource
	on      []ast.ExprNode
	using   []*ast.ColumnName
	natural bool
}

func (j *joinTree) add(n ast.ResultSetNode) {
	switch x := n.(type) {
	case *ast.Join:
		if x.Left != nil {
			j.add(x.Left)
		}
		if x.Right != nil {
			j.add(x.Right)
		}
		if x.On != nil && x.On.Expr != nil {
			j.on = append(j.on, x.On.Expr)
		}
		j.using = append(j.using, x.Using...)
		j.natural = j.natural || x.NaturalJoin
	case *ast.TableSource:
		j.sources = append(j.sources, x)
	}
}

// bound returns the part of a write's WHERE that bounds the rows it
// touches. A multi-table write touches every target row that has a
// partner: its join conditions (ON, USING, NATURAL, and WHERE terms that
// relate the target to another table) bound nothing, so only the other
// terms of WHERE count, on the target's columns or on those of a table
// joined to it.
func (t *target) bound(j *joinTree, where ast.ExprNode) *pred.Expr {
	if len(j.sources) < 2 {
		return t.expr(where)
	}
	t.others, t.linked, t.equal = map[string]int{}, map[int]bool{}, map[string]string{}
	for i, s := range j.sources {
		if tn, ok := s.Source.(*ast.TableName); ok && t.isTarget(tn, s.AsName.L) {
			continue
		}
		if tn, ok := s.Source.(*ast.TableName); ok {
			t.others[tn.Name.L] = i
			if tn.Schema.L != "" {
				t.others[tn.Schema.L+"."+tn.Name.L] = i
			}
		}
		if s.AsName.L != "" {
			t.others[s.AsName.L] = i
		}
	}
	conds := j.on
	terms := conjuncts(where, nil)
	for _, c := range append(conds, terms...) {
		t.link(c)
	}
	if j.natural {
		for _, i := range t.others {
			t.linked[i] = true
		}
	}
	for _, c := range j.using {
		for name, i := range t.others {
			t.linked[i] = true
			t.equal[name+"."+c.Name.L] = c.Name.L
		}
	}
	var parts []*pred.Expr
	for _, c := range terms {
		if len(t.tablesOf(c)) < 2 {
			parts = append(parts, t.expr(c))
		}
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	return &pred.Expr{Kind: pred.And, Args: parts}
}

func (t *target) isTarget(tn *ast.TableName, alias string) bool {
	if alias != "" {
		return t.names[alias]
	}
	return t.names[tn.Name.L] || (tn.Schema.L != "" && t.names[tn.Schema.L+"."+tn.Name.L])
}

// conjuncts splits e at its top-level ANDs.
func conjuncts(e ast.ExprNode, out []ast.ExprNode) []ast.ExprNode {
	switch x := e.(type) {
	case nil:
		return out
	case *ast.ParenthesesExpr:
		return conjuncts(x.Expr, out)
	case *ast.BinaryOperationExpr:
		if x.Op == opcode.LogicAnd {
			return conjuncts(x.R, conjuncts(x.L, out))
		}
	}
	return append(out, e)
}

// link notes a join condition: a term relating the target to another
// table links that table, and an equality of their columns lets the
// other's stand for the target's.
func (t *target) link(c ast.ExprNode) {
	tables := t.tablesOf(c)
	if !tables[-1] {
		return
	}
	for i := range tables {
		if i >= 0 {
			t.linked[i] = true
		}
	}
	b, ok := c.(*ast.BinaryOperationExpr)
	if !ok || (b.Op != opcode.EQ && b.Op != opcode.NullEQ) {
		return
	}
	l, lok := b.L.(*ast.ColumnNameExpr)
	r, rok := b.R.(*ast.ColumnNameExpr)
	if !lok || !rok {
		return
	}
	if t.owner(l.Name) != -1 {
		l, r = r, l
	}
	if t.owner(l.Name) == -1 && t.owner(r.Name) >= 0 {
		t.equal[qualified(r.Name)] = l.Name.Name.L
	}
}

// owner says which table a column belongs to: -1 the target, the index of
// another table, or -2 when unknown (unqualified, or an unknown name).
func (t *target) owner(c *ast.ColumnName) int {
	q := qualifier(c)
	switch {
	case q == "":
		if t.unqualified {
			return -1
		}
		return -2
	case t.names[q]:
		return -1
	}
	if i, ok := t.others[q]; ok {
		return i
	}
	return -2
}

// tablesOf lists the tables whose columns e refers to (-1: the target),
// sub-queries included.
func (t *target) tablesOf(e ast.ExprNode) map[int]bool {
	v := &ownerVisitor{t: t, found: map[int]bool{}}
	e.Accept(v)
	return v.found
}

type ownerVisitor struct {
	t     *target
	found map[int]bool
}

func (v *ownerVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if c, ok := n.(*ast.ColumnNameExpr); ok {
		// Inside a sub-query an unqualified column is the sub-query's own.
		if q := qualifier(c.Name); q != "" || v.t.unqualified {
			if i := v.t.owner(c.Name); i != -2 {
				v.found[i] = true
			}
		}
	}
	return n, false
}

func (v *ownerVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func qualifier(c *ast.ColumnName) string {
	if c.Schema.L != "" {
		return c.Schema.L + "." + c.Table.L
	}
	return c.Table.L
}

func qualified(c *ast.ColumnName) string { return qualifier(c) + "." + c.Name.L }

func (w *walker) deleteRule(x *ast.DeleteStmt) string {
	t := newTarget()
	var j joinTree
	if x.TableRefs != nil && x.TableRefs.TableRefs != nil {
		j.add(x.TableRefs.TableRefs)
	}
	if x.IsMultiTable && x.Tables != nil {
		for _, tn := range x.Tables.Tables {
			t.names[tn.Name.L] = true
			if tn.Schema.L != "" {
				t.names[tn.Schema.L+"."+tn.Name.L] = true
			}
			for _, s := range j.sources { // DELETE a FROM users a …: the alias's table
				if tbl, ok := s.Source.(*ast.TableName); ok && (s.AsName.L == tn.Name.L || tbl.Name.L == tn.Name.L) {
					t.addTable(tbl, s.AsName.O)
				}
			}
		}
	} else {
		for _, s := range j.sources {
			if tbl, ok := s.Source.(*ast.TableName); ok {
				t.addTable(tbl, s.AsName.O)
			}
		}
	}
	if myMode.Unbounded(t.bound(&j, x.Where)) {
		return rule.WriteUnbounded
	}
	return rule.WriteDelete
}

func (w *walker) updateRule(x *ast.UpdateStmt) string {
	t := newTarget()
	var j joinTree
	if x.TableRefs != nil && x.TableRefs.TableRefs != nil {
		j.add(x.TableRefs.TableRefs)
	}
	// The changed tables are those the SET list qualifies; an unqualified
	// column could belong to any of them.
	qualified := map[string]bool{}
	all := len(j.sources) == 1
	for _, a := range x.List {
		if a.Column == nil || a.Column.Table.L == "" {
			all = true
			continue
		}
		qualified[a.Column.Table.L] = true
	}
	for _, s := range j.sources {
		tbl, ok := s.Source.(*ast.TableName)
		if !ok {
			continue
		}
		if all || qualified[tbl.Name.L] || (s.AsName.L != "" && qualified[s.AsName.L]) {
			t.addTable(tbl, s.AsName.O)
		}
	}
	if all && len(j.sources) > 1 {
		// Any table may be changed: judge each as the target in turn, and
		// take the worst.
		for _, s := range j.sources {
			tbl, ok := s.Source.(*ast.TableName)
			if !ok {
				continue
			}
			one := newTarget()
			one.addTable(tbl, s.AsName.O)
			if myMode.Unbounded(one.bound(&j, x.Where)) {
				return rule.WriteUnbounded
			}
		}
		return rule.WriteUpdate
	}
	if myMode.Unbounded(t.bound(&j, x.Where)) {
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
		// A LIMIT picks arbitrary rows: it bounds nothing.
		return s.From != nil && (s.Where == nil || myMode.Unbounded(newTarget().expr(s.Where)))
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
	if col, ok := t.equal[qual+"."+c.Name.L]; ok {
		return &pred.Expr{Kind: pred.Column, Key: col, Target: true}
	}
	if i, ok := t.others[qual]; ok && t.linked[i] {
		// A joined table's column is part of the row a write's condition
		// judges: a filter on it is a real predicate.
		return &pred.Expr{Kind: pred.Column, Key: qual + "." + c.Name.L, Target: true}
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
	case *ast.ExistsSubqueryExpr:
		if t.onlyLinks(x.Sel) {
			return &pred.Expr{Kind: pred.Opaque}
		}
	case *ast.PatternInExpr:
		in := &pred.Expr{Kind: pred.In, Args: []*pred.Expr{t.expr(x.Expr)}}
		if x.Sel != nil {
			if t.onlyLinks(x.Sel) && t.selectsAllOf(x.Sel) == "" {
				// A semi-join (id IN (SELECT uid FROM banned)) reaches every
				// row that has a partner, as a join does.
				return &pred.Expr{Kind: pred.Opaque}
			}
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

// onlyLinks reports whether sub, a sub-query, restricts nothing but which
// rows have a partner: no HAVING, and a WHERE (if any) of terms that each
// relate the target's columns to the sub-query's own. A LIMIT picks
// arbitrary rows and bounds nothing.
func (t *target) onlyLinks(sub ast.ExprNode) bool {
	sq, ok := sub.(*ast.SubqueryExpr)
	if !ok {
		return false
	}
	sel, ok := sq.Query.(*ast.SelectStmt)
	if !ok || sel.Having != nil || sel.From == nil {
		return false
	}
	for _, c := range conjuncts(sel.Where, nil) {
		v := &linkVisitor{t: t}
		c.Accept(v)
		if !v.outer || !v.inner {
			return false
		}
	}
	return true
}

// linkVisitor finds, in a sub-query's term, columns of the target (outer)
// and of the sub-query's own tables (inner).
type linkVisitor struct {
	t            *target
	outer, inner bool
}

func (v *linkVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if c, ok := n.(*ast.ColumnNameExpr); ok {
		if q := qualifier(c.Name); q != "" && v.t.names[q] {
			v.outer = true
		} else {
			v.inner = true
		}
	}
	return n, false
}

func (v *linkVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

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
