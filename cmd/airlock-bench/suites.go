package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Suites: the PostgreSQL one (pgbench, the report's main part) and one per
// other engine, each measuring Airlock side by side with direct access and
// a plain relay peer of its protocol, with the same-round ratios the
// PostgreSQL suite reports.
const (
	suitePostgres = "postgres"
	suiteMySQL    = "mysql"
	suiteRedis    = "redis"
	suiteHTTP     = "http"
)

var allSuites = []string{suitePostgres, suiteMySQL, suiteRedis, suiteHTTP}

// parseSuites reads -suites: a comma-separated list, empty for all, each at
// most once, kept in run order.
func parseSuites(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return append([]string(nil), allSuites...), nil
	}
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if !contains(allSuites, f) {
			return nil, fmt.Errorf("-suites: unknown suite %q (want some of %s)", f, strings.Join(allSuites, ", "))
		}
		if want[f] {
			return nil, fmt.Errorf("-suites: %q named twice", f)
		}
		want[f] = true
	}
	var out []string
	for _, s := range allSuites {
		if want[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// protoTarget is one endpoint a protocol suite's load generator reaches.
type protoTarget struct {
	name string
	desc string
	host string
	port int
	// user and password are what the load generator logs in with; Airlock
	// takes its token as the password, never printed.
	user, password string
	db             string   // database, connection or path prefix
	svc            *service // the process measured; nil for direct
}

func (t *protoTarget) addr() string { return fmt.Sprintf("%s:%d", t.host, t.port) }

func (t *protoTarget) pid() int {
	if t.svc == nil {
		return 0
	}
	return t.svc.pid()
}

// protoRun is what one load-generator run measured.
type protoRun struct {
	Ops     int64   // operations completed
	PerSec  float64 // operations per second, as the generator reports it
	P50us   float64
	P99us   float64
	Elapsed time.Duration
}

// protoWorkload is one load of a suite.
type protoWorkload struct {
	Key  string
	Desc string // what runs, with the generator's options
	run  func(ctx context.Context, t *protoTarget, dur time.Duration) (protoRun, error)
}

// ProtoSample is one run of one workload against one target.
type ProtoSample struct {
	Workload, Target string
	Round            int
	Ops              int64 // operations measured
	PerSec           float64
	P50us, P99us     float64
	CPUus            float64 // the target process's CPU per operation; NaN for direct
	Err              string
}

// ProtoCell is one target's medians on one workload across rounds; the
// ratios are the medians of each round's ratio to direct in that round.
type ProtoCell struct {
	Target                     string
	PerSec, P50us, P99us       float64
	VsDirect, P50Ratio, P99Rat float64
	CPUus                      float64
	Runs, Failed               int
	Err                        string // the last failure, when any
}

// ProtoWorkloadResult is one workload's row set.
type ProtoWorkloadResult struct {
	Key, Desc string
	Cells     []ProtoCell
}

// ProtoSuite is one protocol suite's part of the report.
type ProtoSuite struct {
	Name, Title string
	Tool        string // the load generator and how it logs in
	Targets     []ModeInfo
	Notes       []string // setup facts and skipped targets, one sentence each
	Results     []ProtoWorkloadResult
	Samples     []ProtoSample
	Err         string // set when the suite could not run at all
}

// runProto runs every workload against every target, round after round,
// the targets rotated per round as roundOrder does for pgbench.
func (b *bench) runProto(ctx context.Context, suite *ProtoSuite, targets []*protoTarget, ws []protoWorkload) error {
	for round := 1; round <= b.opt.rounds; round++ {
		for _, w := range ws {
			for _, t := range roundOrder(targets, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s := b.measure(ctx, w, t, round)
				attrs := []any{"suite", suite.Name, "round", round, "workload", w.Key, "target", t.name,
					"ops_per_s", dash(s.PerSec, "%.0f"), "p50_us", dash(s.P50us, "%.0f"), "p99_us", dash(s.P99us, "%.0f")}
				if !math.IsNaN(s.CPUus) {
					attrs = append(attrs, "cpu_us_per_op", fmt.Sprintf("%.1f", s.CPUus))
				}
				if s.Err == "" {
					b.log.Info("run", attrs...)
				} else {
					b.log.Warn("run failed", append(attrs, "err", s.Err)...)
				}
				suite.Samples = append(suite.Samples, s)
			}
		}
	}
	suite.Results = aggregateProto(suite.Samples, ws, targets)
	return nil
}

// measure runs w against t once, charging t's process the CPU it used.
func (b *bench) measure(ctx context.Context, w protoWorkload, t *protoTarget, round int) ProtoSample {
	s := ProtoSample{Workload: w.Key, Target: t.name, Round: round, CPUus: math.NaN(), PerSec: math.NaN(), P50us: math.NaN(), P99us: math.NaN()}
	var before uint64
	pid := t.pid()
	if pid != 0 {
		before, _ = cpuTicks(pid)
	}
	r, err := w.run(ctx, t, b.opt.duration)
	if err != nil {
		s.Err = oneLineErr(err)
		return s
	}
	if pid != 0 {
		if after, err := cpuTicks(pid); err == nil && r.Ops > 0 && b.clkTck > 0 {
			s.CPUus = float64(after-before) / float64(b.clkTck) * 1e6 / float64(r.Ops)
		}
	}
	s.Ops, s.PerSec, s.P50us, s.P99us = r.Ops, r.PerSec, r.P50us, r.P99us
	return s
}

func oneLineErr(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// aggregateProto computes each cell's medians and same-round ratios.
func aggregateProto(samples []ProtoSample, ws []protoWorkload, targets []*protoTarget) []ProtoWorkloadResult {
	var out []ProtoWorkloadResult
	for _, w := range ws {
		wr := ProtoWorkloadResult{Key: w.Key, Desc: w.Desc}
		direct := map[int]ProtoSample{}
		for _, s := range samples {
			if s.Workload == w.Key && s.Target == targetDirect && s.Err == "" {
				direct[s.Round] = s
			}
		}
		for _, t := range targets {
			c := ProtoCell{Target: t.name}
			var per, p50, p99, vs, r50, r99, cpu []float64
			for _, s := range samples {
				if s.Workload != w.Key || s.Target != t.name {
					continue
				}
				c.Runs++
				if s.Err != "" {
					c.Failed++
					c.Err = s.Err
					continue
				}
				per, p50, p99, cpu = append(per, s.PerSec), append(p50, s.P50us), append(p99, s.P99us), append(cpu, s.CPUus)
				if d, ok := direct[s.Round]; ok {
					vs = append(vs, s.PerSec/d.PerSec)
					r50 = append(r50, s.P50us/d.P50us)
					r99 = append(r99, s.P99us/d.P99us)
				}
			}
			c.PerSec, c.P50us, c.P99us, c.CPUus = median(per), median(p50), median(p99), median(cpu)
			c.VsDirect, c.P50Ratio, c.P99Rat = median(vs), median(r50), median(r99)
			wr.Cells = append(wr.Cells, c)
		}
		out = append(out, wr)
	}
	return out
}

//go:embed protocols.md.tmpl
var protoTemplate string

// renderProto renders the protocol suites' section of the report, which
// starts with protoHeading and carries its own date and command.
func renderProto(suites []*ProtoSuite, r *Report) ([]byte, error) {
	t, err := template.New("protocols").Funcs(reportFuncs).Parse(protoTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse protocol report template: %w", err)
	}
	var b bytes.Buffer
	data := struct {
		Report *Report
		Suites []*ProtoSuite
	}{r, suites}
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render protocol report: %w", err)
	}
	return b.Bytes(), nil
}

// benchmarkSuites runs the selected suites: PostgreSQL's (the report's main
// part, unchanged) when selected, then the protocol suites.
func (b *bench) benchmarkSuites(ctx context.Context, ws []Workload, targets []string, args []string) (*Report, []*ProtoSuite, error) {
	var rep *Report
	if contains(b.opt.suites, suitePostgres) {
		var err error
		if rep, err = b.benchmark(ctx, ws, targets, args); err != nil {
			return nil, nil, err
		}
	} else {
		rep = &Report{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"),
			Command: strings.TrimSpace("go run ./cmd/airlock-bench " + strings.Join(args, " ")),
			Quick:   b.opt.quick, Rounds: b.opt.rounds, Duration: b.opt.duration.String(), Warmup: b.opt.warmup.String(),
			ClockTicks: b.clkTck, runDuration: b.opt.duration}
		rep.Facts = b.gatherFacts(ctx)
	}
	runs := map[string]func(context.Context) *ProtoSuite{
		suiteMySQL: b.runMySQLSuite, suiteRedis: b.runRedisSuite, suiteHTTP: b.runHTTPSuite,
	}
	var out []*ProtoSuite
	for _, name := range b.opt.suites {
		run, ok := runs[name]
		if !ok {
			continue
		}
		if err := b.ensureAirlock(ctx); err != nil {
			return nil, nil, err
		}
		b.log.Info("suite", "name", name)
		s := run(ctx)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if s.Err != "" {
			b.log.Warn("suite not run", "suite", name, "err", s.Err)
		}
		out = append(out, s)
	}
	rep.Facts.LoadAfter = loadAvg()
	return rep, out, nil
}

// renderAll renders the report's two parts: PostgreSQL's, when it ran
// (nil otherwise), and the protocol suites' section, when any ran (nil
// otherwise; a suite that could not run does not count). assembleReport
// puts them together.
func renderAll(rep *Report, protos []*ProtoSuite, postgres bool) (pg, proto []byte, err error) {
	if postgres {
		if pg, err = rep.render(); err != nil {
			return nil, nil, err
		}
	}
	// A run in which no protocol suite ran leaves their section as it is
	// in the file.
	if slices.ContainsFunc(protos, func(s *ProtoSuite) bool { return s.Err == "" }) {
		if proto, err = renderProto(protos, rep); err != nil {
			return nil, nil, err
		}
	}
	return pg, proto, nil
}

// printProtoSummary prints each protocol suite's throughput ratios to the
// terminal and returns how many runs failed (a suite that could not run
// counts as one).
func printProtoSummary(w io.Writer, protos []*ProtoSuite) int {
	failed := 0
	for _, s := range protos {
		fmt.Fprintf(w, "\n%s:\n", s.Title)
		if s.Err != "" {
			fmt.Fprintf(w, "  not run: %s\n", s.Err)
			failed++
			continue
		}
		for _, r := range s.Results {
			for _, c := range r.Cells {
				failed += c.Failed
				fmt.Fprintf(w, "  %-26s %-16s %9s ops/s  %5s of direct  p50 %6s µs  p99 %7s µs  CPU %6s µs/op\n", r.Key, c.Target,
					dash(c.PerSec, "%.0f"), dash(c.VsDirect*100, "%.0f%%"), dash(c.P50us, "%.0f"), dash(c.P99us, "%.0f"), dash(c.CPUus, "%.1f"))
			}
		}
	}
	return failed
}
