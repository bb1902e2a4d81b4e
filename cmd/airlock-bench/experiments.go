package main

import (
	"fmt"
	"math"
)

// adoptCut is the rule's threshold: a change of design is adopted only
// when it cuts CPU per transaction by at least this share at both 1 and
// 16 clients.
const adoptCut = 0.15

// Experiment verdicts.
const (
	verdictAdopt       = "adopt"
	verdictKeepDesign  = "keep the current design"
	verdictKeepKeeper  = "keep keep_awake"
	verdictDropKeeper  = "remove keep_awake"
	verdictNotMeasured = "not measured"
)

// Experiment compares a variant's CPU per transaction with its baseline's
// at 1 and 16 clients (select-prepared-c1 and -c16).
type Experiment struct {
	Name              string
	Variant, Baseline string
	// Removal marks an experiment whose variant takes a present feature
	// away: the feature stays only if it earns the rule's cut, i.e. if
	// removing it raises CPU per transaction by 1/(1−cut) − 1 or more.
	Removal bool
	// C1 and C16 are the medians of per-round variant/baseline CPU per
	// transaction, minus 1: negative when the variant is cheaper.
	C1, C16 float64
	Verdict string
	Why     string // why it was not measured
}

// Rule states the experiment's decision rule.
func (e Experiment) Rule() string {
	if e.Removal {
		return fmt.Sprintf("keep_awake stays only if it cuts CPU/tx by ≥ %.0f%% at both 1 and 16 clients, i.e. turning it off raises CPU/tx by ≥ %.1f%% at both; else remove it", adoptCut*100, (1/(1-adoptCut)-1)*100)
	}
	return fmt.Sprintf("adopt only if the variant cuts CPU/tx by ≥ %.0f%% at both 1 and 16 clients; else keep the current design", adoptCut*100)
}

// experimentPlan lists the experiments, in report order.
var experimentPlan = []Experiment{
	{Name: "keep_awake off vs on (relay)", Variant: targetRelayNoAwake, Baseline: targetRelay, Removal: true},
	{Name: "keep_awake off vs on (full inspection)", Variant: targetFullNoAwake, Baseline: targetFull, Removal: true},
	{Name: "GOMAXPROCS=1 vs default (relay, keep_awake off)", Variant: targetRelayGMP1, Baseline: targetRelayNoAwake},
	{Name: "GOMAXPROCS=1 vs default (relay, keep_awake on)", Variant: targetRelayGMP1Awake, Baseline: targetRelay},
	{Name: "one goroutine per session (lockstep) vs one per direction", Variant: targetFloorLockstep, Baseline: targetFloorGoroutine},
	{Name: "one locked OS thread over epoll vs goroutines", Variant: targetFloorEpoll, Baseline: targetFloorGoroutine},
	{Name: "io_uring vs goroutines", Variant: targetFloorUring, Baseline: targetFloorGoroutine},
	{Name: "io_uring, raw blocking wait, vs goroutines", Variant: targetFloorUringRawWait, Baseline: targetFloorGoroutine},
}

// evaluateExperiments fills every planned experiment from the results;
// skipped says why a target did not run.
func evaluateExperiments(results []WorkloadResult, skipped map[string]string) []Experiment {
	change := func(x, y Sample) float64 { return x.CPUus/y.CPUus - 1 }
	var out []Experiment
	for _, e := range experimentPlan {
		e.C1 = pairedMedian(results, runtimeWorkloads[0], e.Variant, e.Baseline, change)
		e.C16 = pairedMedian(results, runtimeWorkloads[1], e.Variant, e.Baseline, change)
		e.Verdict = e.verdict()
		if e.Verdict == verdictNotMeasured {
			e.Why = missingWhy(results, skipped, e.Variant, e.Baseline)
		}
		out = append(out, e)
	}
	return out
}

// verdict applies the rule to the measured changes.
func (e Experiment) verdict() string {
	if math.IsNaN(e.C1) || math.IsNaN(e.C16) {
		return verdictNotMeasured
	}
	if e.Removal {
		raise := 1/(1-adoptCut) - 1
		if e.C1 >= raise && e.C16 >= raise {
			return verdictKeepKeeper
		}
		return verdictDropKeeper
	}
	if e.C1 <= -adoptCut && e.C16 <= -adoptCut {
		return verdictAdopt
	}
	return verdictKeepDesign
}

// missingWhy says why an experiment's targets give no paired figure.
func missingWhy(results []WorkloadResult, skipped map[string]string, targets ...string) string {
	for _, t := range targets {
		if s, ok := skipped[t]; ok {
			return t + " not run: " + s
		}
	}
	for _, t := range targets {
		for _, w := range runtimeWorkloads {
			c := cellOf(results, w, t)
			switch {
			case c == nil && !resultsHave(results, w):
				return w + " not selected (-workloads)"
			case c == nil:
				return t + " not in this run's targets (-targets)"
			case c.Rounds == 0:
				return t + " had no successful run on " + w
			}
		}
	}
	return "no round in which both ran"
}

// resultsHave reports whether workload was run.
func resultsHave(results []WorkloadResult, workload string) bool {
	for _, r := range results {
		if r.Workload.Key == workload {
			return true
		}
	}
	return false
}

// RuntimeRow is one target's figures on one of the runtime workloads.
type RuntimeRow struct {
	Target   string
	Workload string
	Cell     *Cell  // nil when the target did not run
	Why      string // why, then
}

// runtimeTargets are the targets the runtime table shows, in its order.
var runtimeTargets = []string{targetPgbouncer, targetFloorGoroutine, targetFloorGoroutineGMP1, targetFloorLockstep, targetFloorEpoll, targetFloorUring, targetFloorUringRawWait,
	targetRelay, targetRelayNoAwake, targetRelayGMP1, targetRelayGMP1Awake, targetFull, targetFullNoAwake}

// runtimeRows are the runtime table's rows: every runtime target on each
// runtime workload that ran.
func runtimeRows(results []WorkloadResult, skipped map[string]string) []RuntimeRow {
	var out []RuntimeRow
	for _, w := range runtimeWorkloads {
		if !resultsHave(results, w) {
			continue
		}
		for _, t := range runtimeTargets {
			r := RuntimeRow{Target: t, Workload: w, Cell: cellOf(results, w, t)}
			if r.Cell == nil || r.Cell.Rounds == 0 {
				r.Cell, r.Why = nil, missingWhy(results, skipped, t)
			}
			out = append(out, r)
		}
	}
	return out
}
