package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// Config is one layer of policy as written in YAML: the global policy, or a
// connection's overrides of it.
//
//	risks:                 # risk level -> action
//	  high: review
//	  critical: deny
//	rules:                 # rule id (or "category.*") -> action
//	  schema.drop: deny
//	  "reach.*": deny
//	identities:            # overrides for callers, later entries win
//	  - principals: ["group:dba", "alice"]
//	    risks: {high: allow}
//	    rules: {schema.drop: review}
//	  - principals: ["group:pilot"]
//	    enforce: false     # audit mode for these callers
//	enforce: true          # false: audit mode (decide, record, count; refuse nothing)
type Config struct {
	Risks      map[string]string `yaml:"risks,omitempty"`
	Rules      map[string]string `yaml:"rules,omitempty"`
	Identities []IdentityConfig  `yaml:"identities,omitempty"`
	// Enforce false is audit mode: every command is decided, recorded and
	// counted, and the would-be refusals and holds are logged, but the
	// commands run. Unset inherits (from the global policy, then true).
	Enforce *bool `yaml:"enforce,omitempty"`
}

// IdentityConfig overrides risks and rules for the callers it names
// (protocols.Principals syntax: a name, "group:NAME" or "*").
type IdentityConfig struct {
	Principals protocols.Principals `yaml:"principals"`
	Risks      map[string]string    `yaml:"risks,omitempty"`
	Rules      map[string]string    `yaml:"rules,omitempty"`
	// Enforce false puts these callers in audit mode (see Config.Enforce).
	Enforce *bool `yaml:"enforce,omitempty"`
}

// Validate reports every problem of the layer, each with its full path under
// path (e.g. "connections[2].policy"), joined with errors.Join.
func (c Config) Validate(path string) error {
	var errs []error
	errs = append(errs, validateRisks(path+".risks", c.Risks)...)
	errs = append(errs, validateRules(path+".rules", c.Rules)...)
	for i, id := range c.Identities {
		p := fmt.Sprintf("%s.identities[%d]", path, i)
		if len(id.Principals) == 0 {
			errs = append(errs, fmt.Errorf("%s.principals: empty (want names, \"group:NAME\" or \"*\")", p))
		}
		for j, pr := range id.Principals {
			switch {
			case strings.TrimSpace(pr) == "":
				errs = append(errs, fmt.Errorf("%s.principals[%d]: empty principal", p, j))
			case pr == "group:" || (strings.HasPrefix(pr, "group:") && strings.TrimSpace(strings.TrimPrefix(pr, "group:")) == ""):
				errs = append(errs, fmt.Errorf("%s.principals[%d]: %q names no group (want \"group:NAME\")", p, j, pr))
			case pr != strings.TrimSpace(pr):
				errs = append(errs, fmt.Errorf("%s.principals[%d]: %q has surrounding spaces", p, j, pr))
			}
		}
		if len(id.Risks) == 0 && len(id.Rules) == 0 && id.Enforce == nil {
			errs = append(errs, fmt.Errorf("%s: overrides nothing (want risks, rules or enforce)", p))
		}
		errs = append(errs, validateRisks(p+".risks", id.Risks)...)
		errs = append(errs, validateRules(p+".rules", id.Rules)...)
	}
	return errors.Join(errs...)
}

func validateRisks(path string, m map[string]string) []error {
	var errs []error
	for _, k := range sortedKeys(m) {
		if _, err := protocols.ParseRisk(k); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
		if _, err := protocols.ParseAction(m[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", path, k, err))
		}
	}
	return errs
}

func validateRules(path string, m map[string]string) []error {
	var errs []error
	for _, k := range sortedKeys(m) {
		if err := checkRuleKey(k); err != nil {
			errs = append(errs, fmt.Errorf("%s[%s]: %w", path, k, err))
		}
		if _, err := protocols.ParseAction(m[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s[%s]: %w", path, k, err))
		}
	}
	return errs
}

// checkRuleKey accepts a catalogue rule id or "category.*".
func checkRuleKey(k string) error {
	if cat, ok := strings.CutSuffix(k, ".*"); ok {
		for _, id := range rule.IDs() {
			if strings.HasPrefix(id, cat+".") {
				return nil
			}
		}
		return fmt.Errorf("unknown rule category %q (want one of %s)", cat, strings.Join(categories(), ", "))
	}
	if _, ok := rule.Lookup(k); ok {
		return nil
	}
	if s := suggest(k); s != "" {
		return fmt.Errorf("unknown rule id (did you mean %s?)", s)
	}
	return errors.New("unknown rule id (see sqlrisk/RULES.md)")
}

func categories() []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range rule.IDs() {
		cat, _, _ := strings.Cut(id, ".")
		if !seen[cat] {
			seen[cat] = true
			out = append(out, cat+".*")
		}
	}
	return out
}

// suggest returns the catalogue id closest to k, if any is close.
func suggest(k string) string {
	best, bestD := "", 4
	for _, id := range rule.IDs() {
		if d := distance(k, id); d < bestD {
			best, bestD = id, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
