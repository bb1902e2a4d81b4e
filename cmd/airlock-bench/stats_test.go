package main

import (
	"math"
	"strings"
	"testing"
)

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   float64
	}{
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the maximum", hundred, 100, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"single value", []int64{42}, 99, 42},
		{"p50 of two is the lower (nearest rank)", []int64{10, 20}, 50, 10},
		{"p99 of ten is the maximum", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1000}, 99, 1000},
		{"p90 of ten", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1000}, 90, 9},
		{"empty", nil, 50, math.NaN()},
		{"p0 is undefined", hundred, 0, math.NaN()},
		{"over 100 is undefined", hundred, 101, math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := percentile(tc.sorted, tc.p)
			if !sameFloat(got, tc.want) {
				t.Fatalf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even is the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"NaN ignored", []float64{nan, 5, 1, nan, 3}, 3},
		{"all NaN", []float64{nan, nan}, nan},
		{"empty", nil, nan},
		{"does not reorder its input", []float64{9, 1}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := median(in); !sameFloat(got, tc.want) {
				t.Fatalf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if !sameFloat(in[i], tc.in[i]) {
					t.Fatalf("median reordered its input: %v", in)
				}
			}
		})
	}
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func sample(w, tgt string, round int, tps, p50 float64) Sample {
	return Sample{Workload: w, Target: tgt, Round: round, TPS: tps, P50us: p50, P99us: p50 * 3,
		ConnectMs: math.NaN(), CPUus: math.NaN(), Txns: int64(tps * 10)}
}

func TestAggregate(t *testing.T) {
	w := Workload{Key: "w"}
	samples := []Sample{
		sample("w", targetDirect, 1, 1000, 100),
		sample("w", targetPgbouncer, 1, 800, 120),
		sample("w", targetFull, 1, 900, 130),
		// Round 2: the machine got busier for everybody; ratios stay put.
		sample("w", targetDirect, 2, 500, 200),
		sample("w", targetPgbouncer, 2, 400, 240),
		sample("w", targetFull, 2, 400, 280),
		// Round 3: full failed; its other rounds still count.
		sample("w", targetDirect, 3, 2000, 50),
		sample("w", targetPgbouncer, 3, 1600, 60),
		{Workload: "w", Target: targetFull, Round: 3, Err: "pgbench: exit status 2", ConnectMs: math.NaN(), CPUus: math.NaN()},
	}
	samples[2].CPUus, samples[5].CPUus = 40, 60
	res := aggregate(samples, []Workload{w}, []string{targetDirect, targetPgbouncer, targetFull})
	if len(res) != 1 || len(res[0].Cells) != 3 {
		t.Fatalf("aggregate shape: %+v", res)
	}
	d, b, f := res[0].cell(targetDirect), res[0].cell(targetPgbouncer), res[0].cell(targetFull)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"direct TPS median of 3", d.TPS, 1000},
		{"direct vs direct", d.VsDirect, 1},
		{"direct added p50", d.AddedP50us, 0},
		{"pgbouncer vs direct: every round 0.8", b.VsDirect, 0.8},
		{"full TPS median of its 2 good rounds", f.TPS, 650},
		{"full vs direct: median of 0.9 and 0.8", f.VsDirect, 0.85},
		{"full vs pgbouncer: median of 1.125 and 1.0", f.VsBouncer, 1.0625},
		{"full added p50: median of +30 and +80", f.AddedP50us, 55},
		{"full CPU", f.CPUus, 50},
		{"full lowest round vs direct", f.VsDirectMin, 0.8},
		{"full highest round vs direct", f.VsDirectMax, 0.9},
		{"direct has no CPU figure", d.CPUus, math.NaN()},
	}
	for _, c := range checks {
		if !sameFloat(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if f.Rounds != 2 || len(f.Errors) != 1 {
		t.Errorf("full rounds %d errors %v, want 2 rounds and the one error", f.Rounds, f.Errors)
	}
	if res[0].cell("nope") != nil {
		t.Error("cell of an unknown target should be nil")
	}
}

func TestAggregateWithoutDirectInRound(t *testing.T) {
	samples := []Sample{
		{Workload: "w", Target: targetDirect, Round: 1, Err: "refused", ConnectMs: math.NaN(), CPUus: math.NaN()},
		sample("w", targetRelay, 1, 900, 130),
	}
	res := aggregate(samples, []Workload{{Key: "w"}}, []string{targetDirect, targetRelay})
	r := res[0].cell(targetRelay)
	if !math.IsNaN(r.VsDirect) || !math.IsNaN(r.AddedP50us) {
		t.Errorf("a ratio without a direct run in the same round must be missing, got %v and %v", r.VsDirect, r.AddedP50us)
	}
	if r.TPS != 900 {
		t.Errorf("TPS = %v, want 900", r.TPS)
	}
}

func TestAggregateAblation(t *testing.T) {
	abl := Workload{Key: "a", Ablations: true}
	plain := Workload{Key: "p"}
	samples := []Sample{
		sample("a", targetDirect, 1, 1000, 100),
		sample("a", targetFull, 1, 900, 130),
		sample("a", targetNoMask, 1, 1000, 120), // full/nomask 0.90
		sample("a", targetNoRec, 1, 900, 130),   // 1.00
		sample("a", targetDirect, 2, 1000, 100),
		sample("a", targetFull, 2, 600, 130),
		sample("a", targetNoMask, 2, 800, 120), // 0.75
		sample("a", targetNoRec, 2, 500, 130),  // 1.20: slower without recording, i.e. noise
		sample("a", targetDirect, 3, 1000, 100),
		sample("a", targetFull, 3, 950, 130),
		sample("a", targetNoMask, 3, 1000, 120), // 0.95
		{Workload: "a", Target: targetNoRec, Round: 3, Err: "refused", ConnectMs: math.NaN(), CPUus: math.NaN()},
		sample("p", targetDirect, 1, 1000, 100),
		sample("p", targetFull, 1, 900, 130),
	}
	res := aggregate(samples, []Workload{abl, plain}, allTargets)
	nm, nr, f := res[0].cell(targetNoMask), res[0].cell(targetNoRec), res[0].cell(targetFull)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"nomask: median of 0.90, 0.75, 0.95", nm.FullRatio, 0.90},
		{"nomask cost", nm.Cost(), 0.10},
		{"nomask lowest round", nm.FullRatioMin, 0.75},
		{"nomask highest round", nm.FullRatioMax, 0.95},
		{"norec: median of its two good rounds, 1.00 and 1.20", nr.FullRatio, 1.10},
		{"norec cost is negative: noise", nr.Cost(), -0.10},
		{"full is no ablation", f.FullRatio, math.NaN()},
	}
	for _, c := range checks {
		if !sameFloat(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if res[1].cell(targetNoMask) != nil || res[1].cell(targetNoRec) != nil {
		t.Error("a workload without ablations must have no ablation cells")
	}
	if res[1].cell(targetFull) == nil || len(res[1].Cells) != 5 {
		t.Errorf("plain workload cells = %+v", res[1].Cells)
	}
}

// TestRoundOrder checks that each round starts one target further along
// and runs every target once.
func TestRoundOrder(t *testing.T) {
	targets := []string{"direct", "pgbouncer", "relay", "full"}
	for round, want := range map[int]string{
		1: "direct pgbouncer relay full",
		2: "pgbouncer relay full direct",
		4: "full direct pgbouncer relay",
		5: "direct pgbouncer relay full",
	} {
		if got := strings.Join(roundOrder(targets, round), " "); got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if got := strings.Join(targets, " "); got != "direct pgbouncer relay full" {
		t.Errorf("roundOrder changed its argument: %s", got)
	}
	if roundOrder([]string(nil), 3) != nil {
		t.Error("no targets, yet an order")
	}
}
