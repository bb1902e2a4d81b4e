package main

import (
	"math"
	"strings"
	"testing"
)

// resultsWith builds results where every cell is NaN except the given ones.
func resultsWith(cells map[string]map[string]Cell) []WorkloadResult {
	var out []WorkloadResult
	for _, w := range workloads {
		wr := WorkloadResult{Workload: w}
		for _, t := range allTargets {
			c, ok := cells[w.Key][t]
			if !ok {
				c = Cell{TPS: math.NaN(), VsDirect: math.NaN(), VsBouncer: math.NaN(), AddedP50us: math.NaN()}
			}
			c.Target = t
			wr.Cells = append(wr.Cells, c)
		}
		out = append(out, wr)
	}
	return out
}

func goodCells() map[string]map[string]Cell {
	c := func(vsD, vsB, added float64) Cell {
		return Cell{VsDirect: vsD, VsBouncer: vsB, AddedP50us: added, FullRatio: math.NaN()}
	}
	// abl is an ablation cell: full/ablation TPS ratio r, so cost 1 − r.
	abl := func(r float64) Cell { return Cell{VsDirect: 0.5, VsBouncer: 1, AddedP50us: 0, FullRatio: r} }
	return map[string]map[string]Cell{
		"select-prepared-c16": {targetFull: c(0.80, 1.10, 0), targetRelay: c(0.95, 1.2, 0), targetNoRec: abl(0.951)},
		"select-simple-c16":   {targetFull: c(0.70, 1.05, 0), targetRelay: c(0.92, 1.2, 0), targetNoRec: abl(1.02)},
		"select-simple-c1":    {targetFull: c(0.5, 1, 40)},
		"select-prepared-c1":  {targetFull: c(0.5, 1, 50)},
		"ordinary-c4":         {targetNoMask: abl(0.901), targetNoRec: abl(0.97)},
		"wide-c4":             {targetNoMask: abl(0.4)},
		"connect-c4":          {targetNoRec: abl(0.96)},
	}
}

// set changes one cell of the good ones.
func set(workload, target string, change func(*Cell)) func(map[string]map[string]Cell) {
	return func(m map[string]map[string]Cell) {
		c := m[workload][target]
		change(&c)
		m[workload][target] = c
	}
}

func goodMemory() *MemoryResult {
	return &MemoryResult{Pooled: &MemPhase{Requested: 1000, Opened: 1000, BeforeKiB: 10 << 10, AfterKiB: 10<<10 + 100*1000}}
}

func outcomes(gs []GoalResult) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Outcome)
	}
	return out
}

func TestEvaluateGoals(t *testing.T) {
	all := func(o string) []string { return []string{o, o, o, o, o, o, o, o} }
	met, not, none := goalMet, goalNotMet, goalNotMeasured
	tests := []struct {
		name   string
		cells  func(map[string]map[string]Cell)
		mem    *MemoryResult
		active []string
		want   []string
	}{
		{name: "all met at the thresholds", mem: goodMemory(), active: []string{"masking"}, want: all(goalMet)},
		{name: "full prepared below 75%", cells: set("select-prepared-c16", targetFull, func(c *Cell) { c.VsDirect = 0.749 }),
			mem: goodMemory(), want: []string{not, met, met, met, met, met, met, met}},
		{name: "one relay workload below 90% fails the goal", cells: set("select-simple-c16", targetRelay, func(c *Cell) { c.VsDirect = 0.89 }),
			mem: goodMemory(), want: []string{met, met, not, met, met, met, met, met}},
		{name: "latency over 50 µs", cells: set("select-prepared-c1", targetFull, func(c *Cell) { c.AddedP50us = 51 }),
			mem: goodMemory(), want: []string{met, met, met, not, met, met, met, met}},
		{name: "below pgbouncer", cells: set("select-simple-c16", targetFull, func(c *Cell) { c.VsBouncer = 0.99 }),
			mem: goodMemory(), want: []string{met, met, met, met, not, met, met, met}},
		{name: "missing data is not measured, not met", cells: func(m map[string]map[string]Cell) {
			delete(m, "select-prepared-c1")
		}, mem: nil, want: []string{met, met, met, none, met, met, met, none}},
		{name: "masking costs 10.1% on ordinary rows", cells: set("ordinary-c4", targetNoMask, func(c *Cell) { c.FullRatio = 0.899 }),
			mem: goodMemory(), want: []string{met, met, met, met, met, not, met, met}},
		{name: "wide rows are information only: their cost and their absence judge nothing", cells: func(m map[string]map[string]Cell) {
			delete(m, "wide-c4")
		}, mem: goodMemory(), want: all(met)},
		{name: "no masking ablation on ordinary rows", cells: set("ordinary-c4", targetNoMask, func(c *Cell) { c.FullRatio = math.NaN() }),
			mem: goodMemory(), want: []string{met, met, met, met, met, none, met, met}},
		{name: "recording costs 30% on connect-per-transaction", cells: set("connect-c4", targetNoRec, func(c *Cell) { c.FullRatio = 0.70 }),
			mem: goodMemory(), want: []string{met, met, met, met, met, met, not, met}},
		{name: "recording costs 5% on one of four workloads", cells: set("select-prepared-c16", targetNoRec, func(c *Cell) { c.FullRatio = 0.95 }),
			mem: goodMemory(), want: []string{met, met, met, met, met, met, not, met}},
		{name: "recording on ordinary rows not measured", cells: set("ordinary-c4", targetNoRec, func(c *Cell) { c.FullRatio = math.NaN() }),
			mem: goodMemory(), want: []string{met, met, met, met, met, met, none, met}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cells := goodCells()
			if tc.cells != nil {
				tc.cells(cells)
			}
			got := outcomes(earlierWithMemory(resultsWith(cells), tc.mem, tc.active))
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("outcomes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvaluateGoalsNotesInactiveFull(t *testing.T) {
	gs := earlierWithMemory(resultsWith(goodCells()), goodMemory(), nil)
	if !strings.Contains(gs[0].Note, "ran inspect mode with nothing else configured") {
		t.Errorf("with no full section active the full goals must say so, got note %q", gs[0].Note)
	}
	gs = earlierWithMemory(resultsWith(goodCells()), goodMemory(), []string{"classifier", "policy"})
	if want := "airlock-full ran without recording, masking, which this build does not accept yet"; gs[0].Note != want {
		t.Errorf("note = %q, want %q", gs[0].Note, want)
	}
	gs = earlierWithMemory(resultsWith(goodCells()), goodMemory(), []string{"classifier", "recording", "masking", "policy"})
	if gs[0].Note != "" {
		t.Errorf("with every section active there is nothing to note, got %q", gs[0].Note)
	}
	if gs[2].Note != "" {
		t.Errorf("the relay goal does not depend on full sections, got note %q", gs[2].Note)
	}
	if gs[5].Note != "" || gs[6].Note != "" {
		t.Errorf("with masking and recording active the cost goals note nothing, got %q and %q", gs[5].Note, gs[6].Note)
	}
	gs = earlierWithMemory(resultsWith(goodCells()), goodMemory(), []string{"classifier", "recording", "policy"})
	if !strings.Contains(gs[5].Note, "without masking") || gs[6].Note != "" {
		t.Errorf("without masking active: notes %q and %q", gs[5].Note, gs[6].Note)
	}
}

// TestCostGoalsText pins what the cost goals say: the formula, every
// workload's figure with one decimal, and wide rows marked as information.
func TestCostGoalsText(t *testing.T) {
	gs := earlierWithMemory(resultsWith(goodCells()), goodMemory(), nil)
	mask, rec := gs[5], gs[6]
	if mask.Goal != "Masking costs < 10% of end-to-end throughput on ordinary OLTP results" ||
		mask.Measured != "1 − full/full-nomask on ordinary-c4: 9.9%; on wide-c4 (dense PII: every row masked; information, not judged): 60.0%" {
		t.Errorf("masking goal = %q: %q", mask.Goal, mask.Measured)
	}
	if rec.Goal != "Recording costs < 5% of end-to-end throughput" ||
		rec.Measured != "1 − full/full-norec on select-prepared-c16: 4.9%; select-simple-c16: -2.0%; ordinary-c4: 3.0%; connect-c4: 4.0%" {
		t.Errorf("recording goal = %q: %q", rec.Goal, rec.Measured)
	}
}

func TestMemoryGoal(t *testing.T) {
	tests := []struct {
		name string
		p    *MemPhase
		want string
	}{
		{"1000 at 100 KiB", &MemPhase{Requested: 1000, Opened: 1000, BeforeKiB: 1000, AfterKiB: 101000}, goalMet},
		{"over the bound", &MemPhase{Requested: 1000, Opened: 1000, BeforeKiB: 0, AfterKiB: 300 * 1000}, goalNotMet},
		{"could not open all", &MemPhase{Requested: 1000, Opened: 900, BeforeKiB: 0, AfterKiB: 90000}, goalNotMet},
		{"quick run asked for fewer", &MemPhase{Requested: 200, Opened: 200, BeforeKiB: 0, AfterKiB: 20000}, goalNotMeasured},
		{"none opened", &MemPhase{Requested: 1000}, goalNotMeasured},
		{"no phase", nil, goalNotMeasured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := memoryGoal(&MemoryResult{Pooled: tc.p}).Outcome; got != tc.want {
				t.Fatalf("outcome = %q, want %q", got, tc.want)
			}
		})
	}
	if got := memoryGoal(nil).Outcome; got != goalNotMeasured {
		t.Fatalf("nil result: %q", got)
	}
}

// earlierWithMemory is the earlier goals' table as it was judged, memory
// goal last.
func earlierWithMemory(results []WorkloadResult, mem *MemoryResult, active []string) []GoalResult {
	return append(evaluateEarlierGoals(results, active), memoryGoal(mem))
}
