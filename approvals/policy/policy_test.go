package policy

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

func cls(rules ...string) *protocols.Classification {
	c := &protocols.Classification{Rules: rules}
	for _, r := range rules {
		c.Risk = max(c.Risk, rule.RiskOf(r))
	}
	return c
}

var (
	alice = protocols.Identity{Name: "alice", Groups: []string{"dev"}}
	bob   = protocols.Identity{Name: "bob", Groups: []string{"dba", "dev"}}
	carol = protocols.Identity{Name: "carol"}
)

func TestDefaults(t *testing.T) {
	p := Default()
	tests := []struct {
		name  string
		c     *protocols.Classification
		want  protocols.Action
		rules string // substring of the reason
	}{
		{"read", cls(), protocols.Allow, ""},
		{"bounded write", cls(rule.WriteDelete), protocols.Allow, ""},
		{"ddl", cls(rule.DDLCreate), protocols.Allow, ""},
		{"drop", cls(rule.SchemaDrop), protocols.Review, "schema.drop (high)"},
		{"file", cls(rule.ReachFile), protocols.Deny, "reach.file (critical)"},
		{"worst wins and names every rule at that level", cls(rule.WriteInsert, rule.ReachFile, rule.ReachProgram, rule.SchemaDrop), protocols.Deny, "reach.file (critical), reach.program (critical)"},
		{"parse error", cls(rule.ParseError), protocols.Review, "parse.error"},
		{"unknown rule counts at the classification's risk", &protocols.Classification{Risk: protocols.RiskCritical, Rules: []string{"future.rule"}}, protocols.Deny, "future.rule (critical)"},
		{"risk without a rule", &protocols.Classification{Risk: protocols.RiskHigh}, protocols.Review, "risk high"},
		{"nil classification", nil, protocols.Deny, "not classified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(alice, tc.c)
			if d.Action != tc.want {
				t.Fatalf("action = %s, want %s (%+v)", d.Action, tc.want, d)
			}
			if !strings.Contains(d.Reason, tc.rules) {
				t.Errorf("reason %q does not name %q", d.Reason, tc.rules)
			}
			if tc.want == protocols.Allow && d.Reason != "" {
				t.Errorf("allow has a reason: %q", d.Reason)
			}
			if tc.c != nil && (d.Risk != tc.c.Risk || len(d.Rules) != len(tc.c.Rules)) {
				t.Errorf("decision does not carry the classification's risk and rules: %+v", d)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	global := Config{
		Risks: map[string]string{"medium": "review"},
		Rules: map[string]string{"schema.drop": "deny", "reach.*": "review", "reach.program": "deny"},
		Identities: []IdentityConfig{
			{Principals: protocols.Principals{"*"}, Risks: map[string]string{"low": "review"}},
			{Principals: protocols.Principals{"group:dba"}, Risks: map[string]string{"high": "allow", "low": "allow"}},
			{Principals: protocols.Principals{"carol"}, Rules: map[string]string{"schema.drop": "allow"}},
		},
	}
	conn := Config{
		Rules: map[string]string{"write.unbounded": "deny"},
		Identities: []IdentityConfig{
			{Principals: protocols.Principals{"bob"}, Rules: map[string]string{"write.unbounded": "review"}},
		},
	}
	p, err := New(global, conn)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   protocols.Identity
		c    *protocols.Classification
		want protocols.Action
	}{
		{"global risk override", alice, cls(rule.DDLCreate), protocols.Review},
		{"global rule override beats risk", alice, cls(rule.SchemaDrop), protocols.Deny},
		{"category override relaxes critical", alice, cls(rule.ReachFile), protocols.Review},
		{"exact rule beats category", alice, cls(rule.ReachProgram), protocols.Deny},
		{"identity * applies to everyone", alice, cls(rule.WriteInsert), protocols.Review},
		{"later identity entry wins", bob, cls(rule.WriteInsert), protocols.Allow},
		{"group override of a risk", bob, cls(rule.SchemaAlterDrop), protocols.Allow},
		{"a global rule override still binds the group", bob, cls(rule.SchemaDrop), protocols.Deny},
		{"identity rule override beats global rule", carol, cls(rule.SchemaDrop), protocols.Allow},
		{"connection rule beats global risk", alice, cls(rule.WriteUnbounded), protocols.Deny},
		{"connection identity beats connection rule", bob, cls(rule.WriteUnbounded), protocols.Review},
		{"other identities unaffected", carol, cls(rule.WriteUnbounded), protocols.Deny},
		{"reads stay allowed", carol, cls(), protocols.Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := p.Decide(tc.id, tc.c); d.Action != tc.want {
				t.Fatalf("action = %s, want %s (reason %q)", d.Action, tc.want, d.Reason)
			}
		})
	}
}

func TestReadOnlyConnection(t *testing.T) {
	p, err := New(Config{}, Config{Risks: map[string]string{"low": "deny", "medium": "deny"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide(alice, cls(rule.WriteUpdate)); d.Action != protocols.Deny || !strings.Contains(d.Reason, "write.update (low)") {
		t.Errorf("update on a read-only connection: %+v", d)
	}
	if d := p.Decide(alice, cls()); d.Action != protocols.Allow {
		t.Errorf("read on a read-only connection: %+v", d)
	}
}

func TestValidate(t *testing.T) {
	c := Config{
		Risks: map[string]string{"severe": "deny", "high": "block"},
		Rules: map[string]string{"schema.dorp": "deny", "nope.*": "allow", "reach.file": "allow", "zzz": "deny"},
		Identities: []IdentityConfig{
			{Principals: nil, Risks: map[string]string{"high": "allow"}},
			{Principals: protocols.Principals{"group:", " bob", ""}, Rules: map[string]string{"schema.drop": "maybe"}},
			{Principals: protocols.Principals{"x"}},
		},
	}
	err := c.Validate("connections[1].policy")
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`connections[1].policy.risks: unknown risk "severe"`,
		`connections[1].policy.risks.high: unknown action "block" (want allow, review or deny)`,
		`connections[1].policy.rules[schema.dorp]: unknown rule id (did you mean schema.drop?)`,
		`connections[1].policy.rules[nope.*]: unknown rule category "nope"`,
		`connections[1].policy.rules[zzz]: unknown rule id`,
		`connections[1].policy.identities[0].principals: empty`,
		`connections[1].policy.identities[1].principals[0]: "group:" names no group`,
		`connections[1].policy.identities[1].principals[1]: " bob" has surrounding spaces`,
		`connections[1].policy.identities[1].principals[2]: empty principal`,
		`connections[1].policy.identities[1].rules[schema.drop]: unknown action "maybe"`,
		`connections[1].policy.identities[2]: overrides nothing`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "reach.file") {
		t.Errorf("a valid rule was reported: %v", err)
	}
	if _, err := New(c, Config{}); err == nil {
		t.Error("New accepted an invalid config")
	}
	if err := (Config{}).Validate("policy"); err != nil {
		t.Errorf("empty config: %v", err)
	}
}

// TestYAML decodes the documented example strictly, as the integrator does.
func TestYAML(t *testing.T) {
	const doc = `
risks:
  high: review
  critical: deny
rules:
  schema.drop: deny
  "reach.*": deny
identities:
  - principals: ["group:dba", "alice"]
    risks: {high: allow}
    rules: {schema.drop: review}
`
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate("policy"); err != nil {
		t.Fatal(err)
	}
	p, err := New(c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide(alice, cls(rule.SchemaDrop)); d.Action != protocols.Review {
		t.Errorf("alice drop: %+v", d)
	}
	if d := p.Decide(carol, cls(rule.SchemaDrop)); d.Action != protocols.Deny {
		t.Errorf("carol drop: %+v", d)
	}
	var bad Config
	dec = yaml.NewDecoder(strings.NewReader("risk: {high: deny}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Error("a misspelt field was accepted")
	}
}
