package recording

import (
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
)

// decisionDetail prints what a decision frame holds beyond its verdict:
// audit mode, the access grant in force and the reviewers' preview.
func (p *textPrinter) decisionDetail(d *protocols.Decision) {
	pad := indent + "          "
	switch {
	case d.Audit:
		fmt.Fprintf(p.w, "%saudit mode: the policy would %s; not enforced\n", pad, esc(string(d.Verdict())))
	case d.PolicyAction != "" && d.PolicyAction != d.Action:
		fmt.Fprintf(p.w, "%spolicy: %s\n", pad, esc(string(d.PolicyAction)))
	}
	if d.Grant != "" {
		fmt.Fprintf(p.w, "%sunder access grant %s\n", pad, esc(d.Grant))
	}
	if d.Preview != nil {
		for _, line := range d.Preview.Lines() {
			fmt.Fprintf(p.w, "%s%s\n", pad, esc(line))
		}
	}
}
