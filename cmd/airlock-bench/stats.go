package main

import (
	"math"
	"slices"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted values by
// the nearest-rank method: the smallest value with at least p% of values at
// or below it. It is always an observed latency, never an interpolation.
func percentile(sorted []int64, p float64) float64 {
	n := len(sorted)
	if n == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	return float64(sorted[rank-1])
}

// median returns the median of the values that are not NaN (the mean of
// the two middle ones for an even count), or NaN when there are none.
func median(vals []float64) float64 {
	v := make([]float64, 0, len(vals))
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// extremes returns the smallest and largest value, NaN for none.
func extremes(vals []float64) (lo, hi float64) {
	lo, hi = math.NaN(), math.NaN()
	for _, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(lo) || v < lo {
			lo = v
		}
		if math.IsNaN(hi) || v > hi {
			hi = v
		}
	}
	return lo, hi
}

// Cell is one target's aggregated result on one workload: the median
// across rounds of each figure, and the median of per-round ratios (each
// round's target run divided by the same round's direct or pgbouncer run).
type Cell struct {
	Target    string
	Rounds    int // rounds with numbers
	TPS       float64
	P50us     float64
	P99us     float64
	ConnectMs float64
	CPUus     float64
	VsDirect  float64 // TPS ratio to direct
	// VsDirectMin and VsDirectMax are the extremes of the per-round
	// ratios: the spread the median hides, i.e. the noise.
	VsDirectMin, VsDirectMax float64
	VsBouncer                float64 // TPS ratio to pgbouncer
	AddedP50us               float64 // p50 minus direct's p50
	// FullRatio is, for an ablation target, the median of per-round
	// TPS(airlock-full) / TPS(this target): 1 − FullRatio is the share of
	// end-to-end throughput the feature the target lacks costs. FullRatioMin
	// and FullRatioMax are the per-round extremes. NaN for other targets.
	FullRatio, FullRatioMin, FullRatioMax float64
	// VolCS and InvolCS are the medians of the target process's voluntary
	// and involuntary context switches per transaction.
	VolCS, InvolCS float64
	Errors         []string
	// rounds are the target's successful runs by round, for figures
	// computed per round between two targets.
	rounds map[int]Sample
}

// baseOf is the target an ablation target is compared with: airlock-full
// for its ablations, airlock-quickstart for its own.
func baseOf(target string) (string, bool) {
	if target == targetQuickstartNoMask {
		return targetQuickstart, true
	}
	return targetFull, isAblation(target)
}

// Cost is 1 − FullRatio: what the feature an ablation target lacks costs.
func (c *Cell) Cost() float64 { return 1 - c.FullRatio }

// WorkloadResult is every target's cell for one workload.
type WorkloadResult struct {
	Workload Workload
	Cells    []Cell
}

// Failure is one failed run of a target.
type Failure struct {
	Target string
	Err    string
}

// Failures lists every failed run, targets in order.
func (r *WorkloadResult) Failures() []Failure {
	var out []Failure
	for _, c := range r.Cells {
		for _, e := range c.Errors {
			out = append(out, Failure{c.Target, e})
		}
	}
	return out
}

// cell returns the named target's cell, or nil.
func (r *WorkloadResult) cell(target string) *Cell {
	for i := range r.Cells {
		if r.Cells[i].Target == target {
			return &r.Cells[i]
		}
	}
	return nil
}

// aggregate turns samples into one result per workload, targets in order.
func aggregate(samples []Sample, ws []Workload, targets []string) []WorkloadResult {
	type key struct {
		w, t  string
		round int
	}
	byKey := map[key]Sample{}
	for _, s := range samples {
		byKey[key{s.Workload, s.Target, s.Round}] = s
	}
	var out []WorkloadResult
	for _, w := range ws {
		wr := WorkloadResult{Workload: w}
		for _, t := range targets {
			if !w.runs(t) {
				continue
			}
			c := Cell{Target: t, rounds: map[int]Sample{}}
			base, ablated := baseOf(t)
			var tps, p50, p99, conn, cpu, vol, invol, vsD, vsB, added, vsFull []float64
			for _, s := range samples {
				if s.Workload != w.Key || s.Target != t {
					continue
				}
				if !s.ok() {
					c.Errors = append(c.Errors, s.Err)
					continue
				}
				c.Rounds++
				c.rounds[s.Round] = s
				vol, invol = append(vol, s.VolCS), append(invol, s.InvolCS)
				tps = append(tps, s.TPS)
				p50 = append(p50, s.P50us)
				p99 = append(p99, s.P99us)
				conn = append(conn, s.ConnectMs)
				cpu = append(cpu, s.CPUus)
				if d, ok := byKey[key{w.Key, targetDirect, s.Round}]; ok && d.ok() && d.TPS > 0 {
					vsD = append(vsD, s.TPS/d.TPS)
					added = append(added, s.P50us-d.P50us)
				}
				if p, ok := byKey[key{w.Key, targetPgbouncer, s.Round}]; ok && p.ok() && p.TPS > 0 {
					vsB = append(vsB, s.TPS/p.TPS)
				}
				if f, ok := byKey[key{w.Key, base, s.Round}]; ablated && ok && f.ok() && s.TPS > 0 {
					vsFull = append(vsFull, f.TPS/s.TPS)
				}
			}
			c.TPS, c.P50us, c.P99us = median(tps), median(p50), median(p99)
			c.ConnectMs, c.CPUus = median(conn), median(cpu)
			c.VolCS, c.InvolCS = median(vol), median(invol)
			c.VsDirect, c.VsBouncer, c.AddedP50us = median(vsD), median(vsB), median(added)
			c.VsDirectMin, c.VsDirectMax = extremes(vsD)
			c.FullRatio = median(vsFull)
			c.FullRatioMin, c.FullRatioMax = extremes(vsFull)
			wr.Cells = append(wr.Cells, c)
		}
		out = append(out, wr)
	}
	return out
}
