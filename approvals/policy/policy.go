package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// DefaultRisks is the built-in mapping every policy starts from: reads,
// bounded writes and non-destructive DDL pass, high risk waits for a
// reviewer, reach beyond the database is refused.
var DefaultRisks = map[protocols.Risk]protocols.Action{
	protocols.RiskNone:     protocols.Allow,
	protocols.RiskLow:      protocols.Allow,
	protocols.RiskMedium:   protocols.Allow,
	protocols.RiskHigh:     protocols.Review,
	protocols.RiskCritical: protocols.Deny,
}

// layer is one compiled Config or IdentityConfig.
type layer struct {
	who   protocols.Principals // nil: every caller
	risks map[protocols.Risk]protocols.Action
	rules map[string]protocols.Action // exact rule ids
	cats  map[string]protocols.Action // "category" from "category.*"
	// enforce is the layer's enforce setting, nil when it sets none.
	enforce *bool
}

func (l *layer) applies(id protocols.Identity) bool { return l.who == nil || l.who.Match(id) }

// Policy maps a classification and its caller to an action. It implements
// protocols.Policy and is immutable, hence safe for concurrent use.
//
// Precedence: a rule-id override beats a category override ("schema.*"),
// which beats the risk mapping. At each of these three levels the most
// specific layer that sets a value wins: connection identity entries (later
// entries first), then global identity entries (later first), then the
// connection's own settings, then the global ones, then the defaults. The
// decision is the strictest action over the command's rules (deny over
// review over allow).
type Policy struct {
	layers []layer // highest precedence first
}

var _ protocols.Policy = (*Policy)(nil)

// Default returns the built-in policy.
func Default() *Policy {
	p, _ := New(Config{}, Config{})
	return p
}

// New compiles the global policy and a connection's overrides of it into
// one Policy. It validates both layers (paths "policy" and
// "connection.policy"); callers that know the real paths should call
// Config.Validate first.
func New(global, connection Config) (*Policy, error) {
	if err := errors.Join(global.Validate("policy"), connection.Validate("connection.policy")); err != nil {
		return nil, err
	}
	var ls []layer
	identity := func(c IdentityConfig) layer {
		l := compile(c.Principals, c.Risks, c.Rules)
		l.enforce = c.Enforce
		return l
	}
	for i := len(connection.Identities) - 1; i >= 0; i-- {
		ls = append(ls, identity(connection.Identities[i]))
	}
	for i := len(global.Identities) - 1; i >= 0; i-- {
		ls = append(ls, identity(global.Identities[i]))
	}
	own, all := compile(nil, connection.Risks, connection.Rules), compile(nil, global.Risks, global.Rules)
	own.enforce, all.enforce = connection.Enforce, global.Enforce
	ls = append(ls, own, all, layer{risks: DefaultRisks})
	return &Policy{layers: ls}, nil
}

// Enforces implements protocols.Enforcer: the most specific layer that
// sets enforce decides, in the order of Policy's precedence; by default
// the policy is enforced.
func (p *Policy) Enforces(id protocols.Identity) bool {
	for i := range p.layers {
		l := &p.layers[i]
		if l.enforce != nil && l.applies(id) {
			return *l.enforce
		}
	}
	return true
}

// Audits reports whether the policy is in audit mode for anyone: some
// layer sets enforce false.
func (p *Policy) Audits() bool {
	for i := range p.layers {
		if e := p.layers[i].enforce; e != nil && !*e {
			return true
		}
	}
	return false
}

func compile(who protocols.Principals, risks, rules map[string]string) layer {
	var l layer
	if who != nil {
		l.who = append(protocols.Principals(nil), who...)
	}
	for k, v := range risks {
		r, _ := protocols.ParseRisk(k)
		a, _ := protocols.ParseAction(v)
		if l.risks == nil {
			l.risks = map[protocols.Risk]protocols.Action{}
		}
		l.risks[r] = a
	}
	for k, v := range rules {
		a, _ := protocols.ParseAction(v)
		if cat, ok := strings.CutSuffix(k, ".*"); ok {
			if l.cats == nil {
				l.cats = map[string]protocols.Action{}
			}
			l.cats[cat] = a
			continue
		}
		if l.rules == nil {
			l.rules = map[string]protocols.Action{}
		}
		l.rules[k] = a
	}
	return l
}

func severity(a protocols.Action) int {
	switch a {
	case protocols.Allow:
		return 0
	case protocols.Review:
		return 1
	}
	return 2 // deny, and anything unknown
}

// riskAction returns the action for risk r.
func (p *Policy) riskAction(id protocols.Identity, r protocols.Risk) protocols.Action {
	for i := range p.layers {
		l := &p.layers[i]
		if a, ok := l.risks[r]; ok && l.applies(id) {
			return a
		}
	}
	return protocols.Deny // a risk outside the known levels
}

// ruleAction returns the action for rule ruleID whose risk is r.
func (p *Policy) ruleAction(id protocols.Identity, ruleID string, r protocols.Risk) protocols.Action {
	for i := range p.layers {
		l := &p.layers[i]
		if a, ok := l.rules[ruleID]; ok && l.applies(id) {
			return a
		}
	}
	if cat, _, ok := strings.Cut(ruleID, "."); ok {
		for i := range p.layers {
			l := &p.layers[i]
			if a, ok := l.cats[cat]; ok && l.applies(id) {
				return a
			}
		}
	}
	return p.riskAction(id, r)
}

// reason is why a rule or a risk level chose an action: a rule when rule
// is set, else the risk level.
type reason struct {
	rule string
	risk protocols.Risk
}

// reasonText joins reasons as "rule (risk), risk level".
func reasonText(rs []reason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		if r.rule == "" {
			parts[i] = "risk " + r.risk.String()
		} else {
			parts[i] = fmt.Sprintf("%s (%s)", r.rule, r.risk)
		}
	}
	return strings.Join(parts, ", ")
}

// Decide implements protocols.Policy.
func (p *Policy) Decide(id protocols.Identity, c *protocols.Classification) protocols.Decision {
	return p.decide(id, c, nil)
}

// decide is Decide with an access grant's overlay, if ov is not nil: for
// each rule (and for the risk level when no rule explains it) the action
// is the more permissive of the policy's and the overlay's, except that a
// rule of critical risk keeps the policy's unless the overlay may lift it.
func (p *Policy) decide(id protocols.Identity, c *protocols.Classification, ov *Overlay) protocols.Decision {
	if c == nil {
		return protocols.Decision{Action: protocols.Deny, Risk: protocols.RiskHigh,
			Reason: "denied: the command was not classified"}
	}
	action := protocols.Allow
	// The reasons are formatted only for a decision that gives one: an
	// allowed command (most of them) costs no allocation here.
	var reasonBuf [4]reason
	because := reasonBuf[:0]
	consider := func(a protocols.Action, why reason) {
		switch s := severity(a); {
		case s > severity(action):
			action, because = a, append(because[:0], why)
		case s == severity(action) && s > 0:
			because = append(because, why)
		}
	}
	top := protocols.RiskNone
	for _, r := range c.Rules {
		rr := c.Risk
		if in, ok := rule.Lookup(r); ok {
			rr = in.Risk
		}
		top = max(top, rr)
		a := p.ruleAction(id, r, rr)
		if ov != nil {
			a = ov.relax(a, r, rr)
		}
		consider(a, reason{rule: r, risk: rr})
	}
	if len(c.Rules) == 0 || top < c.Risk {
		// No rule explains the risk (a read, or an analyzer outside the
		// catalogue): the risk level decides.
		a := p.riskAction(id, c.Risk)
		if ov != nil {
			a = ov.relax(a, "", c.Risk)
		}
		consider(a, reason{risk: c.Risk})
	}
	d := protocols.Decision{Action: action, Risk: c.Risk, Rules: c.Rules}
	switch action {
	case protocols.Deny:
		d.Reason = "denied by policy: " + reasonText(because)
	case protocols.Review:
		d.Reason = "approval required by policy: " + reasonText(because)
	}
	return d
}
