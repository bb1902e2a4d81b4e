package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTargetWorkloads(t *testing.T) {
	tests := []struct {
		target string
		want   []string
	}{
		{targetQuickstart, []string{"select-simple-c1", "select-prepared-c16", "ordinary-c4", "connect-c4"}},
		{targetQuickstartNoMask, []string{"ordinary-c4"}},
		{targetFloorGoroutine, runtimeWorkloads},
		{targetFloorUring, runtimeWorkloads},
		{targetRelayGMP1Awake, runtimeWorkloads},
		{targetFullNoAwake, runtimeWorkloads},
		{targetRelay, []string{"select-simple-c1", "select-prepared-c1", "select-simple-c16", "select-prepared-c16", "tpcb-c16", "wide-c4", "ordinary-c4", "connect-c4"}},
		{targetNoRec, []string{"select-simple-c16", "select-prepared-c16", "wide-c4", "ordinary-c4", "connect-c4"}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			var got []string
			for _, w := range workloads {
				if w.runs(tc.target) {
					got = append(got, w.Key)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("runs on %v, want %v", got, tc.want)
			}
		})
	}
	for target, only := range targetWorkloads {
		if !contains(allTargets, target) {
			t.Errorf("%s is restricted but not a target", target)
		}
		for _, k := range only {
			if _, ok := workloadByKey(k); !ok {
				t.Errorf("%s restricted to unknown workload %s", target, k)
			}
		}
	}
	if ts, err := selectTargets("floor-epoll,airlock-quickstart"); err != nil || !slices.Equal(ts, []string{targetDirect, targetQuickstart, targetFloorEpoll}) {
		t.Fatalf("selectTargets = %v, %v", ts, err)
	}
}

// cpuResults runs aggregate over samples with the CPU per transaction of
// each target per round on the runtime workloads: cpu[target][workload]
// lists the rounds' figures.
func cpuResults(cpu map[string]map[string][]float64) []WorkloadResult {
	var samples []Sample
	targets := []string{targetDirect}
	for _, tgt := range allTargets {
		if _, ok := cpu[tgt]; ok {
			targets = append(targets, tgt)
		}
		for w, rounds := range cpu[tgt] {
			for i, v := range rounds {
				samples = append(samples, Sample{Workload: w, Target: tgt, Round: i + 1, TPS: 1000, Txns: 1000, CPUus: v, VolCS: 1, InvolCS: 0.1})
			}
		}
	}
	var ws []Workload
	for _, k := range []string{"select-simple-c1", "select-prepared-c1", "select-prepared-c16", "ordinary-c4", "connect-c4"} {
		ws = append(ws, mustWorkload(k))
	}
	return aggregate(samples, ws, targets)
}

// both gives a target the same per-round CPU figures at 1 and 16 clients.
func both(rounds ...float64) map[string][]float64 {
	return map[string][]float64{"select-prepared-c1": rounds, "select-prepared-c16": slices.Clone(rounds)}
}

func TestExperimentVerdicts(t *testing.T) {
	cpu := map[string]map[string][]float64{
		targetRelay:          both(20, 20, 20),
		targetRelayNoAwake:   both(24, 23.6, 24), // +20%, +18%: the keeper earns its 15%
		targetFull:           both(30, 30, 30),
		targetFullNoAwake:    both(36, 30, 33), // +10% at one client (median): remove it
		targetRelayGMP1:      both(20, 20, 20), // -17% at 1, -15% at 16 vs noawake: adopt
		targetFloorGoroutine: both(10, 10, 10),
		targetFloorLockstep:  both(8, 8, 9), // -20% at 1, -20% at 16 (median of 8, 8, 9 is 8)
		targetFloorEpoll:     both(8, 9, 9), // -10% at 16: keep
	}
	cpu[targetRelayGMP1]["select-prepared-c16"] = []float64{20.4, 20, 20} // -15%, -15.3%, -16.7%: median -15.3%
	skipped := map[string]string{targetFloorUring: "relay-floor cannot run it here: no io_uring"}
	got := map[string]Experiment{}
	for _, e := range evaluateExperiments(cpuResults(cpu), skipped) {
		got[e.Variant+" vs "+e.Baseline] = e
	}
	want := map[string]string{
		"airlock-relay-noawake vs airlock-relay":      verdictKeepKeeper,
		"airlock-full-noawake vs airlock-full":        verdictDropKeeper,
		"airlock-relay-gmp1 vs airlock-relay-noawake": verdictAdopt,
		"airlock-relay-gmp1-awake vs airlock-relay":   verdictNotMeasured,
		"floor-lockstep vs floor-goroutine":           verdictAdopt,
		"floor-epoll vs floor-goroutine":              verdictKeepDesign,
		"floor-uring vs floor-goroutine":              verdictNotMeasured,
	}
	for k, v := range want {
		if got[k].Verdict != v {
			t.Errorf("%s: verdict %q (c1 %+.3f, c16 %+.3f), want %q", k, got[k].Verdict, got[k].C1, got[k].C16, v)
		}
	}
	if e := got["floor-uring vs floor-goroutine"]; !strings.Contains(e.Why, "no io_uring") {
		t.Errorf("the uring experiment must say why it was not measured: %q", e.Why)
	}
	if e := got["airlock-relay-gmp1-awake vs airlock-relay"]; !strings.Contains(e.Why, "not in this run's targets") {
		t.Errorf("a target left out must say so: %q", e.Why)
	}
	if e := got["floor-lockstep vs floor-goroutine"]; math.Abs(e.C1+0.2) > 1e-9 || math.Abs(e.C16+0.2) > 1e-9 {
		t.Errorf("lockstep change = %v, %v, want -20%% at both", e.C1, e.C16)
	}
	if r := (Experiment{Removal: true}).Rule(); !strings.Contains(r, "≥ 17.6%") {
		t.Errorf("the keeper's rule must state the raise it needs: %q", r)
	}
}

func TestCPUGoals(t *testing.T) {
	c16 := func(v ...float64) map[string][]float64 { return map[string][]float64{"select-prepared-c16": v} }
	cpu := map[string]map[string][]float64{
		targetPgbouncer:          c16(20, 20, 20),
		targetRelay:              c16(15, 16, 17),
		targetFull:               c16(17, 17.5, 20), // − relay per round: 2, 1.5, 3: median 2
		targetQuickstart:         c16(30, 29, 31),   // 1.5×, 1.45×, 1.55×
		targetFloorGoroutine:     c16(16, 16, 16),
		targetFloorGoroutineGMP1: c16(15, 15.5, 17), // the lowest median: 15.5
	}
	gs := evaluateGoals(cpuResults(cpu), nil, []string{"classifier", "recording", "masking", "policy"}, map[string]string{targetQuickstartNoMask: "this build rejects its configuration: x"})
	want := []struct{ outcome, measured string }{
		{goalMet, "full − relay: +2.0 µs"},
		{goalMet, "quickstart/pgbouncer: 1.50×"},
		{goalMet, "airlock-relay / floor-goroutine-gmp1 (the lowest floor, 15.5 µs/tx): 1.00×"},
		{goalMet, "full/pgbouncer: 0.88×; ≤ 1.0×: yes"},
		{goalNotMeasured, "airlock-full: no data"},
		{goalNotMeasured, "ordinary-c4: no data; select-prepared-c16: no data"},
		{goalNotMeasured, "ordinary-c4: no data"},
		{goalNotMeasured, "full/pgbouncer: no data"},
		{goalNotMeasured, "no idle-connection measurement"},
	}
	if len(gs) != len(want) {
		t.Fatalf("%d goals, want %d", len(gs), len(want))
	}
	for i, w := range want {
		if gs[i].Outcome != w.outcome || !strings.HasPrefix(gs[i].Measured, w.measured) {
			t.Errorf("goal %d (%s): %s %q, want %s %q", i, gs[i].Goal, gs[i].Outcome, gs[i].Measured, w.outcome, w.measured)
		}
	}
	if !strings.Contains(gs[6].Note, "airlock-quickstart-nomask not run: this build rejects") {
		t.Errorf("a goal not measured says why: %q", gs[6].Note)
	}
	cpu[targetFull] = c16(17.1, 17.6, 20)
	if g := evaluateGoals(cpuResults(cpu), nil, nil, nil)[0]; g.Outcome != goalNotMet {
		t.Errorf("2.1 µs over the relay: %s", g.Outcome)
	}
	cpu[targetFull] = c16(25, 25, 25)
	if g := evaluateGoals(cpuResults(cpu), nil, nil, nil)[3]; g.Outcome != goalMet || !strings.Contains(g.Measured, "1.25×; ≤ 1.0×: no") {
		t.Errorf("1.25× pgbouncer: %s %q", g.Outcome, g.Measured)
	}
}

// TestStartFloorUnsupported runs a stand-in for relay-floor that exits as
// relay-floor does for a mode it cannot run: the target is skipped with
// its message, and a floor that fails otherwise is an error.
func TestStartFloorUnsupported(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b := &bench{tmp: dir, sv: &supervisor{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), opt: options{pgAddr: "127.0.0.1:5432"}}
	defer b.sv.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	b.floorBin = script("unsupported", `echo "relay-floor: uring: unsupported: io_uring_setup: operation not permitted" >&2; exit 3`)
	tgt, why, err := b.startFloor(ctx, targetFloorUring, floorTargets[targetFloorUring])
	if err != nil || tgt != nil || !strings.Contains(why, "io_uring_setup: operation not permitted") {
		t.Fatalf("unsupported mode: target %v, why %q, err %v", tgt, why, err)
	}
	b.floorBin = script("broken", `echo "relay-floor: listen: address in use" >&2; exit 1`)
	if tgt, why, err = b.startFloor(ctx, targetFloorEpoll, floorTargets[targetFloorEpoll]); err == nil || why != "" {
		t.Fatalf("a floor that fails otherwise must be an error: target %v, why %q, err %v", tgt, why, err)
	}
}
