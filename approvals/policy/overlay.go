package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// OverlayConfig is what an access grant changes in a connection's policy
// for its caller while it is in force: risk levels and rule ids (or
// "category.*") mapped to allow or review, as in a policy layer.
//
//	rules: {"write.*": allow, "schema.*": allow}
//	risks: {high: review}
type OverlayConfig struct {
	Risks map[string]string `yaml:"risks,omitempty" json:"risks,omitempty"`
	Rules map[string]string `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// Empty reports whether the overlay changes nothing.
func (c OverlayConfig) Empty() bool { return len(c.Risks) == 0 && len(c.Rules) == 0 }

// Validate reports every problem of the overlay at path. Actions are allow
// or review: an overlay only relaxes. Unless liftCritical, naming a
// critical risk or a rule of critical risk is an error, since the grant
// could not lift it.
func (c OverlayConfig) Validate(path string, liftCritical bool) error {
	var errs []error
	if c.Empty() {
		errs = append(errs, fmt.Errorf("%s: changes nothing (want rules or risks)", path))
	}
	errs = append(errs, validateRisks(path+".risks", c.Risks)...)
	errs = append(errs, validateRules(path+".rules", c.Rules)...)
	check := func(where, action string, critical bool) {
		if a, err := protocols.ParseAction(action); err == nil && a == protocols.Deny {
			errs = append(errs, fmt.Errorf("%s: deny in an overlay changes nothing (a grant only relaxes; want allow or review)", where))
		}
		if critical && !liftCritical {
			errs = append(errs, fmt.Errorf("%s: critical risk cannot be lifted by a grant (set lift_critical in the access settings to allow it)", where))
		}
	}
	for _, k := range sortedKeys(c.Risks) {
		r, err := protocols.ParseRisk(k)
		check(fmt.Sprintf("%s.risks.%s", path, k), c.Risks[k], err == nil && r >= protocols.RiskCritical)
	}
	for _, k := range sortedKeys(c.Rules) {
		check(fmt.Sprintf("%s.rules[%s]", path, k), c.Rules[k], criticalKey(k))
	}
	return errors.Join(errs...)
}

// criticalKey reports whether a rule id or category names a rule of
// critical risk.
func criticalKey(k string) bool {
	cat, isCat := strings.CutSuffix(k, ".*")
	for _, id := range rule.IDs() {
		if (isCat && strings.HasPrefix(id, cat+".")) || id == k {
			if rule.RiskOf(id) >= protocols.RiskCritical {
				return true
			}
		}
	}
	return false
}

// String describes the overlay in one line, keys sorted: "rules
// schema.*=allow, write.*=allow; risks high=review".
func (c OverlayConfig) String() string {
	var parts []string
	for _, m := range []struct {
		name string
		kv   map[string]string
	}{{"rules", c.Rules}, {"risks", c.Risks}} {
		if len(m.kv) == 0 {
			continue
		}
		var kv []string
		for _, k := range sortedKeys(m.kv) {
			kv = append(kv, k+"="+m.kv[k])
		}
		parts = append(parts, m.name+" "+strings.Join(kv, ", "))
	}
	return strings.Join(parts, "; ")
}

// Overlay is a compiled OverlayConfig. It is immutable.
type Overlay struct {
	l            layer
	liftCritical bool
}

// NewOverlay compiles c. liftCritical lets it lift rules of critical risk
// (reach.*), which otherwise keep the policy's action whatever c names:
// an overlay made when lifting was allowed compiles, and lifts nothing,
// once it no longer is.
func NewOverlay(c OverlayConfig, liftCritical bool) (*Overlay, error) {
	if err := c.Validate("overlay", true); err != nil {
		return nil, err
	}
	return &Overlay{l: compile(nil, c.Risks, c.Rules), liftCritical: liftCritical}, nil
}

// relax returns the more permissive of a (the policy's action for ruleID,
// of risk r; ruleID is empty for the risk level alone) and the overlay's
// action, if the overlay sets one and may touch risk r.
func (o *Overlay) relax(a protocols.Action, ruleID string, r protocols.Risk) protocols.Action {
	if r >= protocols.RiskCritical && !o.liftCritical {
		return a
	}
	oa, ok := o.action(ruleID, r)
	if !ok || severity(oa) >= severity(a) {
		return a
	}
	return oa
}

// action is the overlay's own action: an exact rule id beats its category,
// which beats the risk level.
func (o *Overlay) action(ruleID string, r protocols.Risk) (protocols.Action, bool) {
	if ruleID != "" {
		if a, ok := o.l.rules[ruleID]; ok {
			return a, true
		}
		if cat, _, ok := strings.Cut(ruleID, "."); ok {
			if a, ok := o.l.cats[cat]; ok {
				return a, true
			}
		}
	}
	a, ok := o.l.risks[r]
	return a, ok
}

// DecideGranted implements protocols.GrantPolicy. For each of the
// command's rules the action is the more permissive of the policy's and
// the overlay's (an exact rule id in the overlay beats its category, which
// beats its risk level); a rule of critical risk keeps the policy's action
// unless the overlay was compiled to lift it. A grant never makes a
// decision stricter. An overlay of another kind, or none, decides as
// Decide.
func (p *Policy) DecideGranted(id protocols.Identity, c *protocols.Classification, g *protocols.AccessGrant) protocols.Decision {
	var ov *Overlay
	if g != nil {
		ov, _ = g.Overlay.(*Overlay)
	}
	return p.decide(id, c, ov)
}

var _ protocols.GrantPolicy = (*Policy)(nil)
var _ protocols.Enforcer = (*Policy)(nil)
