package rule

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

var update = flag.Bool("update", false, "rewrite sqlrisk/RULES.md from the catalogue")

var idPattern = regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)

func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, in := range catalogue {
		if seen[in.ID] {
			t.Errorf("rule %s listed twice", in.ID)
		}
		seen[in.ID] = true
		if !idPattern.MatchString(in.ID) {
			t.Errorf("rule id %q is not of the form category.name", in.ID)
		}
		if in.Meaning == "" || in.Example == "" {
			t.Errorf("rule %s lacks a meaning or an example", in.ID)
		}
		if strings.HasPrefix(in.ID, "reach.") != (in.Risk == protocols.RiskCritical) {
			t.Errorf("rule %s: only reach.* rules are critical, got %s", in.ID, in.Risk)
		}
	}
	if RiskOf("no.such_rule") != protocols.RiskHigh {
		t.Error("an unknown rule must count as high risk")
	}
}

func TestBuilder(t *testing.T) {
	var b Builder
	b.Statement("select")
	b.Table("t")
	b.Table("t")
	b.Hit(WriteDelete)
	b.Hit(SchemaDrop)
	b.Hit(WriteDelete)
	c := b.Classification("x")
	if c.Risk != protocols.RiskHigh {
		t.Errorf("risk = %s, want high", c.Risk)
	}
	if fmt.Sprint(c.Rules) != "[schema.drop write.delete]" {
		t.Errorf("rules = %v, want sorted and unique", c.Rules)
	}
	if fmt.Sprint(c.Statements) != "[{select [t]}]" {
		t.Errorf("statements = %v", c.Statements)
	}
	empty := (&Builder{}).Classification("")
	if empty.Risk != protocols.RiskNone || empty.Rules == nil || empty.Statements == nil {
		t.Errorf("empty classification = %+v, want risk none and empty (non-nil) lists", empty)
	}
}

// TestRulesDoc keeps sqlrisk/RULES.md in step with the catalogue.
func TestRulesDoc(t *testing.T) {
	const path = "../RULES.md"
	want := renderRulesDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run go test ./sqlrisk/rule -run TestRulesDoc -update)", path, err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date: run go test ./sqlrisk/rule -run TestRulesDoc -update", path)
	}
}

func renderRulesDoc() string {
	var b strings.Builder
	b.WriteString(`# sqlrisk rule catalogue

Generated from ` + "`sqlrisk/rule/rule.go`" + ` by ` + "`go test ./sqlrisk/rule -run TestRulesDoc -update`" + `; do not edit by hand.

Each rule id is stable and has one risk, whatever the protocol that gave it:
the id names what a command would do (drop a table, write without bound,
reach the network), not how it was written, so a policy written once holds
for every connection. A command's risk is the highest risk among its rules;
a command without rules (a read, transaction control, SHOW, plain EXPLAIN,
LISTEN/NOTIFY, DISCARD, client set-up SETs, Redis reads) is risk ` + "`none`" + `.
Policies refer to these ids (` + "`rules: {schema.drop: deny}`" + `). The last
column says which protocols' analyzers can give each rule.

| id | risk | meaning | example | protocols |
| --- | --- | --- | --- | --- |
`)
	for _, in := range All() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", in.ID, in.Risk, escapeCell(in.Meaning), strings.ReplaceAll(in.Example, "|", `\|`), protocolList(in))
	}
	b.WriteString(`
## Decisions worth knowing

- **Unbounded writes.** A WHERE bounds a write only when it refers to a
  column of the target and is not a tautology. Tautologies are judged
  ignoring NULLs: ` + "`WHERE id = id`" + ` is unbounded. Conditions that select every
  row only because of the data (` + "`id > 0`" + ` on a serial key, ` + "`id IS NOT NULL`" + `)
  are bounded: the statement is judged, not the table. An unqualified column
  counts as the target's. ` + "`LIMIT`" + ` does not bound a write. MySQL multi-table
  writes are bounded by WHERE and the join's ON conditions together;
  ` + "`WHERE CURRENT OF`" + ` is bounded.
- **EXPLAIN** only plans: the statement's writes and DDL do not count, its
  function calls do (the planner may fold them). ` + "`EXPLAIN ANALYZE`" + ` runs it.
- **Bodies count by effect.** PREPARE, CREATE FUNCTION (SQL and PL/pgSQL
  bodies are parsed), DO, CREATE RULE actions, trigger bodies the parser can
  read, MySQL ` + "`PREPARE … FROM 'literal'`" + ` and ` + "`EXECUTE IMMEDIATE 'literal'`" + `.
- **EXECUTE** of a prepared statement is ` + "`code.execute`" + ` (medium): its body was
  classified when it was prepared. The classification names the statements a
  command prepares and executes, so that an approved PREPARE covers one
  EXECUTE: the pipeline sends each later EXECUTE of that name to review.
- **RESET ROLE**, ` + "`SET ROLE NONE`" + `, ` + "`SET SESSION AUTHORIZATION DEFAULT`" + ` return to
  the login identity Airlock chose and are ` + "`session.set`" + `; DISCARD ALL is none.
- **Session SETs** are ` + "`session.set`" + ` (medium) except the client set-up ones
  drivers send on connect (risk none) and those that change identity,
  integrity, audit logging or server behaviour (high).
- **Names.** PostgreSQL folds unquoted names, so ` + "`PG_READ_FILE(…)`" + ` is
  ` + "`pg_read_file`" + ` and ` + "`\"PG_READ_FILE\"(…)`" + ` is another function; the schema
  is ignored (` + "`pg_catalog.pg_read_file`" + `, ` + "`evil.pg_read_file`" + ` both count).
  MySQL function names are case-insensitive, quoted or not.
- **Lexing ambiguity fails closed.** Text whose meaning depends on
  ` + "`standard_conforming_strings`" + ` (PostgreSQL) or on ` + "`NO_BACKSLASH_ESCAPES`" + ` /
  ` + "`ANSI_QUOTES`" + ` (MySQL) is classified under every reading; the worst wins.
  MySQL ` + "`/*!…*/`" + ` and MariaDB ` + "`/*M!…*/`" + ` comments are code whatever their
  version.
`)
	return b.String()
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// All returns the catalogue sorted by risk (worst first), then by id.
func All() []Info {
	out := append([]Info(nil), catalogue...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Risk != out[j].Risk {
			return out[i].Risk > out[j].Risk
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// protocolList names the protocols a rule applies to, for RULES.md.
func protocolList(in Info) string {
	if in.Protocols == nil {
		return "any"
	}
	names := make([]string, len(in.Protocols))
	for i, p := range in.Protocols {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}
