package mysql

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
)

// PreviewTarget is what a blast-radius preview may ask the server about one
// statement of a command held for review, derived from the statement's
// parse tree: a read over the same tables and conditions as a write, to
// plan with EXPLAIN and to count with; the objects a DDL statement names.
// The write itself is never part of what is derived: a preview runs only
// the reads, inside a read-only transaction.
type PreviewTarget struct {
	// Statement is the statement's position in the command, from 1.
	Statement int
	// Kind is update, delete, insert, replace, drop, truncate or alter.
	Kind string
	// Tables are the tables a write changes (several for a multi-table
	// UPDATE or DELETE), or the objects a DDL statement names.
	Tables []Table
	// ObjectType is what a DDL statement's objects are: table, view or
	// database.
	ObjectType string
	// Explain is a SELECT over the write's FROM and WHERE (or the rows an
	// INSERT … SELECT inserts), whose plan is the optimizer's estimate of
	// the rows the write touches. Empty when there is nothing to plan.
	Explain string
	// Limit is a single-table UPDATE or DELETE's LIMIT; -1 when it has
	// none.
	Limit int64
	// Count is a SELECT COUNT(*) of exactly the rows a write with one target
	// table touches. A multi-table write is counted per target with
	// CountTarget, which needs the target's key. Empty when no count can be
	// derived (CountNote says why).
	Count     string
	CountNote string
	// Rows is the number of rows an INSERT … VALUES or INSERT … SET
	// inserts, known from the text; -1 when unknown.
	Rows int64
	// Unresolved are the columns a multi-table UPDATE sets without naming
	// their table; the server finds each in one of Sources, the base
	// tables of the statement's FROM.
	Unresolved []string
	Sources    []Table
	// Caution says how the preview may differ from what the server would
	// do with the statement in the client's session.
	Caution string
	// Note says why nothing can be estimated for the statement, if so.
	Note string

	join *joinParts
}

// Table names a table as a statement writes it.
type Table struct {
	// Schema is the database written before the name; empty means the
	// session's database.
	Schema string
	Name   string
	// Ref is how the statement's expressions name the table: its alias,
	// or its name as written, quoted (`a`, `db`.`t`).
	Ref string
}

// joinParts are a multi-table write's clauses, restored, from which a
// count per target is derived once the target's key is known.
type joinParts struct {
	with, from, where string
	refs              []string // every Ref of the FROM clause
}

// restoreFlags write a tree back as SQL that a session without
// ANSI_QUOTES and NO_BACKSLASH_ESCAPES reads as the parser did: names in
// backquotes, strings in single quotes with backslashes escaped, and no
// _utf8mb4 introducer on literals that had none (the connection's
// character set applies, as it did to the client's text).
const restoreFlags = format.DefaultRestoreFlags | format.RestoreStringEscapeBackslash | format.RestoreStringWithoutDefaultCharset

// Names a derived read gives the tables and columns it makes up.
const (
	derivedAlias = "airlock_preview"
	targetAlias  = "airlock_target"
)

var errNotRead = errors.New("the derived query is not a plain read")

// PreviewTargets returns a target for each statement of sql that writes
// rows or changes a table (reads and other statements have none), in
// order. sql is read as a session with the default sql_mode reads it; when
// it reads differently under ANSI_QUOTES or NO_BACKSLASH_ESCAPES, the
// targets say so in Caution. An error means sql cannot be read at all.
func PreviewTargets(sql string) ([]PreviewTarget, error) {
	out, err := previewTargets(sql, lexMode{})
	if err != nil {
		return nil, err
	}
	differ := make([][]string, len(out))
	for _, m := range readings(sql)[1:] {
		alt, err := previewTargets(sql, m)
		if err != nil {
			continue // a reading the server would reject
		}
		for i := range out {
			if i >= len(alt) || !sameTarget(out[i], alt[i]) {
				differ[i] = append(differ[i], m.String())
			}
		}
	}
	for i, modes := range differ {
		if len(modes) > 0 {
			out[i].Caution = joinText("the text reads differently under sql_mode "+strings.Join(modes, " or ")+
				"; previewed as the default sql_mode reads it", out[i].Caution)
		}
	}
	return out, nil
}

func (m lexMode) String() string {
	var modes []string
	if m.ansiQuotes {
		modes = append(modes, "ANSI_QUOTES")
	}
	if m.noBackslashEscapes {
		modes = append(modes, "NO_BACKSLASH_ESCAPES")
	}
	return strings.Join(modes, ",")
}

func sameTarget(a, b PreviewTarget) bool {
	return a.Kind == b.Kind && a.Explain == b.Explain && a.Count == b.Count && a.Rows == b.Rows &&
		fmt.Sprint(a.Tables) == fmt.Sprint(b.Tables)
}

// previewTargets derives the targets of sql read in mode m. The parser is
// one of its own, so that the trees outlive the parse.
func previewTargets(sql string, m lexMode) (out []PreviewTarget, err error) {
	lx := lex(sql, m)
	if lx.err || lx.ambiguous {
		return nil, errors.New("the text ends inside a literal or a comment, or its comments read ambiguously")
	}
	if tooDeep(sql, lx.tokens) {
		return nil, errors.New("statement nested too deeply")
	}
	stmts := split(sql, lx.tokens)
	clean := blankExecMarkers(sql, lx.tokens)
	p := parser.New()
	var mode pmysql.SQLMode
	if m.ansiQuotes {
		mode |= pmysql.ModeANSIQuotes
	}
	if m.noBackslashEscapes {
		mode |= pmysql.ModeNoBackslashEscapes
	}
	p.SetSQLMode(mode)
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("parser panic: %v", r)
		}
	}()
	if nodes, _, err := p.Parse(clean, "", ""); err == nil {
		for i, n := range nodes {
			if t, ok := deriveTarget(i+1, n); ok {
				out = append(out, t)
			}
		}
		return out, nil
	}
	// Statement by statement: the server runs those around one the parser
	// rejects.
	for i, s := range stmts {
		nodes, _, err := p.Parse(clean[s.start:s.end], "", "")
		if err != nil || len(nodes) != 1 {
			if kind := leadingKind(sql, s); kind != "" {
				out = append(out, PreviewTarget{Statement: i + 1, Kind: kind, Limit: -1, Rows: -1,
					Note: "the statement could not be parsed, so nothing is estimated"})
			}
			continue
		}
		if t, ok := deriveTarget(i+1, nodes[0]); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// leadingKind names the kind of write or DDL a statement starts with.
func leadingKind(sql string, s stmtRange) string {
	for _, t := range s.tokens {
		if t.kind == tokExecOpen || t.kind == tokExecClose {
			continue
		}
		if t.kind != tokWord {
			return ""
		}
		switch w := strings.ToLower(sql[t.start:t.end]); w {
		case "update", "delete", "insert", "replace", "drop", "truncate", "alter":
			return w
		case "rename":
			return "alter"
		}
		return ""
	}
	return ""
}

// deriveTarget derives the target of one statement; false for a statement
// a preview has nothing to say about.
func deriveTarget(stmt int, node ast.StmtNode) (PreviewTarget, bool) {
	t := PreviewTarget{Statement: stmt, Limit: -1, Rows: -1}
	switch n := node.(type) {
	case *ast.DeleteStmt:
		t.Kind = "delete"
		var named []*ast.TableName
		if n.IsMultiTable && n.Tables != nil {
			named = n.Tables.Tables
		}
		deriveWrite(&t, n.With, n.TableRefs, n.Where, n.Limit, func(srcs []source) ([]Table, []string) {
			return deleteTargets(srcs, named)
		})
	case *ast.UpdateStmt:
		t.Kind = "update"
		deriveWrite(&t, n.With, n.TableRefs, n.Where, n.Limit, func(srcs []source) ([]Table, []string) {
			return updateTargets(srcs, n.List)
		})
	case *ast.InsertStmt:
		deriveInsert(&t, n)
	case *ast.DropTableStmt:
		if n.TemporaryKeyword != ast.TemporaryNone {
			return t, false // the client session's own table, which no other session sees
		}
		t.Kind, t.ObjectType = "drop", "table"
		if n.IsView {
			t.ObjectType = "view"
		}
		for _, tn := range n.Tables {
			t.Tables = append(t.Tables, Table{Schema: tn.Schema.O, Name: tn.Name.O})
		}
	case *ast.DropDatabaseStmt:
		t.Kind, t.ObjectType = "drop", "database"
		t.Tables = []Table{{Name: n.Name.O}}
	case *ast.TruncateTableStmt:
		t.Kind, t.ObjectType = "truncate", "table"
		t.Tables = []Table{{Schema: n.Table.Schema.O, Name: n.Table.Name.O}}
	case *ast.AlterTableStmt:
		t.Kind, t.ObjectType = "alter", "table"
		t.Tables = []Table{{Schema: n.Table.Schema.O, Name: n.Table.Name.O}}
	case *ast.RenameTableStmt:
		t.Kind, t.ObjectType = "alter", "table"
		for _, tt := range n.TableToTables {
			t.Tables = append(t.Tables, Table{Schema: tt.OldTable.Schema.O, Name: tt.OldTable.Name.O})
		}
	default:
		return t, false
	}
	if t.ObjectType == "" {
		inspect(&t, node)
	}
	return t, true
}

// inspect notes what keeps a write from being planned or counted as the
// client's session would: parameters (which do not change the rows an
// INSERT … VALUES inserts), and user variables a preview's own session
// does not have.
func inspect(t *PreviewTarget, node ast.StmtNode) {
	var f finder
	node.Accept(&f)
	if f.params && t.Rows < 0 {
		t.Explain, t.Count, t.CountNote, t.join = "", "", "", nil
		t.Note = "the statement has parameters (?): it cannot be planned without their values"
	}
	if f.userVars && t.Rows < 0 {
		t.Caution = joinText(t.Caution, "the statement reads user variables (@…), which the preview's own session does not have")
	}
}

type finder struct{ params, userVars bool }

func (f *finder) Enter(n ast.Node) (ast.Node, bool) {
	switch v := n.(type) {
	case ast.ParamMarkerExpr:
		f.params = true
	case *ast.VariableExpr:
		if !v.IsSystem {
			f.userVars = true
		}
	}
	return n, false
}

func (f *finder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// checked returns q if it is a plain read, and otherwise a note.
func checked(q string) (string, string) {
	if err := CheckRead(q); err != nil {
		return "", "no exact count: " + err.Error()
	}
	return q, ""
}

// readAnalyzer classifies derived reads.
var readAnalyzer = New()

// CheckRead verifies that q, a query derived for a preview, is one plain
// SELECT: it parses as exactly one statement, selects into nothing, locks
// no rows, and the classifier finds nothing in it to flag. A preview runs
// nothing else.
func CheckRead(q string) error {
	lx := lex(q, lexMode{})
	if lx.err || lx.ambiguous || len(split(q, lx.tokens)) != 1 {
		return errNotRead
	}
	for _, tok := range lx.tokens {
		if tok.kind == tokExecOpen {
			return errNotRead
		}
	}
	nodes, _, err := parser.New().Parse(q, "", "")
	if err != nil || len(nodes) != 1 {
		return errNotRead
	}
	if _, ok := nodes[0].(*ast.SelectStmt); !ok {
		return errNotRead
	}
	var v readVerifier
	nodes[0].Accept(&v)
	if !v.ok() {
		return errNotRead
	}
	if c := readAnalyzer.Text(q); len(c.Rules) > 0 {
		return fmt.Errorf("%w (%s)", errNotRead, strings.Join(c.Rules, ", "))
	}
	return nil
}

// readVerifier finds what a read must not hold: a SELECT … INTO, a locking
// read, a statement other than a query.
type readVerifier struct{ bad bool }

func (v *readVerifier) Enter(n ast.Node) (ast.Node, bool) {
	switch s := n.(type) {
	case *ast.SelectStmt:
		if s.SelectIntoOpt != nil || (s.LockInfo != nil && s.LockInfo.LockType != ast.SelectLockNone) {
			v.bad = true
		}
	case ast.DMLNode:
		switch n.(type) {
		case *ast.SetOprStmt:
		default:
			v.bad = true
		}
	case ast.DDLNode:
		v.bad = true
	}
	return n, v.bad
}

func (v *readVerifier) Leave(n ast.Node) (ast.Node, bool) { return n, !v.bad }

func (v *readVerifier) ok() bool { return !v.bad }

func restore(n ast.Node) (string, error) {
	var b strings.Builder
	if err := n.Restore(format.NewRestoreCtx(restoreFlags, &b)); err != nil {
		return "", err
	}
	return b.String(), nil
}

func whereClause(w string) string {
	if w == "" {
		return ""
	}
	return " WHERE " + w
}

// quoteName quotes an identifier in backquotes.
func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
