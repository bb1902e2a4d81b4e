package policy

import (
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

func grantOf(t *testing.T, c OverlayConfig, lift bool) *protocols.AccessGrant {
	t.Helper()
	ov, err := NewOverlay(c, lift)
	if err != nil {
		t.Fatal(err)
	}
	return &protocols.AccessGrant{ID: "g1", Overlay: ov}
}

func TestOverlayPrecedence(t *testing.T) {
	global := Config{
		Risks: map[string]string{"medium": "review"},
		Rules: map[string]string{"schema.drop": "deny", "write.unbounded": "review", "reach.file": "review"},
	}
	conn := Config{Rules: map[string]string{"schema.truncate": "deny"}}
	p, err := New(global, conn)
	if err != nil {
		t.Fatal(err)
	}
	writes := grantOf(t, OverlayConfig{Rules: map[string]string{"write.*": "allow", "schema.*": "allow"}}, false)
	keepUnbounded := grantOf(t, OverlayConfig{Rules: map[string]string{"write.*": "allow", "write.unbounded": "review"},
		Risks: map[string]string{"medium": "allow"}}, false)
	byRisk := grantOf(t, OverlayConfig{Risks: map[string]string{"high": "allow"}}, false)
	lifting := grantOf(t, OverlayConfig{Rules: map[string]string{"reach.*": "allow"}}, true)
	critical := &protocols.Classification{Risk: protocols.RiskCritical}
	tests := []struct {
		name string
		g    *protocols.AccessGrant
		c    *protocols.Classification
		want protocols.Action
	}{
		{"no grant: the policy", nil, cls(rule.WriteUnbounded), protocols.Review},
		{"category relaxes review", writes, cls(rule.WriteUnbounded), protocols.Allow},
		{"category relaxes a connection's deny", writes, cls(rule.SchemaTruncate), protocols.Allow},
		{"category relaxes a global exact-rule deny", writes, cls(rule.SchemaDrop), protocols.Allow},
		{"every rule must be relaxed", writes, cls(rule.WriteUnbounded, rule.PrivilegeGrant), protocols.Review},
		{"exact rule beats its category in the overlay", keepUnbounded, cls(rule.WriteUnbounded), protocols.Review},
		{"overlay risk level for a rule it does not name", keepUnbounded, cls(rule.DDLCreate), protocols.Allow},
		{"risk level relaxes high rules", byRisk, cls(rule.SchemaDrop, rule.PrivilegeGrant), protocols.Allow},
		{"a grant never makes a decision stricter", keepUnbounded, cls(rule.WriteUpdate), protocols.Allow},
		{"reach.* stays as the policy says (review here)", byRisk, cls(rule.ReachFile), protocols.Review},
		{"reach.* denied by default stays denied", writes, cls(rule.ReachProgram, rule.WriteInsert), protocols.Deny},
		{"critical risk without a rule stays denied", byRisk, critical, protocols.Deny},
		{"lift_critical lets an overlay lift reach.*", lifting, cls(rule.ReachProgram), protocols.Allow},
		{"lifting reach.* leaves other rules alone", lifting, cls(rule.ReachProgram, rule.SchemaDrop), protocols.Deny},
		{"reads stay allowed", writes, cls(), protocols.Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.DecideGranted(alice, tc.c, tc.g)
			if d.Action != tc.want {
				t.Fatalf("action = %s, want %s (reason %q)", d.Action, tc.want, d.Reason)
			}
			if tc.g == nil {
				if base := p.Decide(alice, tc.c); base.Action != d.Action {
					t.Errorf("without a grant DecideGranted = %s, Decide = %s", d.Action, base.Action)
				}
			}
		})
	}
	// An overlay that names reach.* compiled without lifting lifts nothing.
	stale := grantOf(t, OverlayConfig{Rules: map[string]string{"reach.*": "allow", "schema.*": "allow"}}, false)
	if d := p.DecideGranted(alice, cls(rule.ReachFile), stale); d.Action != protocols.Review {
		t.Errorf("reach.file under an overlay without lifting: %+v", d)
	}
	if d := p.DecideGranted(alice, cls(rule.ReachProgram), stale); d.Action != protocols.Deny {
		t.Errorf("reach.program under an overlay without lifting: %+v", d)
	}
	// An overlay the policy did not make changes nothing.
	foreign := &protocols.AccessGrant{ID: "x", Overlay: "not an overlay"}
	if d := p.DecideGranted(alice, cls(rule.SchemaDrop), foreign); d.Action != protocols.Deny {
		t.Errorf("foreign overlay: %+v", d)
	}
}

func TestOverlayValidate(t *testing.T) {
	c := OverlayConfig{
		Rules: map[string]string{"reach.*": "allow", "schema.drop": "deny", "write.nope": "allow"},
		Risks: map[string]string{"critical": "review", "high": "maybe"},
	}
	err := c.Validate("access.roles[x]", false)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"access.roles[x].rules[reach.*]: critical risk cannot be lifted",
		"access.roles[x].rules[schema.drop]: deny in an overlay changes nothing",
		"access.roles[x].rules[write.nope]: unknown rule id",
		"access.roles[x].risks.critical: critical risk cannot be lifted",
		`access.roles[x].risks.high: unknown action "maybe"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if err := (OverlayConfig{Rules: map[string]string{"reach.file": "allow"}}).Validate("o", true); err != nil {
		t.Errorf("lift_critical: %v", err)
	}
	if err := (OverlayConfig{}).Validate("o", false); err == nil || !strings.Contains(err.Error(), "changes nothing") {
		t.Errorf("empty overlay: %v", err)
	}
	if s := (OverlayConfig{Rules: map[string]string{"write.*": "allow", "schema.*": "allow"}, Risks: map[string]string{"high": "review"}}).String(); s != "rules schema.*=allow, write.*=allow; risks high=review" {
		t.Errorf("String = %q", s)
	}
}

func TestEnforce(t *testing.T) {
	off, on := false, true
	global := Config{Identities: []IdentityConfig{{Principals: []string{"group:dev"}, Enforce: &off}}}
	conn := Config{Enforce: &on, Identities: []IdentityConfig{{Principals: []string{"bob"}, Enforce: &on}}}
	p, err := New(global, conn)
	if err != nil {
		t.Fatal(err)
	}
	if p.Enforces(alice) {
		t.Error("a global identity entry beats the connection's own setting")
	}
	if !p.Enforces(bob) {
		t.Error("a connection identity entry beats a global one")
	}
	if !p.Enforces(carol) {
		t.Error("carol is enforced by the connection")
	}
	if !Default().Enforces(alice) || Default().Audits() {
		t.Error("the default policy is enforced")
	}
	all, _ := New(Config{Enforce: &off}, Config{})
	if all.Enforces(carol) || !all.Audits() {
		t.Error("global enforce: false is audit mode for everyone")
	}
	if err := (Config{Identities: []IdentityConfig{{Principals: []string{"x"}, Enforce: &off}}}).Validate("policy"); err != nil {
		t.Errorf("an identity entry with only enforce: %v", err)
	}
}
