package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"strings"
	"text/template"
	"time"
)

// Report is everything BENCHMARKS.md shows.
type Report struct {
	Date     string
	Command  string
	Quick    bool
	Rounds   int
	Duration string
	Warmup   string
	// Upstream says how the gateways reach PostgreSQL.
	Upstream      string
	Targets       []string
	Facts         Facts
	ClockTicks    uint64
	Modes         []ModeInfo
	Probes        []probeResult
	FullActive    []string
	MaskingSeen   string
	RecordingSeen string
	// Checks are further findings of the checks made before and after
	// measuring (ablations, ordinary rows), one sentence each.
	Checks []string
	// AblationWorkloads are the workloads the ablation targets ran on.
	AblationWorkloads []string
	Results           []WorkloadResult
	Goals             []GoalResult
	// EarlierGoals are the goals judged before the CPU-per-transaction
	// ones, kept for comparison.
	EarlierGoals []GoalResult
	// Skipped says why a selected target did not run.
	Skipped map[string]string
	// Runtime and Experiments are the runtime experiments' tables.
	Runtime     []RuntimeRow
	Experiments []Experiment
	Activity    []Activity
	Memory      *MemoryResult
	Samples     []Sample
	// runDuration renders workload command lines.
	runDuration time.Duration
}

// ModeInfo describes one Airlock target.
type ModeInfo struct {
	Target      string
	Description string
}

// MemPhases lists the memory measurements that ran, in report order.
func (r *Report) MemPhases() []*MemPhase {
	if r.Memory == nil {
		return nil
	}
	var out []*MemPhase
	for _, p := range []*MemPhase{r.Memory.Bouncer, r.Memory.Direct, r.Memory.Pooled} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// CostRow is one feature's cost on one workload: airlock-full against the
// ablation target that lacks the feature, in the same rounds.
type CostRow struct {
	Workload string
	Feature  string
	Target   string
	FullTPS  float64 // median across rounds
	TPS      float64 // the ablation target's median
	Cell     Cell
}

// costTargets are the targets that lack one feature of another, with the
// feature, in report order.
var costTargets = []struct{ target, feature string }{
	{targetNoMask, "masking"},
	{targetNoRec, "recording"},
	{targetQuickstartNoMask, "masking with the quickstart's detectors, vs airlock-quickstart"},
}

// Costs lists every ablation cell, workloads in run order and ablations in
// target order.
func (r *Report) Costs() []CostRow {
	var out []CostRow
	for i := range r.Results {
		wr := &r.Results[i]
		for _, a := range costTargets {
			c := wr.cell(a.target)
			if c == nil {
				continue
			}
			row := CostRow{Workload: wr.Workload.Key, Feature: a.feature, Target: a.target, FullTPS: math.NaN(), TPS: c.TPS, Cell: *c}
			base, _ := baseOf(a.target)
			if full := wr.cell(base); full != nil {
				row.FullTPS = full.TPS
			}
			out = append(out, row)
		}
	}
	return out
}

//go:embed report.md.tmpl
var reportTemplate string

func dash(v float64, format string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

var reportFuncs = template.FuncMap{
	"num0":   func(v float64) string { return dash(v, "%.0f") },
	"num1":   func(v float64) string { return dash(v, "%.1f") },
	"num2":   func(v float64) string { return dash(v, "%.2f") },
	"signed": func(v float64) string { return dash(v, "%+.0f") },
	"pctv":   func(v float64) string { return dash(v*100, "%.0f%%") },
	"mib":    func(k int64) string { return fmt.Sprintf("%.1f", float64(k)/1024) },
	// spread shows the per-round range of a ratio when rounds differ.
	"spread": func(c Cell) string {
		if c.Target == targetDirect || math.IsNaN(c.VsDirectMin) || c.VsDirectMin == c.VsDirectMax {
			return ""
		}
		return fmt.Sprintf(" (%.0f–%.0f)", c.VsDirectMin*100, c.VsDirectMax*100)
	},
	// costRange shows the per-round range of a feature's cost.
	"costRange": func(c Cell) string {
		if math.IsNaN(c.FullRatioMin) || c.FullRatioMin == c.FullRatioMax {
			return ""
		}
		return fmt.Sprintf(" (%.1f%% to %.1f%%)", (1-c.FullRatioMax)*100, (1-c.FullRatioMin)*100)
	},
	"pct1": func(v float64) string { return dash(v*100, "%.1f%%") },
	// change shows a relative change with its sign.
	"change": func(v float64) string { return dash(v*100, "%+.1f%%") },
	"isNaN":  math.IsNaN,
	"join":   strings.Join,
	// oneLine keeps a table cell on one line and free of pipes.
	"oneLine": func(s string) string {
		s = strings.Join(strings.Fields(s), " ")
		return strings.ReplaceAll(s, "|", `\|`)
	},
}

// render produces BENCHMARKS.md.
func (r *Report) render() ([]byte, error) {
	funcs := template.FuncMap{"commandLine": func(w Workload) string { return w.CommandLine(r.runDuration) }, "idleSecs": idleSecs}
	for k, v := range reportFuncs {
		funcs[k] = v
	}
	t, err := template.New("report").Funcs(funcs).Parse(reportTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse report template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	return b.Bytes(), nil
}
