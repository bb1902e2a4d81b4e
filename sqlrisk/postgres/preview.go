package postgres

import (
	"errors"
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// PreviewTarget is what a blast-radius preview may ask the server about
// one statement of a command held for review, derived from the
// statement's parse tree: which statement to EXPLAIN (a write), which
// objects to describe (DDL), and a read-only query that counts exactly
// the rows a write would touch.
type PreviewTarget struct {
	// Statement is the statement's position in the command, from 1.
	Statement int
	// Kind is update, delete, insert, merge, write (a SELECT with a
	// data-modifying WITH), drop, truncate or alter.
	Kind string
	// Explain is the statement's own text, to plan with EXPLAIN (never
	// ANALYZE): set for writes without parameters.
	Explain string
	// Count is a SELECT count(*) over the same tables and predicate as the
	// write, deparsed from its parse tree; empty when none can be derived
	// (CountNote says why).
	Count     string
	CountNote string
	// Rows is the exact number of rows an INSERT … VALUES inserts, known
	// from the text itself; -1 when unknown.
	Rows int64
	// Objects are the relations a DDL statement names, quoted and
	// qualified as written ("public"."t"), with ObjectType saying what
	// the statement says they are.
	Objects    []string
	ObjectType string
	// Note says why nothing can be estimated for the statement, if so.
	Note string
}

// PreviewTargets returns a target for each statement of sql that writes
// rows or changes a relation (reads and other statements have none), in
// order. An error means sql does not parse.
func PreviewTargets(sql string) ([]PreviewTarget, error) {
	if tooDeep(sql) {
		return nil, errTooDeep
	}
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, err
	}
	params := hasParams(sql)
	var out []PreviewTarget
	for i, raw := range tree.Stmts {
		t := PreviewTarget{Statement: i + 1, Rows: -1}
		text := stmtText(sql, raw)
		switch n := raw.GetStmt().GetNode().(type) {
		case *pg.Node_UpdateStmt:
			t.Kind = "update"
			t.Count, t.CountNote = countWrite(tree.Version, n.UpdateStmt.WithClause, n.UpdateStmt.Relation, n.UpdateStmt.FromClause, n.UpdateStmt.WhereClause)
		case *pg.Node_DeleteStmt:
			t.Kind = "delete"
			t.Count, t.CountNote = countWrite(tree.Version, n.DeleteStmt.WithClause, n.DeleteStmt.Relation, n.DeleteStmt.UsingClause, n.DeleteStmt.WhereClause)
		case *pg.Node_InsertStmt:
			t.Kind = "insert"
			t.Count, t.CountNote, t.Rows = countInsert(tree.Version, n.InsertStmt)
		case *pg.Node_MergeStmt:
			t.Kind = "merge"
			t.CountNote = "no exact count is derived for MERGE"
		case *pg.Node_SelectStmt:
			if !modifyingWith(n.SelectStmt.WithClause) {
				continue
			}
			t.Kind = "write"
			t.CountNote = "no exact count is derived for a data-modifying WITH"
		case *pg.Node_DropStmt:
			t.Kind = "drop"
			t.ObjectType, t.Objects, t.Note = dropObjects(n.DropStmt)
		case *pg.Node_TruncateStmt:
			t.Kind, t.ObjectType = "truncate", "table"
			for _, r := range n.TruncateStmt.Relations {
				if rv := r.GetRangeVar(); rv != nil {
					t.Objects = append(t.Objects, quotedRangeVar(rv))
				}
			}
		case *pg.Node_AlterTableStmt:
			t.Kind, t.ObjectType = "alter", objectTypeName(n.AlterTableStmt.Objtype)
			if rv := n.AlterTableStmt.Relation; rv != nil {
				t.Objects = []string{quotedRangeVar(rv)}
			}
		case *pg.Node_RenameStmt:
			if rv := n.RenameStmt.Relation; rv != nil {
				typ := n.RenameStmt.RenameType
				if objectTypeName(typ) == "" || typ == pg.ObjectType_OBJECT_COLUMN || typ == pg.ObjectType_OBJECT_TABCONSTRAINT {
					typ = n.RenameStmt.RelationType
				}
				t.Kind, t.ObjectType = "alter", objectTypeName(typ)
				t.Objects = []string{quotedRangeVar(rv)}
			} else {
				continue
			}
		default:
			continue
		}
		if t.Objects == nil && t.Note == "" {
			if params {
				t.Note = "the statement has parameters ($1, …): it cannot be planned without their values"
				t.Count, t.CountNote = "", ""
			} else {
				t.Explain = text
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// stmtText returns one statement's text from a multi-statement string.
func stmtText(sql string, raw *pg.RawStmt) string {
	start, end := int(raw.StmtLocation), len(sql)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > len(sql) || end > len(sql) || start > end {
		return sql
	}
	return strings.TrimSpace(sql[start:end])
}

// hasParams reports whether sql has positional parameters ($1).
func hasParams(sql string) bool {
	res, err := pg.Scan(sql)
	if err != nil {
		return true
	}
	for _, tok := range res.Tokens {
		if tok.Token == pg.Token_PARAM {
			return true
		}
	}
	return false
}

// modifyingWith reports whether a WITH clause holds a data-modifying
// statement (which may only appear at the top level).
func modifyingWith(w *pg.WithClause) bool {
	if w == nil {
		return false
	}
	for _, c := range w.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil && cte.Ctequery.GetSelectStmt() == nil {
			return true
		}
	}
	return false
}

var errNoCount = errors.New("no count")

// countWrite derives the count of the target rows an UPDATE or DELETE
// touches: the target with its alias and inheritance as written, the
// WHERE as written, and the FROM or USING list as a correlated EXISTS, so
// that a target row joined to several rows counts once, as it is updated
// or deleted once.
//
//	DELETE FROM t AS x USING u WHERE x.id = u.id AND u.gone
//	  → SELECT count(*) FROM t AS x WHERE EXISTS (SELECT 1 FROM u WHERE x.id = u.id AND u.gone)
func countWrite(version int32, with *pg.WithClause, target *pg.RangeVar, from []*pg.Node, where *pg.Node) (string, string) {
	if modifyingWith(with) {
		return "", "no exact count: the statement's WITH modifies data"
	}
	if target == nil {
		return "", "no exact count: no target table"
	}
	if where != nil && where.GetCurrentOfExpr() != nil {
		return "", "no exact count: WHERE CURRENT OF a cursor"
	}
	cond := where
	if len(from) > 0 {
		sub := &pg.SelectStmt{TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeAConstIntNode(1, -1), -1)},
			FromClause: from, WhereClause: where, LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE}
		cond = &pg.Node{Node: &pg.Node_SubLink{SubLink: &pg.SubLink{SubLinkType: pg.SubLinkType_EXISTS_SUBLINK,
			Subselect: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sub}}, Location: -1}}}
	}
	sel := countSelect([]*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: target}}}, cond, with)
	q, err := deparse(version, sel)
	if err != nil {
		return "", "no exact count: " + err.Error()
	}
	return q, ""
}

// countInsert derives the rows an INSERT inserts: known for VALUES and
// DEFAULT VALUES, counted for INSERT … SELECT (the rows the SELECT yields;
// ON CONFLICT may skip or update some of them).
func countInsert(version int32, n *pg.InsertStmt) (string, string, int64) {
	sel := n.SelectStmt.GetSelectStmt()
	switch {
	case n.SelectStmt == nil:
		return "", "", 1 // DEFAULT VALUES
	case sel == nil:
		return "", "no exact count: the rows come from something other than a query", -1
	case len(sel.ValuesLists) > 0 && sel.Op == pg.SetOperation_SETOP_NONE && len(sel.FromClause) == 0:
		return "", "", int64(len(sel.ValuesLists))
	case modifyingWith(n.WithClause) || modifyingWith(sel.WithClause):
		return "", "no exact count: the statement's WITH modifies data", -1
	}
	from := &pg.Node{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{Subquery: n.SelectStmt,
		Alias: &pg.Alias{Aliasname: "airlock_preview"}}}}
	q, err := deparse(version, countSelect([]*pg.Node{from}, nil, n.WithClause))
	if err != nil {
		return "", "no exact count: " + err.Error(), -1
	}
	note := ""
	if n.OnConflictClause != nil {
		note = "rows the SELECT yields; ON CONFLICT may skip or update some"
	}
	return q, note, -1
}

// countSelect is SELECT count(*) FROM from [WHERE where], with with.
func countSelect(from []*pg.Node, where *pg.Node, with *pg.WithClause) *pg.SelectStmt {
	count := pg.MakeFuncCallNode([]*pg.Node{pg.MakeStrNode("count")}, nil, -1)
	count.GetFuncCall().AggStar = true
	return &pg.SelectStmt{TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(count, -1)}, FromClause: from,
		WhereClause: where, WithClause: with, LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE}
}

func deparse(version int32, sel *pg.SelectStmt) (string, error) {
	tree := &pg.ParseResult{Version: version, Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}}}}
	q, err := pg.Deparse(tree)
	if err != nil {
		return "", fmt.Errorf("deparse: %w", err)
	}
	// What was derived must read back as exactly one plain SELECT.
	back, err := pg.Parse(q)
	if err != nil || len(back.Stmts) != 1 || back.Stmts[0].GetStmt().GetSelectStmt() == nil {
		return "", errNoCount
	}
	return q, nil
}

// dropObjects names the relations a DROP removes; other kinds of objects
// are named in the note only.
func dropObjects(n *pg.DropStmt) (string, []string, string) {
	kind := objectTypeName(n.RemoveType)
	switch n.RemoveType {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW, pg.ObjectType_OBJECT_INDEX,
		pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_FOREIGN_TABLE:
	default:
		return kind, nil, "no size or dependents are estimated for a " + kind
	}
	var names []string
	for _, o := range n.Objects {
		var parts []string
		for _, p := range o.GetList().GetItems() {
			parts = append(parts, p.GetString_().GetSval())
		}
		if len(parts) > 0 {
			names = append(names, quoteName(parts...))
		}
	}
	return kind, names, ""
}

func quotedRangeVar(rv *pg.RangeVar) string {
	var parts []string
	if rv.Catalogname != "" {
		parts = append(parts, rv.Catalogname)
	}
	if rv.Schemaname != "" {
		parts = append(parts, rv.Schemaname)
	}
	return quoteName(append(parts, rv.Relname)...)
}

// quoteName quotes each part of a name as PostgreSQL's quote_ident always
// would: the parser has already folded the unquoted ones.
func quoteName(parts ...string) string {
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

func objectTypeName(t pg.ObjectType) string {
	switch t {
	case pg.ObjectType_OBJECT_TABLE:
		return "table"
	case pg.ObjectType_OBJECT_VIEW:
		return "view"
	case pg.ObjectType_OBJECT_MATVIEW:
		return "materialized view"
	case pg.ObjectType_OBJECT_INDEX:
		return "index"
	case pg.ObjectType_OBJECT_SEQUENCE:
		return "sequence"
	case pg.ObjectType_OBJECT_FOREIGN_TABLE:
		return "foreign table"
	}
	name := strings.ToLower(strings.TrimPrefix(t.String(), "OBJECT_"))
	return strings.ReplaceAll(name, "_", " ")
}
