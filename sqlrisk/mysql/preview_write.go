package mysql

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// source is a base table of a write's FROM clause.
type source struct {
	table *ast.TableName
	alias string
}

func (s source) Table() Table {
	ref := quoteName(s.alias)
	if s.alias == "" {
		ref = quoteName(s.table.Name.O)
		if s.table.Schema.O != "" {
			ref = quoteName(s.table.Schema.O) + "." + ref
		}
	}
	return Table{Schema: s.table.Schema.O, Name: s.table.Name.O, Ref: ref}
}

// sources lists the base tables of a FROM clause, and whether it also
// joins a derived table.
func sources(n ast.ResultSetNode, out []source) ([]source, bool) {
	derived := false
	switch v := n.(type) {
	case *ast.Join:
		var d bool
		if v.Left != nil {
			out, d = sources(v.Left, out)
			derived = derived || d
		}
		if v.Right != nil {
			out, d = sources(v.Right, out)
			derived = derived || d
		}
	case *ast.TableSource:
		if tn, ok := v.Source.(*ast.TableName); ok {
			out = append(out, source{table: tn, alias: v.AsName.O})
		} else {
			derived = true
		}
	case *ast.TableName:
		out = append(out, source{table: v})
	default:
		derived = true
	}
	return out, derived
}

// resolve finds the source a target written as schema.name stands for:
// an alias, or a table without one.
func resolve(srcs []source, schema, name string) (source, bool) {
	for _, eq := range []func(a, b string) bool{func(a, b string) bool { return a == b }, strings.EqualFold} {
		for _, s := range srcs {
			switch {
			case schema == "" && s.alias != "":
				if eq(s.alias, name) {
					return s, true
				}
			case s.alias == "" && eq(s.table.Name.O, name) && (schema == "" || eq(s.table.Schema.O, schema)):
				return s, true
			}
		}
	}
	return source{}, false
}

// deleteTargets are the tables a multi-table DELETE names before FROM (or
// after it, with USING).
func deleteTargets(srcs []source, named []*ast.TableName) ([]Table, []string) {
	var out []Table
	var unknown []string
	for _, tn := range named {
		s, ok := resolve(srcs, tn.Schema.O, tn.Name.O)
		if !ok {
			unknown = append(unknown, tn.Name.O)
			continue
		}
		out = appendTable(out, s.Table())
	}
	return out, unknown
}

// updateTargets are the tables whose columns a multi-table UPDATE sets;
// columns set without their table are returned for the server's catalog
// to resolve.
func updateTargets(srcs []source, list []*ast.Assignment) ([]Table, []string) {
	var out []Table
	var unresolved []string
	for _, a := range list {
		c := a.Column
		if c.Table.O == "" {
			unresolved = append(unresolved, c.Name.O)
			continue
		}
		if s, ok := resolve(srcs, c.Schema.O, c.Table.O); ok {
			out = appendTable(out, s.Table())
		}
	}
	return out, unresolved
}

func appendTable(l []Table, t Table) []Table {
	for _, have := range l {
		if have == t {
			return l
		}
	}
	return append(l, t)
}

// deriveWrite derives an UPDATE or DELETE's reads: the same FROM clause
// (with its joins, aliases, index hints and partitions) and WHERE, as
// written, under the statement's WITH.
//
//	DELETE FROM t WHERE a < 3 LIMIT 10
//	  explain → SELECT 1 FROM `t` WHERE `a`<3
//	  count   → SELECT COUNT(*) FROM (SELECT 1 FROM `t` WHERE `a`<3 LIMIT 10) AS `airlock_preview`
func deriveWrite(t *PreviewTarget, with *ast.WithClause, refs *ast.TableRefsClause, where ast.ExprNode, limit *ast.Limit,
	targets func([]source) ([]Table, []string)) {
	if refs == nil || refs.TableRefs == nil {
		t.Note = "the statement names no table"
		return
	}
	srcs, derived := sources(refs.TableRefs, nil)
	var parts joinParts
	var err error
	if with != nil {
		if parts.with, err = restore(with); err != nil {
			t.Note = "not restored: " + err.Error()
			return
		}
		parts.with = strings.TrimSpace(parts.with) + " "
	}
	if parts.from, err = restore(refs); err != nil {
		t.Note = "not restored: " + err.Error()
		return
	}
	if where != nil {
		if parts.where, err = restore(where); err != nil {
			t.Note = "not restored: " + err.Error()
			return
		}
	}
	for _, s := range srcs {
		t.Sources = append(t.Sources, s.Table())
		parts.refs = append(parts.refs, s.Table().Ref)
	}
	t.Explain = parts.with + "SELECT 1 FROM " + parts.from + whereClause(parts.where)
	if err := CheckRead(t.Explain); err != nil {
		t.Explain, t.Note = "", "no read could be derived: "+err.Error()
		return
	}
	if len(srcs) == 1 && !derived {
		t.Tables = []Table{srcs[0].Table()}
		t.Count, t.CountNote = countSingle(t, parts, limit)
		return
	}
	var unknown []string
	t.Tables, unknown = targets(srcs)
	if t.Kind == "update" {
		t.Unresolved, unknown = unknown, nil
	}
	t.join = &parts
	switch {
	case len(unknown) > 0:
		t.CountNote = "no exact count: " + strings.Join(unknown, ", ") + " names no table of the FROM clause"
	case len(t.Tables) == 0 && len(t.Unresolved) == 0:
		t.CountNote = "no exact count: no target table"
	}
}

// countSingle derives the count of a single-table UPDATE or DELETE.
func countSingle(t *PreviewTarget, parts joinParts, limit *ast.Limit) (string, string) {
	if limit != nil {
		n, ok := limitCount(limit)
		if !ok {
			return "", "no exact count: the LIMIT is not a number"
		}
		t.Limit = n
		q := parts.with + "SELECT COUNT(*) FROM (SELECT 1 FROM " + parts.from + whereClause(parts.where) +
			" LIMIT " + strconv.FormatInt(n, 10) + ") AS " + quoteName(derivedAlias)
		return checked(q)
	}
	return checked(parts.with + "SELECT COUNT(*) FROM " + parts.from + whereClause(parts.where))
}

func limitCount(l *ast.Limit) (int64, bool) {
	if l.Count == nil || l.Offset != nil {
		return 0, false
	}
	s, err := restore(l.Count)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// MultiTable reports whether the target is a write whose FROM clause joins
// several tables, which CountTarget counts target by target.
func (t *PreviewTarget) MultiTable() bool { return t.join != nil }

// CountTarget derives the count of the distinct rows of target that a
// multi-table UPDATE or DELETE changes: the rows of target for which the
// statement's join, with its WHERE, has a match, matched on key (the
// target's primary key, or all its columns) with the null-safe <=>, so
// that a row joined to several rows counts once, as it is changed once.
//
//	DELETE a FROM t AS a JOIN u ON a.id = u.tid WHERE u.gone
//	  → SELECT COUNT(*) FROM `t` AS `airlock_target` WHERE EXISTS (SELECT 1 FROM `t` AS `a`
//	    JOIN `u` ON `a`.`id`=`u`.`tid` WHERE (`u`.`gone`) AND `a`.`id`<=>`airlock_target`.`id`)
func (t *PreviewTarget) CountTarget(target Table, key []string) (string, error) {
	if t.join == nil {
		return "", errors.New("not a multi-table write")
	}
	if len(key) == 0 {
		return "", errors.New("no key")
	}
	alias := targetAlias
	for i := 2; contains(t.join.refs, quoteName(alias)); i++ {
		alias = targetAlias + strconv.Itoa(i)
	}
	name := quoteName(target.Name)
	if target.Schema != "" {
		name = quoteName(target.Schema) + "." + name
	}
	var cond strings.Builder
	if t.join.where != "" {
		cond.WriteString("(" + t.join.where + ")")
	}
	for _, k := range key {
		if cond.Len() > 0 {
			cond.WriteString(" AND ")
		}
		cond.WriteString(target.Ref + "." + quoteName(k) + "<=>" + quoteName(alias) + "." + quoteName(k))
	}
	q := t.join.with + "SELECT COUNT(*) FROM " + name + " AS " + quoteName(alias) +
		" WHERE EXISTS (SELECT 1 FROM " + t.join.from + " WHERE " + cond.String() + ")"
	if err := CheckRead(q); err != nil {
		return "", err
	}
	return q, nil
}

// deriveInsert derives an INSERT or REPLACE's count: known from the text
// for VALUES and SET, the rows the SELECT yields otherwise (which
// ON DUPLICATE KEY UPDATE, IGNORE or REPLACE may turn into updates, skips
// or deletions followed by inserts).
//
//	INSERT INTO archive SELECT a.id, b.id FROM a JOIN b ON a.k = b.k
//	  explain → SELECT 1 FROM (SELECT `a`.`id` AS `airlock_1`, `b`.`id` AS `airlock_2` FROM …) AS `airlock_preview`
//	  count   → SELECT COUNT(*) FROM (SELECT `a`.`id` AS `airlock_1`, `b`.`id` AS `airlock_2` FROM …) AS `airlock_preview`
func deriveInsert(t *PreviewTarget, n *ast.InsertStmt) {
	t.Kind = "insert"
	if n.IsReplace {
		t.Kind = "replace"
	}
	if n.Table != nil && n.Table.TableRefs != nil {
		if srcs, _ := sources(n.Table.TableRefs, nil); len(srcs) == 1 {
			t.Tables = []Table{srcs[0].Table()}
		}
	}
	switch {
	case n.IsReplace:
		t.CountNote = "rows to insert; REPLACE first deletes the rows whose keys they conflict with"
	case len(n.OnDuplicate) > 0:
		t.CountNote = "rows to insert; ON DUPLICATE KEY UPDATE updates the rows whose keys they conflict with instead"
	case n.IgnoreErr:
		t.CountNote = "rows to insert; IGNORE skips those that conflict"
	}
	if n.Select == nil {
		t.Rows = int64(len(n.Lists))
		return
	}
	uniqueColumns(n.Select)
	sel, err := restore(n.Select)
	if err != nil {
		t.Note = "not restored: " + err.Error()
		return
	}
	from := "(" + sel + ") AS " + quoteName(derivedAlias)
	t.Explain = "SELECT 1 FROM " + from
	if err := CheckRead(t.Explain); err != nil {
		t.Explain, t.Note = "", "no read could be derived: "+err.Error()
		return
	}
	q, note := checked("SELECT COUNT(*) FROM " + from)
	t.Count, t.CountNote = q, joinText(t.CountNote, note)
}

// uniqueColumns gives the columns of an INSERT's SELECT names a derived
// table accepts: a derived table's columns must differ, which a SELECT
// feeding an INSERT's columns by position need not (SELECT a.id, b.id).
// Columns with an alias keep it; a plain SELECT with * yields its rows
// whatever its columns, so it selects 1 instead.
func uniqueColumns(rs ast.ResultSetNode) {
	sel := firstSelect(rs)
	if sel == nil || sel.Fields == nil {
		return
	}
	wildcard := false
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil {
			wildcard = true
		}
	}
	if wildcard {
		if _, isSelect := rs.(*ast.SelectStmt); isSelect && plainRows(sel) {
			sel.Fields.Fields = []*ast.SelectField{{Expr: ast.NewValueExpr(1, "", "")}}
		}
		return
	}
	for i, f := range sel.Fields.Fields {
		if f.AsName.O == "" {
			f.AsName = ast.NewCIStr("airlock_" + strconv.Itoa(i+1))
		}
	}
}

// firstSelect is the SELECT whose column names a query's result takes.
func firstSelect(rs ast.Node) *ast.SelectStmt {
	for depth := 0; depth < 64; depth++ {
		switch v := rs.(type) {
		case *ast.SelectStmt:
			if v.Kind != ast.SelectStmtKindSelect {
				return nil
			}
			return v
		case *ast.SetOprStmt:
			if v.SelectList == nil || len(v.SelectList.Selects) == 0 {
				return nil
			}
			rs = v.SelectList.Selects[0]
		case *ast.SetOprSelectList:
			if len(v.Selects) == 0 {
				return nil
			}
			rs = v.Selects[0]
		default:
			return nil
		}
	}
	return nil
}

// plainRows reports whether the rows a SELECT yields do not depend on its
// columns: no DISTINCT, grouping, HAVING, window or aggregate.
func plainRows(sel *ast.SelectStmt) bool {
	if sel.Distinct || sel.GroupBy != nil || sel.Having != nil || len(sel.WindowSpecs) > 0 {
		return false
	}
	var f aggFinder
	sel.Fields.Accept(&f)
	return !f.found
}

type aggFinder struct{ found bool }

func (f *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	switch n.(type) {
	case *ast.AggregateFuncExpr, *ast.WindowFuncExpr:
		f.found = true
	case *ast.SubqueryExpr:
		return n, true // a subquery's aggregates are its own
	}
	return n, false
}

func (f *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
