package postgres

import (
	"encoding/json"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// funcCall applies the rule of a called function, wherever the call is.
func (w *walker) funcCall(n *pg.FuncCall) {
	name := lastName(n.Funcname)
	switch name {
	case "set_config":
		w.setConfig(n)
		return
	case "ts_rewrite":
		if len(n.Args) == 2 { // ts_rewrite(tsquery, select text) runs the query
			w.dynamicSQL(n.Args[1])
		}
		return
	}
	id := funcRule(name)
	if id == "" {
		return
	}
	w.effectAlways(id)
	if id == rule.CodeDynamic && len(n.Args) > 0 {
		w.dynamicSQL(n.Args[0])
		if strings.HasPrefix(name, "crosstab") && len(n.Args) > 1 {
			w.dynamicSQL(n.Args[1])
		}
	}
}

// dynamicSQL records code.dynamic for a query passed as text and, when the
// text is a constant, classifies the query itself.
func (w *walker) dynamicSQL(arg *pg.Node) {
	w.effectAlways(rule.CodeDynamic)
	if sql, ok := constString(arg); ok {
		w.nested(sql)
	}
}

// setConfig treats set_config(name, value, is_local) as the SET it is; a
// name that is not a constant could be 'role', so it fails closed.
func (w *walker) setConfig(n *pg.FuncCall) {
	if len(n.Args) < 2 {
		w.effectAlways(rule.PrivilegeSetRole)
		return
	}
	name, ok := constString(n.Args[0])
	if !ok {
		w.effectAlways(rule.PrivilegeSetRole)
		return
	}
	name = strings.ToLower(strings.TrimSpace(name))
	value, known := constString(n.Args[1])
	if id := settingRule(name, value, known, false); id != "" {
		w.effectAlways(id)
	}
}

// options returns the language and body (AS) of a function or DO block.
func bodyOptions(opts []*pg.Node) (lang string, body []string) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "language":
			if s := d.Arg.GetString_(); s != nil {
				lang = strings.ToLower(s.Sval)
			}
		case "as":
			if s := d.Arg.GetString_(); s != nil {
				body = append(body, s.Sval)
			}
			if l := d.Arg.GetList(); l != nil {
				for _, it := range l.Items {
					if s := it.GetString_(); s != nil {
						body = append(body, s.Sval)
					}
				}
			}
		}
	}
	return lang, body
}

func (w *walker) doStmt(n *pg.DoStmt) {
	w.effectAlways(rule.CodeAnonymous)
	lang, body := bodyOptions(n.Args)
	if lang == "" {
		lang = "plpgsql"
	}
	w.body(lang, body)
}

func (w *walker) createFunction(n *pg.CreateFunctionStmt) {
	w.effectAlways(rule.CodeDefine)
	lang, body := bodyOptions(n.Options)
	if lang == "" {
		lang = "sql" // a SQL-standard body (BEGIN ATOMIC … END, RETURN …)
	}
	w.body(lang, body)
}

// body classifies the code of a function or DO block by its language: SQL
// and PL/pgSQL bodies are parsed and their statements classified as if they
// ran; C and internal functions load native code; untrusted languages run
// programs. Other languages stay opaque (code.define / code.anonymous).
func (w *walker) body(lang string, body []string) {
	if id := languageRule(lang); id != rule.CodeDefine {
		w.effectAlways(id)
		return
	}
	if len(body) != 1 {
		return
	}
	switch lang {
	case "sql":
		w.nested(body[0])
	case "plpgsql":
		w.plpgsql(body)
	}
}

// plpgsql parses the current statement (CREATE FUNCTION or DO) with the
// PL/pgSQL parser and classifies every SQL statement and expression in it.
func (w *walker) plpgsql(body []string) {
	if w.nest >= maxNest {
		return
	}
	text := w.stmtText()
	if tooDeep(text) || (len(body) == 1 && tooDeep(body[0])) {
		w.b.Hit(rule.ParseError)
		return
	}
	out, err := pg.ParsePlPgSqlToJSON(text)
	if err != nil {
		return
	}
	var tree any
	if json.Unmarshal([]byte(out), &tree) != nil {
		return
	}
	w.plpgsqlNode(tree, 0)
}

// PL/pgSQL statement types that execute a query built at run time.
var plpgsqlDynamic = map[string]bool{
	"PLpgSQL_stmt_dynexecute": true,
	"PLpgSQL_stmt_dynfors":    true,
}

func (w *walker) plpgsqlNode(v any, depth int) {
	if depth > maxDepth {
		w.b.Hit(rule.ParseError)
		return
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.plpgsqlNode(e, depth+1)
		}
	case map[string]any:
		for k, e := range x {
			switch {
			case plpgsqlDynamic[k]:
				w.effectAlways(rule.CodeDynamic)
				if m, ok := e.(map[string]any); ok {
					w.plpgsqlDynamicQuery(m["query"])
				}
			case k == "dynquery":
				w.effectAlways(rule.CodeDynamic)
				w.plpgsqlDynamicQuery(e)
			case k == "PLpgSQL_expr":
				if m, ok := e.(map[string]any); ok {
					w.plpgsqlExpr(m)
				}
				continue
			}
			w.plpgsqlNode(e, depth+1)
		}
	}
}

// plpgsqlDynamicQuery classifies EXECUTE 'constant text'.
func (w *walker) plpgsqlDynamicQuery(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	expr, ok := m["PLpgSQL_expr"].(map[string]any)
	if !ok {
		return
	}
	q, _ := expr["query"].(string)
	res, err := parse("SELECT " + q)
	if err != nil || len(res.Stmts) != 1 {
		return
	}
	sel := res.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return
	}
	if rt := sel.TargetList[0].GetResTarget(); rt != nil {
		if sql, ok := constString(rt.Val); ok {
			w.nested(sql)
		}
	}
}

// PL/pgSQL expression parse modes (RawParseMode in the server).
const (
	parseDefault = 0
	parseExpr    = 2
	parseAssign1 = 3
	parseAssign3 = 5
)

// plpgsqlExpr classifies one embedded SQL statement or expression.
func (w *walker) plpgsqlExpr(m map[string]any) {
	q, _ := m["query"].(string)
	if q == "" {
		return
	}
	mode := parseDefault
	if f, ok := m["parseMode"].(float64); ok {
		mode = int(f)
	}
	switch {
	case mode == parseDefault:
		w.nested(q)
	case mode == parseExpr:
		w.nested("SELECT " + q)
	case mode >= parseAssign1 && mode <= parseAssign3:
		// "target := expression": classify the expression.
		scan, err := pg.Scan(q)
		if err != nil {
			return
		}
		for _, t := range scan.Tokens {
			if t.Token == pg.Token_COLON_EQUALS || t.Token == pg.Token_ASCII_61 {
				w.nested("SELECT " + q[t.End:])
				return
			}
		}
	}
}
