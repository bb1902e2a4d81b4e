package postgres

import (
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// TestEveryStatementTypeMapped guards against a pg_query upgrade adding a
// statement type the classifier would only see as statement.unclassified.
func TestEveryStatementTypeMapped(t *testing.T) {
	fields := (&pg.Node{}).ProtoReflect().Descriptor().Oneofs().ByName("node").Fields()
	n := 0
	exists := map[string]bool{}
	for i := 0; i < fields.Len(); i++ {
		name := string(fields.Get(i).Message().Name())
		exists[name] = true
		if !strings.HasSuffix(name, "Stmt") || name == "RawStmt" {
			continue
		}
		n++
		_, simple := simpleRules[name]
		if !simple && !specialStmts[name] {
			t.Errorf("statement type %s has no rule mapping", name)
		}
		if simple && specialStmts[name] {
			t.Errorf("statement type %s is mapped twice", name)
		}
	}
	if n < 100 {
		t.Fatalf("found only %d statement types; the oneof lookup is broken", n)
	}
	for _, m := range []map[string]bool{specialStmts, secretStmts, objectStmts} {
		for name := range m {
			if !exists[name] {
				t.Errorf("a statement table names unknown type %s", name)
			}
		}
	}
	for name := range specialStmts {
		if !exists[name] {
			t.Errorf("specialStmts names unknown type %s", name)
		}
	}
	for name, id := range simpleRules {
		if !exists[name] {
			t.Errorf("simpleRules names unknown type %s", name)
		}
		if id == "" {
			continue
		}
		if _, ok := rule.Lookup(id); !ok {
			t.Errorf("%s maps to unknown rule %q", name, id)
		}
	}
}
