package postgres

import (
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/airlock-gw/airlock/sqlrisk/internal/redact"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// walker visits every node of a parse tree, generically: whatever a node's
// type, its message-typed fields are followed, so a function call is found in
// a select list, a WHERE, a column default, VALUES, ORDER BY, LATERAL, a
// cast, a sub-select or another function's arguments alike. Node types with
// a meaning of their own (statements, function calls, table references) are
// handled on the way down.
type walker struct {
	b      *rule.Builder
	text   string
	nest   int  // depth of bodies analysed recursively
	tables bool // record tables (top-level text only)

	depth int // current tree depth
	plan  int // > 0 inside a plain EXPLAIN: planned, not run
	// objects > 0 inside DROP, COMMENT and the like, where function names
	// are objects being named, not calls.
	objects int

	ctes map[string]bool
	// literal is set when a judgement depended on a literal's value (a
	// WHERE clause folded to a constant) and notDML when a top-level
	// statement is not a plain SELECT, INSERT, UPDATE or DELETE: either
	// keeps the result out of the shape cache.
	literal     bool
	notDML      bool
	stmtStart   int
	stmtEnd     int
	secretSpans []redact.Span // statements whose every literal is secret
}

func newWalker(b *rule.Builder, text string, nest int, tables bool) *walker {
	return &walker{b: b, text: text, nest: nest, tables: tables}
}

// statement walks one top-level statement.
func (w *walker) statement(raw *pg.RawStmt) {
	switch raw.GetStmt().GetNode().(type) {
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt:
	default:
		w.notDML = true
	}
	start := int(raw.StmtLocation)
	end := len(w.text)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > len(w.text) || end > len(w.text) || start > end {
		start, end = 0, len(w.text)
	}
	w.stmtStart, w.stmtEnd = start, end
	w.ctes = nil
	if w.tables {
		w.b.Statement(kindOf(raw.Stmt))
	}
	w.node(raw.Stmt)
}

// stmtText returns the text of the statement being walked.
func (w *walker) stmtText() string { return w.text[w.stmtStart:w.stmtEnd] }

// effect records a rule that applies only when the statement runs (not when
// it is merely planned by EXPLAIN).
func (w *walker) effect(id string) {
	if w.plan == 0 {
		w.b.Hit(id)
	}
}

// effectAlways records a rule whatever the context.
func (w *walker) effectAlways(id string) { w.b.Hit(id) }

// markSecret marks the current statement's string literals as secrets.
func (w *walker) markSecret() {
	w.secretSpans = append(w.secretSpans, redact.Span{Start: w.stmtStart, End: w.stmtEnd})
}

func (w *walker) table(name string) {
	if w.tables {
		w.b.Table(name)
	}
}

var nodeOneof = (&pg.Node{}).ProtoReflect().Descriptor().Oneofs().ByName("node")

// node unwraps the Node oneof and visits its content.
func (w *walker) node(n *pg.Node) {
	if n == nil {
		return
	}
	m := n.ProtoReflect()
	fd := m.WhichOneof(nodeOneof)
	if fd == nil {
		return
	}
	w.visit(m.Get(fd).Message().Interface())
}

func (w *walker) nodes(ns []*pg.Node) {
	for _, n := range ns {
		w.node(n)
	}
}

// visit handles one message and descends into its children unless the
// handler did so itself.
func (w *walker) visit(m proto.Message) {
	if m == nil {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxDepth {
		w.b.Hit(rule.ParseError)
		return
	}
	if n, ok := m.(*pg.Node); ok {
		w.node(n)
		return
	}
	if w.special(m) {
		return
	}
	w.children(m)
}

// messageFields caches, per message type, the fields that can hold nodes.
var messageFields sync.Map // protoreflect.FullName -> []protoreflect.FieldDescriptor

func fieldsOf(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if v, ok := messageFields.Load(md.FullName()); ok {
		return v.([]protoreflect.FieldDescriptor)
	}
	var out []protoreflect.FieldDescriptor
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		if fd := fds.Get(i); fd.Kind() == protoreflect.MessageKind && !fd.IsMap() {
			out = append(out, fd)
		}
	}
	messageFields.Store(md.FullName(), out)
	return out
}

// children visits every message-typed field of m, in field order so that
// the walk (and the order of tables) is deterministic.
func (w *walker) children(m proto.Message) {
	r := m.ProtoReflect()
	for _, fd := range fieldsOf(r.Descriptor()) {
		if !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.visit(l.Get(i).Message().Interface())
			}
			continue
		}
		w.visit(v.Message().Interface())
	}
}

// rangeVarName renders a table reference as written, schema-qualified when
// it was.
func rangeVarName(rv *pg.RangeVar) string {
	if rv == nil {
		return ""
	}
	name := rv.Relname
	if rv.Schemaname != "" {
		name = rv.Schemaname + "." + name
	}
	if rv.Catalogname != "" {
		name = rv.Catalogname + "." + name
	}
	return name
}

func (w *walker) rangeVar(rv *pg.RangeVar) {
	if rv.Schemaname == "" && w.ctes[rv.Relname] {
		return // a reference to a WITH query, not a table
	}
	w.table(rangeVarName(rv))
	if credentialTables[rv.Relname] {
		w.effectAlways(rule.ReadCredentials)
	}
}

// with registers the names of a WITH clause's queries before the statement
// that uses them is walked.
func (w *walker) with(wc *pg.WithClause) {
	if wc == nil {
		return
	}
	for _, c := range wc.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			if w.ctes == nil {
				w.ctes = map[string]bool{}
			}
			w.ctes[cte.Ctename] = true
		}
	}
}

// names renders a qualified name list (String nodes) as "a.b.c".
func names(ns []*pg.Node) string {
	parts := make([]string, 0, len(ns))
	for _, n := range ns {
		if s := n.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		}
	}
	return strings.Join(parts, ".")
}

// lastName returns the last component of a qualified name list.
func lastName(ns []*pg.Node) string {
	if len(ns) == 0 {
		return ""
	}
	if s := ns[len(ns)-1].GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// constString returns the value of a string constant, looking through casts.
func constString(n *pg.Node) (string, bool) {
	for n != nil {
		if tc := n.GetTypeCast(); tc != nil {
			n = tc.Arg
			continue
		}
		if c := n.GetAConst(); c != nil {
			if s := c.GetSval(); s != nil {
				return s.Sval, true
			}
			return "", false
		}
		return "", false
	}
	return "", false
}

// defElemString returns a DefElem's argument as text when it is a word, a
// string or a number.
func defElemString(d *pg.DefElem) (string, bool) {
	if d == nil || d.Arg == nil {
		return "", false
	}
	switch {
	case d.Arg.GetString_() != nil:
		return d.Arg.GetString_().Sval, true
	case d.Arg.GetInteger() != nil:
		if d.Arg.GetInteger().Ival == 0 {
			return "0", true
		}
		return "1", true
	case d.Arg.GetBoolean() != nil:
		if d.Arg.GetBoolean().Boolval {
			return "true", true
		}
		return "false", true
	}
	return settingValue(d.Arg)
}

// optionOn reports whether boolean option name is set in opts. A present
// option with an unreadable value counts as on (fail closed), and so does an
// option given twice with different values.
func optionOn(opts []*pg.Node, name string) bool {
	on := false
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.Defname, name) {
			continue
		}
		v, ok := defElemString(d)
		if d.Arg == nil || !ok {
			return true
		}
		if b, ok := pgBool(v); !ok || b {
			on = true
		}
	}
	return on
}
