package postgres

import (
	"slices"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-gw/airlock/sqlrisk/internal/pred"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

var pgMode = pred.Mode{}

// unbounded judges a write's condition and notes whether the judgement could
// depend on literal values.
func (w *walker) unbounded(where *pred.Expr) bool {
	if !pred.LiteralFree(where) {
		w.literal = true
	}
	return pgMode.Unbounded(where)
}

func (w *walker) updateRule(n *pg.UpdateStmt) string {
	if w.unbounded(newTarget(n.Relation).bound(n.FromClause, n.WhereClause)) {
		return rule.WriteUnbounded
	}
	return rule.WriteUpdate
}

func (w *walker) deleteRule(n *pg.DeleteStmt) string {
	if w.unbounded(newTarget(n.Relation).bound(n.UsingClause, n.WhereClause)) {
		return rule.WriteUnbounded
	}
	return rule.WriteDelete
}

// bound returns the part of a write's WHERE that bounds the rows it
// touches. UPDATE … FROM and DELETE … USING touch every target row that
// has a partner: the WHERE terms that relate the target to another table
// (the join condition) bound nothing, so only the other terms count, on
// the target's columns or on those of a table joined to it.
func (t *target) bound(from []*pg.Node, where *pg.Node) *pred.Expr {
	if len(from) == 0 {
		return t.expr(where)
	}
	t.others, t.linked, t.equal = map[string]int{}, map[int]bool{}, map[string]string{}
	for _, f := range from {
		t.addOther(f)
	}
	terms := conjuncts(where, nil)
	for _, c := range terms {
		t.link(c)
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

// addOther names a FROM/USING item by each name its columns may be
// qualified with; a join inside it names both sides.
func (t *target) addOther(n *pg.Node) {
	i := len(t.others)
	switch {
	case n.GetRangeVar() != nil:
		rv := n.GetRangeVar()
		t.others[rv.Relname] = i
		if rv.Schemaname != "" {
			t.others[rv.Schemaname+"."+rv.Relname] = i
		}
		if rv.Alias != nil && rv.Alias.Aliasname != "" {
			t.others[rv.Alias.Aliasname] = i
		}
	case n.GetJoinExpr() != nil:
		t.addOther(n.GetJoinExpr().Larg)
		t.addOther(n.GetJoinExpr().Rarg)
	case n.GetRangeSubselect() != nil && n.GetRangeSubselect().Alias != nil:
		t.others[n.GetRangeSubselect().Alias.Aliasname] = i
	case n.GetRangeFunction() != nil && n.GetRangeFunction().Alias != nil:
		t.others[n.GetRangeFunction().Alias.Aliasname] = i
	}
}

// conjuncts splits n at its top-level ANDs.
func conjuncts(n *pg.Node, out []*pg.Node) []*pg.Node {
	if n == nil {
		return out
	}
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg.BoolExprType_AND_EXPR {
		for _, a := range b.Args {
			out = conjuncts(a, out)
		}
		return out
	}
	return append(out, n)
}

// link notes a join condition: a term relating the target to another
// table links that table, and an equality of their columns lets the
// other's stand for the target's.
func (t *target) link(c *pg.Node) {
	tables := t.tablesOf(c)
	if !tables[-1] {
		return
	}
	for i := range tables {
		if i >= 0 {
			t.linked[i] = true
		}
	}
	a := c.GetAExpr()
	if a == nil || a.Kind != pg.A_Expr_Kind_AEXPR_OP || lastName(a.Name) != "=" ||
		a.Lexpr.GetColumnRef() == nil || a.Rexpr.GetColumnRef() == nil {
		return
	}
	l, r := a.Lexpr.GetColumnRef().Fields, a.Rexpr.GetColumnRef().Fields
	if t.owner(l) != -1 {
		l, r = r, l
	}
	if t.owner(l) == -1 && t.owner(r) >= 0 {
		q, col := splitRef(r)
		_, tcol := splitRef(l)
		t.equal[q+"."+col] = tcol
	}
}

// splitRef returns a column reference's qualifier and name.
func splitRef(fields []*pg.Node) (string, string) {
	var parts []string
	for _, f := range fields {
		if s := f.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		} else {
			parts = append(parts, "*")
		}
	}
	if len(parts) == 0 {
		return "", ""
	}
	return strings.Join(parts[:len(parts)-1], "."), parts[len(parts)-1]
}

// owner says which table a column belongs to: -1 the target, the index of
// another table, or -2 when unknown (unqualified, or an unknown name).
func (t *target) owner(fields []*pg.Node) int {
	q, _ := splitRef(fields)
	if q == "" {
		if t.unqualified {
			return -1
		}
		return -2
	}
	if slices.Contains(t.names, q) {
		return -1
	}
	if i, ok := t.others[q]; ok {
		return i
	}
	return -2
}

// tablesOf lists the tables whose columns n refers to (-1: the target);
// inside a sub-query with its own FROM only qualified references count.
func (t *target) tablesOf(n *pg.Node) map[int]bool {
	found := map[int]bool{}
	var walk func(m proto.Message, unq bool)
	walk = func(m proto.Message, unq bool) {
		if m == nil {
			return
		}
		switch x := m.(type) {
		case *pg.Node:
			r := x.ProtoReflect()
			if fd := r.WhichOneof(nodeOneof); fd != nil {
				walk(r.Get(fd).Message().Interface(), unq)
			}
			return
		case *pg.ColumnRef:
			if q, _ := splitRef(x.Fields); q != "" || unq {
				if i := t.owner(x.Fields); i != -2 {
					found[i] = true
				}
			}
			return
		case *pg.SelectStmt:
			if len(x.FromClause) > 0 {
				unq = false
			}
		}
		r := m.ProtoReflect()
		for _, fd := range fieldsOf(r.Descriptor()) {
			if !r.Has(fd) {
				continue
			}
			v := r.Get(fd)
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message().Interface(), unq)
				}
				continue
			}
			walk(v.Message().Interface(), unq)
		}
	}
	walk(n, t.unqualified)
	return found
}

// onlyLinks reports whether sel, a sub-query, restricts nothing but which
// rows have a partner: no HAVING, and a WHERE (if any) of terms that each
// relate the target's columns to the sub-query's own. A LIMIT picks
// arbitrary rows and bounds nothing.
func (t *target) onlyLinks(sel *pg.SelectStmt) bool {
	if sel == nil || sel.HavingClause != nil || len(sel.FromClause) == 0 || sel.Op != pg.SetOperation_SETOP_NONE {
		return false
	}
	for _, c := range conjuncts(sel.WhereClause, nil) {
		inner := *t
		inner.unqualified, inner.others = false, nil
		outer := inner.tablesOf(c)[-1]
		other := false
		walkRefs(c, func(fields []*pg.Node) {
			if q, _ := splitRef(fields); q == "" || !slices.Contains(t.names, q) {
				other = true
			}
		})
		if !outer || !other {
			return false
		}
	}
	return true
}

// walkRefs calls f with every column reference under n.
func walkRefs(n proto.Message, f func([]*pg.Node)) {
	if n == nil {
		return
	}
	if c, ok := n.(*pg.ColumnRef); ok {
		f(c.Fields)
		return
	}
	if x, ok := n.(*pg.Node); ok {
		r := x.ProtoReflect()
		if fd := r.WhichOneof(nodeOneof); fd != nil {
			walkRefs(r.Get(fd).Message().Interface(), f)
		}
		return
	}
	r := n.ProtoReflect()
	for _, fd := range fieldsOf(r.Descriptor()) {
		if !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkRefs(l.Get(i).Message().Interface(), f)
			}
			continue
		}
		walkRefs(v.Message().Interface(), f)
	}
}

// mergeRule judges each WHEN clause that updates or deletes: a MATCHED
// clause is bounded by the join condition or its own AND condition; a NOT
// MATCHED BY SOURCE clause touches every target row without a partner, so
// only its own condition bounds it.
func (w *walker) mergeRule(n *pg.MergeStmt) string {
	t := newTarget(n.Relation)
	onBounded := !w.unbounded(t.expr(n.JoinCondition))
	for _, c := range n.MergeWhenClauses {
		mc := c.GetMergeWhenClause()
		if mc == nil || (mc.CommandType != pg.CmdType_CMD_UPDATE && mc.CommandType != pg.CmdType_CMD_DELETE) {
			continue
		}
		bounded := !w.unbounded(t.expr(mc.Condition))
		if mc.MatchKind == pg.MergeMatchKind_MERGE_WHEN_MATCHED {
			bounded = bounded || onBounded
		}
		if !bounded {
			return rule.WriteUnbounded
		}
	}
	return rule.WriteMerge
}

// target names the relation a write touches, as its columns may be
// qualified: by alias, by name, or by schema.name.
type target struct {
	names []string
	rel   string
	// unqualified says whether an unqualified column resolves to the
	// target (true at the statement's level, false inside a sub-query
	// with its own FROM).
	unqualified bool
	// others names the FROM/USING items of a multi-table write by each
	// name a column may qualify them with, mapped to the item's index;
	// linked are those a join condition ties to the target, whose columns
	// are part of the row the write's condition judges. equal maps a
	// linked table's column ("name.col") to the target column a join
	// equates it with (WHERE b.uid = u.id): b.uid = 5 then bounds u.
	others map[string]int
	linked map[int]bool
	equal  map[string]string
}

func newTarget(rv *pg.RangeVar) *target {
	t := &target{unqualified: true}
	if rv == nil {
		return t
	}
	t.rel = rv.Relname
	t.names = append(t.names, rv.Relname)
	if rv.Schemaname != "" {
		t.names = append(t.names, rv.Schemaname+"."+rv.Relname)
	}
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		t.names = append(t.names, rv.Alias.Aliasname)
	}
	return t
}

func (t *target) column(fields []*pg.Node) *pred.Expr {
	var parts []string
	for _, f := range fields {
		if s := f.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		} else {
			parts = append(parts, "*")
		}
	}
	if len(parts) == 0 {
		return &pred.Expr{Kind: pred.Opaque}
	}
	col := parts[len(parts)-1]
	if len(parts) == 1 {
		if t.unqualified {
			return &pred.Expr{Kind: pred.Column, Key: col, Target: true}
		}
		return &pred.Expr{Kind: pred.Column, Key: "?." + col}
	}
	qual := strings.Join(parts[:len(parts)-1], ".")
	for _, n := range t.names {
		if qual == n {
			return &pred.Expr{Kind: pred.Column, Key: col, Target: true}
		}
	}
	if tc, ok := t.equal[qual+"."+col]; ok {
		return &pred.Expr{Kind: pred.Column, Key: tc, Target: true}
	}
	if i, ok := t.others[qual]; ok && t.linked[i] {
		// A joined table's column is part of the row a write's condition
		// judges: a filter on it is a real predicate.
		return &pred.Expr{Kind: pred.Column, Key: qual + "." + col, Target: true}
	}
	return &pred.Expr{Kind: pred.Column, Key: qual + "." + col}
}

// expr translates a condition; nil stays nil (no condition).
func (t *target) expr(n *pg.Node) *pred.Expr {
	if n == nil {
		return nil
	}
	switch {
	case n.GetAConst() != nil:
		return constExpr(n.GetAConst())
	case n.GetColumnRef() != nil:
		return t.column(n.GetColumnRef().Fields)
	case n.GetTypeCast() != nil:
		return t.cast(n.GetTypeCast())
	case n.GetBoolExpr() != nil:
		b := n.GetBoolExpr()
		e := &pred.Expr{Kind: pred.And}
		switch b.Boolop {
		case pg.BoolExprType_OR_EXPR:
			e.Kind = pred.Or
		case pg.BoolExprType_NOT_EXPR:
			e.Kind = pred.Not
		}
		for _, a := range b.Args {
			e.Args = append(e.Args, t.expr(a))
		}
		return e
	case n.GetAExpr() != nil:
		return t.aExpr(n.GetAExpr(), n)
	case n.GetNullTest() != nil:
		nt := n.GetNullTest()
		k := pred.IsNull
		if nt.Nulltesttype == pg.NullTestType_IS_NOT_NULL {
			k = pred.IsNotNull
		}
		return &pred.Expr{Kind: k, Args: []*pred.Expr{t.expr(nt.Arg)}}
	case n.GetBooleanTest() != nil:
		bt := n.GetBooleanTest()
		op := map[pg.BoolTestType]string{
			pg.BoolTestType_IS_TRUE: "true", pg.BoolTestType_IS_NOT_TRUE: "not true",
			pg.BoolTestType_IS_FALSE: "false", pg.BoolTestType_IS_NOT_FALSE: "not false",
			pg.BoolTestType_IS_UNKNOWN: "unknown", pg.BoolTestType_IS_NOT_UNKNOWN: "not unknown",
		}[bt.Booltesttype]
		return &pred.Expr{Kind: pred.BoolTest, Op: op, Args: []*pred.Expr{t.expr(bt.Arg)}}
	case n.GetSubLink() != nil:
		return t.subLink(n.GetSubLink(), n)
	case n.GetCurrentOfExpr() != nil:
		return &pred.Expr{Kind: pred.Opaque, Refs: true} // WHERE CURRENT OF: one row
	case n.GetFuncCall() != nil:
		fc := n.GetFuncCall()
		name := lastName(fc.Funcname)
		if pred.Deterministic[name] && !fc.AggStar && !fc.AggDistinct && fc.Over == nil && len(fc.AggOrder) == 0 && fc.AggFilter == nil {
			e := &pred.Expr{Kind: pred.Func, Op: name}
			for _, a := range fc.Args {
				e.Args = append(e.Args, t.expr(a))
			}
			return e
		}
	}
	return &pred.Expr{Kind: pred.Opaque, Refs: t.refs(n)}
}

func constExpr(c *pg.A_Const) *pred.Expr {
	e := &pred.Expr{Kind: pred.Const}
	switch {
	case c.Isnull:
		e.Val = pred.Value{Kind: pred.Null}
	case c.GetIval() != nil:
		e.Val = pred.Value{Kind: pred.Num, N: float64(c.GetIval().Ival)}
	case c.GetFval() != nil:
		f, err := strconv.ParseFloat(c.GetFval().Fval, 64)
		if err != nil {
			return &pred.Expr{Kind: pred.Opaque}
		}
		e.Val = pred.Value{Kind: pred.Num, N: f}
	case c.GetBoolval() != nil:
		e.Val = pred.Value{Kind: pred.Bool, B: c.GetBoolval().Boolval}
	case c.GetSval() != nil:
		e.Val = pred.Value{Kind: pred.Str, S: c.GetSval().Sval}
	default:
		return &pred.Expr{Kind: pred.Opaque}
	}
	return e
}

// cast folds casts of constants to the types a condition can use; a cast of
// anything else keeps the operand's identity (id::text = id::text).
func (t *target) cast(tc *pg.TypeCast) *pred.Expr {
	inner := t.expr(tc.Arg)
	if inner == nil || inner.Kind != pred.Const || tc.TypeName == nil {
		if inner == nil {
			return &pred.Expr{Kind: pred.Opaque}
		}
		return inner
	}
	v := inner.Val
	if v.Kind == pred.Null {
		return inner
	}
	switch lastName(tc.TypeName.Names) {
	case "bool":
		switch v.Kind {
		case pred.Str:
			b, ok := pgBool(v.S)
			if !ok {
				return &pred.Expr{Kind: pred.Opaque}
			}
			return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Bool, B: b}}
		case pred.Num:
			return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Bool, B: v.N != 0}}
		}
		return inner
	case "int2", "int4", "int8", "numeric", "float4", "float8":
		if v.Kind == pred.Str {
			f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
			if err != nil {
				return &pred.Expr{Kind: pred.Opaque}
			}
			return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Num, N: f}}
		}
		return inner
	case "text", "varchar", "bpchar", "name":
		if v.Kind == pred.Num {
			return &pred.Expr{Kind: pred.Const, Val: pred.Value{Kind: pred.Str, S: strconv.FormatFloat(v.N, 'f', -1, 64)}}
		}
		return inner
	}
	return &pred.Expr{Kind: pred.Opaque}
}

var arithmetic = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "||": true}

var cmpOps = map[string]string{"=": "=", "<>": "<>", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}

// modelled says whether an A_Expr is a comparison or pattern the
// evaluator models; anything else (arithmetic, operators on ranges, JSON…)
// is opaque and its operands are not translated, which keeps long
// arithmetic chains linear.
func modelled(a *pg.A_Expr, op string) bool {
	switch a.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		_, cmp := cmpOps[op]
		return cmp || arithmetic[op] || op == "~~" || op == "~~*" || op == "~" || op == "~*" || op == "!~~" || op == "!~~*"
	case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE, pg.A_Expr_Kind_AEXPR_DISTINCT,
		pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		return true
	case pg.A_Expr_Kind_AEXPR_IN:
		return a.Rexpr.GetList() != nil
	}
	return false
}

func (t *target) aExpr(a *pg.A_Expr, n *pg.Node) *pred.Expr {
	op := lastName(a.Name)
	if !modelled(a, op) || a.Lexpr == nil || a.Rexpr == nil {
		return &pred.Expr{Kind: pred.Opaque, Refs: t.refs(n)}
	}
	l := t.expr(a.Lexpr)
	switch a.Kind {
	case pg.A_Expr_Kind_AEXPR_IN:
		in := &pred.Expr{Kind: pred.In, Args: []*pred.Expr{l}}
		for _, item := range a.Rexpr.GetList().Items {
			in.Args = append(in.Args, t.expr(item))
		}
		if op == "<>" {
			return &pred.Expr{Kind: pred.Not, Args: []*pred.Expr{in}}
		}
		return in
	case pg.A_Expr_Kind_AEXPR_DISTINCT:
		return &pred.Expr{Kind: pred.Cmp, Op: "is distinct", Args: []*pred.Expr{l, t.expr(a.Rexpr)}}
	case pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		return &pred.Expr{Kind: pred.Cmp, Op: "is not distinct", Args: []*pred.Expr{l, t.expr(a.Rexpr)}}
	}
	r := t.expr(a.Rexpr)
	if arithmetic[op] {
		return &pred.Expr{Kind: pred.Func, Op: op, Args: []*pred.Expr{l, r}}
	}
	if c, ok := cmpOps[op]; ok && a.Kind == pg.A_Expr_Kind_AEXPR_OP {
		return &pred.Expr{Kind: pred.Cmp, Op: c, Args: []*pred.Expr{l, r}}
	}
	pattern := &pred.Expr{Kind: pred.Like, Op: "like", Args: []*pred.Expr{l, r}}
	if op == "~" || op == "~*" {
		pattern.Op = "regex"
	}
	if strings.HasPrefix(op, "!") {
		return &pred.Expr{Kind: pred.Not, Args: []*pred.Expr{pattern}}
	}
	return pattern
}

// subLink translates EXISTS, IN (SELECT …) and scalar sub-queries.
func (t *target) subLink(s *pg.SubLink, n *pg.Node) *pred.Expr {
	sel := s.Subselect.GetSelectStmt()
	link := (s.SubLinkType == pg.SubLinkType_EXISTS_SUBLINK || s.SubLinkType == pg.SubLinkType_ANY_SUBLINK && len(s.OperName) == 0) &&
		t.onlyLinks(sel) && t.selectsAllOf(sel) == ""
	if link {
		// A semi-join (id IN (SELECT uid FROM banned), or EXISTS of a
		// partner) reaches every row that has a partner, as a join does.
		return &pred.Expr{Kind: pred.Opaque}
	}
	if s.SubLinkType == pg.SubLinkType_ANY_SUBLINK && s.Testexpr != nil && sel != nil && len(s.OperName) == 0 {
		x := t.expr(s.Testexpr)
		var sub *pred.Expr
		if col := t.selectsAllOf(sel); col != "" {
			sub = &pred.Expr{Kind: pred.SubSelectAll, Key: col}
		} else {
			sub = &pred.Expr{Kind: pred.Opaque, Refs: t.refs(s.Subselect)}
		}
		return &pred.Expr{Kind: pred.In, Args: []*pred.Expr{x, sub}}
	}
	return &pred.Expr{Kind: pred.Opaque, Refs: t.refs(n)}
}

// selectsAllOf returns the column when sel is SELECT col FROM <target> with
// no filter, grouping or limit: every value the target holds.
func (t *target) selectsAllOf(sel *pg.SelectStmt) string {
	if len(sel.FromClause) != 1 || sel.WhereClause != nil || sel.HavingClause != nil || sel.LimitCount != nil ||
		len(sel.GroupClause) > 0 || len(sel.TargetList) != 1 || sel.Op != pg.SetOperation_SETOP_NONE {
		return ""
	}
	rv := sel.FromClause[0].GetRangeVar()
	if rv == nil || rv.Relname != t.rel {
		return ""
	}
	rt := sel.TargetList[0].GetResTarget()
	if rt == nil || rt.Val.GetColumnRef() == nil {
		return ""
	}
	return lastName(rt.Val.GetColumnRef().Fields)
}

// refs reports whether any column reference under n resolves to the target.
// Inside a sub-query that has its own FROM, only qualified references count.
func (t *target) refs(n proto.Message) bool {
	found := false
	var walk func(m proto.Message, unq bool)
	walk = func(m proto.Message, unq bool) {
		if found || m == nil {
			return
		}
		switch x := m.(type) {
		case *pg.Node:
			r := x.ProtoReflect()
			if fd := r.WhichOneof(nodeOneof); fd != nil {
				walk(r.Get(fd).Message().Interface(), unq)
			}
			return
		case *pg.ColumnRef:
			tt := *t
			tt.unqualified = unq
			if e := tt.column(x.Fields); e.Target {
				found = true
			}
			return
		case *pg.CurrentOfExpr:
			found = true
			return
		case *pg.SelectStmt:
			if len(x.FromClause) > 0 {
				unq = false
			}
		}
		r := m.ProtoReflect()
		for _, fd := range fieldsOf(r.Descriptor()) {
			if !r.Has(fd) {
				continue
			}
			v := r.Get(fd)
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message().Interface(), unq)
				}
				continue
			}
			walk(v.Message().Interface(), unq)
		}
	}
	walk(n, t.unqualified)
	return found
}
