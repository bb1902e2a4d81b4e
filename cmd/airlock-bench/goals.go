package main

import (
	"fmt"
	"math"
	"strings"
)

// Goal outcomes.
const (
	goalMet         = "met"
	goalNotMet      = "not met"
	goalNotMeasured = "not measured"
)

// GoalResult is one goal, what was measured against it and the outcome.
type GoalResult struct {
	Goal     string
	Measured string
	Outcome  string
	Note     string
}

// check is one figure a goal compares with a threshold.
type check struct {
	workload, target string
	label            string // how the measured figure is named
	value            func(*Cell) float64
	ok               func(float64) bool
	format           func(float64) string
	// info marks a figure reported with the goal but not judged: its
	// value and its absence leave the outcome alone.
	info bool
}

func pct(v float64) string   { return fmt.Sprintf("%.0f%%", v*100) }
func pct1(v float64) string  { return fmt.Sprintf("%.1f%%", v*100) }
func usec(v float64) string  { return fmt.Sprintf("%+.0f µs", v) }
func ratio(v float64) string { return fmt.Sprintf("%.2f×", v) }

// evalChecks runs every check; the goal is met when all pass, not measured
// when any figure is missing.
func evalChecks(results []WorkloadResult, checks []check) (measured, outcome string) {
	var parts []string
	outcome = goalMet
	for _, c := range checks {
		v := math.NaN()
		for i := range results {
			if results[i].Workload.Key != c.workload {
				continue
			}
			if cell := results[i].cell(c.target); cell != nil {
				v = c.value(cell)
			}
		}
		if math.IsNaN(v) {
			parts = append(parts, c.label+": no data")
			if !c.info {
				outcome = goalNotMeasured
			}
			continue
		}
		parts = append(parts, c.label+": "+c.format(v))
		if !c.info && !c.ok(v) && outcome == goalMet {
			outcome = goalNotMet
		}
	}
	return strings.Join(parts, "; "), outcome
}

// memoryBoundKiB is the harness's own bound for "memory bounded": the goal
// names no figure, so an idle client may cost at most this much resident
// memory (1,000 idle clients in at most 256 MiB).
const memoryBoundKiB = 256

// evaluateEarlierGoals computes the goals the report judged before the
// CPU-per-transaction goals (evaluateGoals), from the aggregated results.
func evaluateEarlierGoals(results []WorkloadResult, fullActive []string) []GoalResult {
	vsDirect := func(c *Cell) float64 { return c.VsDirect }
	vsBouncer := func(c *Cell) float64 { return c.VsBouncer }
	added := func(c *Cell) float64 { return c.AddedP50us }
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	below := func(x float64) func(float64) bool { return func(v float64) bool { return v < x } }
	cost := func(c *Cell) float64 { return c.Cost() }
	fullNote := fullSectionsNote(fullActive)
	goals := []struct {
		text   string
		checks []check
		note   string
	}{
		{"Full inspection ≥ 75% of direct TPS on -S -M prepared -c 16", []check{
			{"select-prepared-c16", targetFull, "full/direct", vsDirect, atLeast(0.75), pct, false},
		}, fullNote},
		{"Full inspection ≥ 65% of direct TPS on -S -M simple -c 16", []check{
			{"select-simple-c16", targetFull, "full/direct", vsDirect, atLeast(0.65), pct, false},
		}, fullNote},
		{"Plain relay ≥ 90% of direct TPS (-S -c 16, simple and prepared)", []check{
			{"select-simple-c16", targetRelay, "simple", vsDirect, atLeast(0.90), pct, false},
			{"select-prepared-c16", targetRelay, "prepared", vsDirect, atLeast(0.90), pct, false},
		}, ""},
		{"Added p50 latency at 1 client ≤ 50 µs over direct (full inspection, -S simple and prepared)", []check{
			{"select-simple-c1", targetFull, "simple", added, atMost(50), usec, false},
			{"select-prepared-c1", targetFull, "prepared", added, atMost(50), usec, false},
		}, fullNote},
		{"Full inspection at or above pgbouncer's TPS (-S -c 16, simple and prepared)", []check{
			{"select-simple-c16", targetFull, "simple full/pgbouncer", vsBouncer, atLeast(1), ratio, false},
			{"select-prepared-c16", targetFull, "prepared full/pgbouncer", vsBouncer, atLeast(1), ratio, false},
		}, fullNote},
		{"Masking costs < 10% of end-to-end throughput on ordinary OLTP results", []check{
			{"ordinary-c4", targetNoMask, "1 − full/full-nomask on ordinary-c4", cost, below(0.10), pct1, false},
			{"wide-c4", targetNoMask, "on wide-c4 (dense PII: every row masked; information, not judged)", cost, nil, pct1, true},
		}, ablationNote(fullActive, "masking")},
		{"Recording costs < 5% of end-to-end throughput", []check{
			{"select-prepared-c16", targetNoRec, "1 − full/full-norec on select-prepared-c16", cost, below(0.05), pct1, false},
			{"select-simple-c16", targetNoRec, "select-simple-c16", cost, below(0.05), pct1, false},
			{"ordinary-c4", targetNoRec, "ordinary-c4", cost, below(0.05), pct1, false},
			{"connect-c4", targetNoRec, "connect-c4", cost, below(0.05), pct1, false},
		}, ablationNote(fullActive, "recording")},
	}
	var out []GoalResult
	for _, g := range goals {
		m, o := evalChecks(results, g.checks)
		out = append(out, GoalResult{Goal: g.text, Measured: m, Outcome: o, Note: g.note})
	}
	return out
}

// fullSectionsNote says which full-inspection sections airlock-full ran
// without, empty when it had them all.
func fullSectionsNote(fullActive []string) string {
	if missing := missingSections(fullActive); len(fullActive) == 0 {
		return "no full-inspection section is accepted by this build yet: airlock-full ran inspect mode with nothing else configured"
	} else if len(missing) > 0 {
		return "airlock-full ran without " + strings.Join(missing, ", ") + ", which this build does not accept yet"
	}
	return ""
}

// memoryGoal is met when 1,000 idle clients were actually held and each
// cost at most memoryBoundKiB of Airlock's resident memory.
func memoryGoal(mem *MemoryResult) GoalResult {
	g := GoalResult{Goal: fmt.Sprintf("Memory bounded and reported for 1,000 idle client connections (harness bound: ≤ %d KiB RSS per idle client)", memoryBoundKiB)}
	if mem == nil || mem.Pooled == nil || mem.Pooled.Opened == 0 {
		g.Outcome = goalNotMeasured
		g.Measured = "no idle-connection measurement"
		return g
	}
	p := mem.Pooled
	g.Measured = fmt.Sprintf("%d idle clients: RSS %.1f → %.1f MiB, %.0f KiB per client", p.Opened, kibToMiB(p.BeforeKiB), kibToMiB(p.AfterKiB), p.PerConnKiB())
	switch {
	case p.Requested < 1000:
		g.Outcome = goalNotMeasured
		g.Note = fmt.Sprintf("this run asked for %d idle clients (-idle), not 1,000", p.Requested)
	case p.Opened < 1000:
		g.Outcome = goalNotMet
		g.Note = fmt.Sprintf("only %d of 1,000 requested clients could be opened", p.Opened)
	case p.PerConnKiB() > memoryBoundKiB:
		g.Outcome = goalNotMet
	default:
		g.Outcome = goalMet
	}
	return g
}

func kibToMiB(k int64) float64 { return float64(k) / 1024 }

// ablationNote explains why a feature's cost could not be measured: the
// full configuration lacks the section its ablation takes away.
func ablationNote(active []string, section string) string {
	if contains(active, section) {
		return ""
	}
	return "airlock-full ran without " + section + ", which this build does not accept yet, so there was nothing to take away"
}

// missingSections lists the probed section names not active, in probe order.
func missingSections(active []string) []string {
	on := map[string]bool{}
	for _, a := range active {
		on[a] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range fullSections {
		if !on[p.Name] && !seen[p.Name] {
			out = append(out, p.Name)
			seen[p.Name] = true
		}
	}
	return out
}
