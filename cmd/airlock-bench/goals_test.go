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
	c := func(vsD, vsB, added float64) Cell { return Cell{VsDirect: vsD, VsBouncer: vsB, AddedP50us: added} }
	return map[string]map[string]Cell{
		"select-prepared-c16": {targetFull: c(0.80, 1.10, 0), targetRelay: c(0.95, 1.2, 0)},
		"select-simple-c16":   {targetFull: c(0.70, 1.05, 0), targetRelay: c(0.92, 1.2, 0)},
		"select-simple-c1":    {targetFull: c(0.5, 1, 40)},
		"select-prepared-c1":  {targetFull: c(0.5, 1, 50)},
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
	all := func(o string) []string { return []string{o, o, o, o, o, o} }
	tests := []struct {
		name   string
		cells  func(map[string]map[string]Cell)
		mem    *MemoryResult
		active []string
		want   []string
	}{
		{name: "all met at the thresholds", mem: goodMemory(), active: []string{"masking"}, want: all(goalMet)},
		{name: "full prepared below 75%", cells: func(m map[string]map[string]Cell) {
			c := m["select-prepared-c16"][targetFull]
			c.VsDirect = 0.749
			m["select-prepared-c16"][targetFull] = c
		}, mem: goodMemory(), want: []string{goalNotMet, goalMet, goalMet, goalMet, goalMet, goalMet}},
		{name: "one relay workload below 90% fails the goal", cells: func(m map[string]map[string]Cell) {
			c := m["select-simple-c16"][targetRelay]
			c.VsDirect = 0.89
			m["select-simple-c16"][targetRelay] = c
		}, mem: goodMemory(), want: []string{goalMet, goalMet, goalNotMet, goalMet, goalMet, goalMet}},
		{name: "latency over 50 µs", cells: func(m map[string]map[string]Cell) {
			c := m["select-prepared-c1"][targetFull]
			c.AddedP50us = 51
			m["select-prepared-c1"][targetFull] = c
		}, mem: goodMemory(), want: []string{goalMet, goalMet, goalMet, goalNotMet, goalMet, goalMet}},
		{name: "below pgbouncer", cells: func(m map[string]map[string]Cell) {
			c := m["select-simple-c16"][targetFull]
			c.VsBouncer = 0.99
			m["select-simple-c16"][targetFull] = c
		}, mem: goodMemory(), want: []string{goalMet, goalMet, goalMet, goalMet, goalNotMet, goalMet}},
		{name: "missing data is not measured, not met", cells: func(m map[string]map[string]Cell) {
			delete(m, "select-prepared-c1")
		}, mem: nil, want: []string{goalMet, goalMet, goalMet, goalNotMeasured, goalMet, goalNotMeasured}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cells := goodCells()
			if tc.cells != nil {
				tc.cells(cells)
			}
			got := outcomes(evaluateGoals(resultsWith(cells), tc.mem, tc.active))
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("outcomes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvaluateGoalsNotesInactiveFull(t *testing.T) {
	gs := evaluateGoals(resultsWith(goodCells()), goodMemory(), nil)
	if !strings.Contains(gs[0].Note, "ran inspect mode with nothing else configured") {
		t.Errorf("with no full section active the full goals must say so, got note %q", gs[0].Note)
	}
	gs = evaluateGoals(resultsWith(goodCells()), goodMemory(), []string{"classifier", "policy"})
	if want := "airlock-full ran without recording, masking, which this build does not accept yet"; gs[0].Note != want {
		t.Errorf("note = %q, want %q", gs[0].Note, want)
	}
	gs = evaluateGoals(resultsWith(goodCells()), goodMemory(), []string{"classifier", "recording", "masking", "policy"})
	if gs[0].Note != "" {
		t.Errorf("with every section active there is nothing to note, got %q", gs[0].Note)
	}
	if gs[2].Note != "" {
		t.Errorf("the relay goal does not depend on full sections, got note %q", gs[2].Note)
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
