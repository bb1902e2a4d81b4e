package main

import (
	"fmt"
	"math"
	"strings"
)

// cellOf returns target's cell on workload, or nil.
func cellOf(results []WorkloadResult, workload, target string) *Cell {
	for i := range results {
		if results[i].Workload.Key == workload {
			return results[i].cell(target)
		}
	}
	return nil
}

// pairedMedian is the median, over the rounds in which both a and b ran
// workload successfully, of f(a's run, b's run): the same-round comparison
// the TPS ratios make. NaN when there is no such round.
func pairedMedian(results []WorkloadResult, workload, a, b string, f func(x, y Sample) float64) float64 {
	ca, cb := cellOf(results, workload, a), cellOf(results, workload, b)
	if ca == nil || cb == nil {
		return math.NaN()
	}
	var vals []float64
	for round, x := range ca.rounds {
		if y, ok := cb.rounds[round]; ok {
			vals = append(vals, f(x, y))
		}
	}
	return median(vals)
}

func cpuRatio(x, y Sample) float64 { return x.CPUus / y.CPUus }
func cpuDiff(x, y Sample) float64  { return x.CPUus - y.CPUus }

// bestFloor is the floor-* target with the lowest median CPU per
// transaction on workload, empty when none ran.
func bestFloor(results []WorkloadResult, workload string) string {
	best, low := "", math.Inf(1)
	for _, t := range allTargets {
		if c := cellOf(results, workload, t); isFloor(t) && c != nil && c.CPUus < low {
			best, low = t, c.CPUus
		}
	}
	return best
}

// figure is one number a goal is judged by (or, with info, shows).
type figure struct {
	label  string
	value  float64
	ok     func(float64) bool
	format func(float64) string
	info   bool
}

// newGoal is one goal of the CPU-per-transaction table: its figures and
// the targets and workloads it needs, which explain a goal not measured.
type newGoal struct {
	text    string
	figures []figure
	needs   []string
	note    string
	// workloads are those its figures read.
	workloads []string
}

// judge turns g into a result: met when every judged figure passes, not
// measured when one is missing.
func (g newGoal) judge(results []WorkloadResult, skipped map[string]string) GoalResult {
	r := GoalResult{Goal: g.text, Outcome: goalMet, Note: g.note}
	var parts []string
	for _, f := range g.figures {
		if math.IsNaN(f.value) || math.IsInf(f.value, 0) {
			parts = append(parts, f.label+": no data")
			if !f.info {
				r.Outcome = goalNotMeasured
			}
			continue
		}
		parts = append(parts, f.label+": "+f.format(f.value))
		if !f.info && !f.ok(f.value) && r.Outcome == goalMet {
			r.Outcome = goalNotMet
		}
	}
	r.Measured = strings.Join(parts, "; ")
	if r.Outcome == goalNotMeasured {
		var why []string
		for _, w := range g.workloads {
			if !resultsHave(results, w) {
				why = append(why, w+" not selected (-workloads)")
			}
		}
		for _, t := range g.needs {
			if s, ok := skipped[t]; ok {
				why = append(why, t+" not run: "+s)
			}
		}
		r.Note = strings.Join(append(why, r.Note), "; ")
		r.Note = strings.Trim(r.Note, "; ")
	}
	return r
}

func usec1(v float64) string { return fmt.Sprintf("%+.1f µs", v) }
func yesNo(v float64) string {
	if v <= 1 {
		return "yes"
	}
	return "no"
}

// evaluateGoals computes the goals of CPU per transaction, latency and
// cost from the aggregated results, all same-run medians: CPU ratios and
// differences between two targets are medians of per-round figures, like
// the TPS ratios. skipped says why a target did not run.
func evaluateGoals(results []WorkloadResult, mem *MemoryResult, fullActive []string, skipped map[string]string) []GoalResult {
	const c16 = "select-prepared-c16"
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	below := func(x float64) func(float64) bool { return func(v float64) bool { return v < x } }
	cell := func(w, t string, f func(*Cell) float64) float64 {
		if c := cellOf(results, w, t); c != nil {
			return f(c)
		}
		return math.NaN()
	}
	cost := func(c *Cell) float64 { return c.Cost() }
	fullVsBouncer := pairedMedian(results, c16, targetFull, targetPgbouncer, cpuRatio)
	floor := bestFloor(results, c16)
	floorLabel := "airlock-relay / best floor (none ran)"
	if floor != "" {
		floorLabel = fmt.Sprintf("airlock-relay / %s (the lowest floor, %.1f µs/tx)", floor, cellOf(results, c16, floor).CPUus)
	}
	fullNote := fullSectionsNote(fullActive)
	goals := []newGoal{
		{"Full inspection adds ≤ 2 µs CPU per transaction over the relay (airlock-full − airlock-relay CPU/tx, select-prepared-c16)", []figure{
			{"full − relay", pairedMedian(results, c16, targetFull, targetRelay, cpuDiff), atMost(2), usec1, false},
		}, []string{targetFull, targetRelay}, fullNote, []string{c16}},
		{"airlock-quickstart ≤ 1.5× pgbouncer's CPU per transaction (select-prepared-c16)", []figure{
			{"quickstart/pgbouncer", pairedMedian(results, c16, targetQuickstart, targetPgbouncer, cpuRatio), atMost(1.5), ratio, false},
		}, []string{targetQuickstart, targetPgbouncer}, "", []string{c16}},
		{"airlock-relay ≤ 1.0× the best relay floor's CPU per transaction (select-prepared-c16)", []figure{
			{floorLabel, pairedMedian(results, c16, targetRelay, floor, cpuRatio), atMost(1.0), ratio, false},
		}, append([]string{targetRelay}, floorNames()...), "", []string{c16}},
		{"airlock-full ≤ 1.3× pgbouncer's CPU per transaction (select-prepared-c16; whether ≤ 1.0× shown too)", []figure{
			{"full/pgbouncer", fullVsBouncer, atMost(1.3), ratio, false},
			{"≤ 1.0×", fullVsBouncer, nil, yesNo, true},
		}, []string{targetFull, targetPgbouncer}, fullNote, []string{c16}},
		{"Added p50 latency at 1 client ≤ +20 µs over direct (airlock-full, select-simple-c1)", []figure{
			{"airlock-full", cell("select-simple-c1", targetFull, func(c *Cell) float64 { return c.AddedP50us }), atMost(20), usec1, false},
			{"pgbouncer, for reference", cell("select-simple-c1", targetPgbouncer, func(c *Cell) float64 { return c.AddedP50us }), nil, usec1, true},
		}, []string{targetFull}, fullNote, []string{"select-simple-c1"}},
		{"Recording costs < 5% of throughput (1 − TPS full/full-norec)", []figure{
			{"ordinary-c4", cell("ordinary-c4", targetNoRec, cost), below(0.05), pct1, false},
			{"select-prepared-c16", cell(c16, targetNoRec, cost), below(0.05), pct1, false},
		}, []string{targetFull, targetNoRec}, ablationNote(fullActive, "recording"), []string{"ordinary-c4", c16}},
		{"Masking with the quickstart detector set costs < 5% of throughput on ordinary rows (1 − TPS quickstart/quickstart-nomask, ordinary-c4)", []figure{
			{"ordinary-c4", cell("ordinary-c4", targetQuickstartNoMask, cost), below(0.05), pct1, false},
		}, []string{targetQuickstart, targetQuickstartNoMask}, "", []string{"ordinary-c4"}},
		{"Connect per transaction at or above pgbouncer's TPS (airlock-full/pgbouncer, connect-c4)", []figure{
			{"full/pgbouncer", cell("connect-c4", targetFull, func(c *Cell) float64 { return c.VsBouncer }), func(v float64) bool { return v >= 1 }, ratio, false},
		}, []string{targetFull, targetPgbouncer}, fullNote, []string{"connect-c4"}},
	}
	var out []GoalResult
	for _, g := range goals {
		out = append(out, g.judge(results, skipped))
	}
	return append(out, memoryGoal(mem))
}

// floorNames are the floor-* targets in run order.
func floorNames() []string {
	var out []string
	for _, t := range allTargets {
		if isFloor(t) {
			out = append(out, t)
		}
	}
	return out
}
