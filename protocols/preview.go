package protocols

import (
	"fmt"
	"strings"
	"time"
)

// Lines describe the preview for people: its status, then one line per
// effect.
func (pv *Preview) Lines() []string {
	head := "preview " + pv.Status
	if pv.Elapsed > 0 {
		head += fmt.Sprintf(" in %s", pv.Elapsed.Round(100*time.Microsecond))
	}
	if pv.Note != "" {
		head += ": " + pv.Note
	}
	out := []string{head}
	for _, e := range pv.Effects {
		out = append(out, "  "+e.String())
	}
	return out
}

// String describes the effect in one line: "statement 1: delete on
// public.t: about 1000 rows (planner estimate); 998 rows (exact count)".
func (e PreviewEffect) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "statement %d: %s", e.Statement, e.Kind)
	if e.Object != "" {
		b.WriteString(" on ")
		if e.ObjectType != "" {
			b.WriteString(e.ObjectType + " ")
		}
		b.WriteString(e.Object)
	}
	var facts []string
	if e.EstimatedRows != nil {
		src := "planner"
		if e.Kind == "drop" || e.Kind == "truncate" || e.Kind == "alter" {
			src = "catalog"
		}
		facts = append(facts, fmt.Sprintf("about %d rows (%s estimate)", *e.EstimatedRows, src))
	}
	if e.ExactRows != nil {
		facts = append(facts, fmt.Sprintf("%d rows (exact count)", *e.ExactRows))
	}
	if e.Bytes != nil {
		facts = append(facts, humanBytes(*e.Bytes))
	}
	if len(e.Dependents) > 0 {
		facts = append(facts, "depended on by "+strings.Join(e.Dependents, ", "))
	}
	if e.Note != "" {
		facts = append(facts, e.Note)
	}
	if len(facts) > 0 {
		b.WriteString(": " + strings.Join(facts, "; "))
	}
	return b.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// previewCategories are the rule categories of a command Airlock plans for
// a preview. A command with any other rule (a function that reaches
// outside, dynamic code, a role switch) is not planned at all: the
// database's planner or optimizer may evaluate functions and subqueries
// while it plans, even where the plan runs nothing.
var previewCategories = map[string]bool{"write": true, "schema": true, "ddl": true}

// NotPlanned is the skipped preview of a command classified cls that does
// more than write or change the schema, or nil when it may be planned.
func NotPlanned(cls *Classification) *Preview {
	if cls == nil {
		return nil
	}
	for _, r := range cls.Rules {
		if cat, _, _ := strings.Cut(r, "."); !previewCategories[cat] {
			return &Preview{Status: PreviewSkipped,
				Note: "not planned: the command does more than write or change the schema (" + r + ")"}
		}
	}
	return nil
}
