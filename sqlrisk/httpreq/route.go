package httpreq

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// Route is one route rule of a connection: requests whose method and path
// match (and, with Field, GraphQL operations selecting that root field)
// get its rule and risk.
type Route struct {
	// Methods the rule applies to; empty: every method.
	Methods []string `yaml:"methods"`
	// Path is a pattern of the path relative to the connection's base URL:
	// "*" matches one segment, "**" any number of them (none included),
	// other segments match literally, without regard to case. Empty
	// matches every path.
	Path string `yaml:"path"`
	// Field makes the rule one of GraphQL operations that select this
	// root field (on any endpoint Path matches).
	Field string `yaml:"field"`
	// Rule is a catalogue rule id (sqlrisk/RULES.md); empty gives the
	// request no rule, only Risk.
	Rule string `yaml:"rule"`
	// Risk is the request's risk: by default the rule's; it may be higher,
	// never lower (a lower risk needs a rule of lower risk).
	Risk string `yaml:"risk"`
}

// compiled is a checked Route.
type compiled struct {
	methods []string
	segs    []string // lower-cased pattern segments
	field   string
	rule    string
	risk    protocols.Risk
}

func compileRoute(r Route, p string) (compiled, []error) {
	var errs []error
	c := compiled{field: r.Field, rule: r.Rule}
	for i, m := range r.Methods {
		if !validMethod(m) {
			errs = append(errs, fmt.Errorf("%s.methods[%d]: %q is not an HTTP method", p, i, m))
		}
		c.methods = append(c.methods, strings.ToUpper(m))
	}
	switch {
	case r.Path == "":
	case !strings.HasPrefix(r.Path, "/"):
		errs = append(errs, fmt.Errorf("%s.path: %q must start with /", p, r.Path))
	default:
		c.segs = splitPath(strings.ToLower(r.Path))
	}
	if r.Rule == "" && r.Risk == "" {
		errs = append(errs, fmt.Errorf("%s: names neither a rule nor a risk", p))
	}
	if r.Rule != "" {
		in, ok := rule.Lookup(r.Rule)
		if !ok {
			errs = append(errs, fmt.Errorf("%s.rule: unknown rule id %q (see sqlrisk/RULES.md)", p, r.Rule))
		}
		c.risk = in.Risk
	}
	if r.Risk != "" {
		risk, err := protocols.ParseRisk(r.Risk)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.risk: %w", p, err))
		case r.Rule != "" && risk < c.risk:
			errs = append(errs, fmt.Errorf("%s.risk: %s is below the risk of rule %s (%s), which policies see: choose a rule of lower risk, or none", p, risk, r.Rule, c.risk))
		default:
			c.risk = risk
		}
	}
	return c, errs
}

// splitPath splits a cleaned path into its segments; "/" has none.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matchSegs matches path segments against a pattern's.
func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || (pat[0] != "*" && pat[0] != segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

func (c *compiled) matches(method string, segs []string, anyPath bool) bool {
	if len(c.methods) > 0 && !slices.Contains(c.methods, method) {
		return false
	}
	return anyPath || c.segs == nil || matchSegs(c.segs, segs)
}

// pattern is a compiled path pattern (GraphQL endpoints).
type pattern []string

func compilePattern(s string) (pattern, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("%q must start with /", s)
	}
	return pattern(splitPath(strings.ToLower(s))), nil
}

func (p pattern) match(segs []string) bool { return matchSegs(p, segs) }

// normalPath is the path a route is matched against: percent-decoded,
// cleaned, lower-cased, as segments. ok is false for a path that is not
// absolute or does not decode.
func normalPath(raw string) (segs []string, ok bool) {
	if !strings.HasPrefix(raw, "/") {
		return nil, false
	}
	dec, err := url.PathUnescape(raw)
	if err != nil || strings.IndexByte(dec, 0) >= 0 {
		return nil, false
	}
	return splitPath(strings.ToLower(path.Clean(dec))), true
}

// validMethod reports whether m is an HTTP method token (RFC 9110 5.6.2).
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
