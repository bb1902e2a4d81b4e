package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	quick     bool
	out       string
	idle      int
	pgMargin  int
	pgAddr    string
	socketDir string
	db        string
	scale     int
	workloads string
	targets   string
	keepTmp   bool
	// recordings, when set, is where each run keeps its targets'
	// recordings instead of its temporary directory.
	recordings string
	// The protocol suites: which run, and what they reach.
	suites        []string
	mysqlAddr     string
	redisAddr     string
	redisRequests int
}

// bench is the state of one harness run.
type bench struct {
	opt          options
	log          *slog.Logger
	repo         string
	tmp          string
	sv           *supervisor
	clkTck       uint64
	pgbenchBin   string
	pgbouncerBin string
	airlockBin   string
	floorBin     string // relay-floor, built when a floor target runs
	token        string // the bench identity's token; never printed
	tokenHash    string
	recordingKey string // never printed
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("airlock-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rounds, "rounds", 3, "rounds: each runs every workload against every target once")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "pgbench duration per run (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "warm-up run per target before the first round (0 to skip)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 1 round of 2s runs, 1s warm-up, 200 idle clients; prints the report instead of writing BENCHMARKS.md unless -out is given")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", "report file, relative to the repository root ('-' for stdout only)")
	fs.IntVar(&o.idle, "idle", 1000, "idle client connections for the memory measurement (0 to skip)")
	fs.IntVar(&o.pgMargin, "pg-margin", 15, "PostgreSQL connection slots left free for other users during the memory measurement")
	fs.StringVar(&o.pgAddr, "pg", "127.0.0.1:5432", "PostgreSQL address (trust auth for user postgres)")
	fs.StringVar(&o.socketDir, "upstream-socket", "", "reach PostgreSQL from Airlock and pgbouncer through its Unix-domain socket in this directory (as a gateway on the database host would) instead of TCP; pgbench reaches every target, and PostgreSQL directly, over TCP either way")
	fs.StringVar(&o.db, "db", "airlock_bench", "pgbench database, created if absent")
	fs.IntVar(&o.scale, "scale", 10, "pgbench scale factor")
	fs.StringVar(&o.workloads, "workloads", "", "comma-separated workloads to run, of every suite's (e.g. connect-c4: pgbench -C, and the mysql suite's connect workload); default all")
	fs.StringVar(&o.targets, "targets", "", "comma-separated targets besides direct (default all)")
	fs.BoolVar(&o.keepTmp, "keep-tmp", false, "keep the temporary directory (configs, logs) for inspection")
	fs.StringVar(&o.recordings, "recordings", "", "directory in which the run keeps its Airlock targets' recordings, in a subdirectory of its own removed with the temporary directory (default: the temporary directory). On ext4 without a journal, creating a file after many files nearby were deleted costs up to a millisecond of kernel CPU for minutes, which connect-c4's airlock-full then measures: a tmpfs or a journalled volume here keeps that out")
	suites := fs.String("suites", "", "comma-separated suites to run, of postgres (pgbench), mysql (sysbench), redis (redis-benchmark), http (Go load generator); default all")
	fs.StringVar(&o.mysqlAddr, "mysql", "127.0.0.1:3306", "MariaDB/MySQL address (user root, empty password) for the mysql suite")
	fs.StringVar(&o.redisAddr, "redis", "127.0.0.1:6379", "Redis address (no AUTH) for the redis suite")
	fs.IntVar(&o.redisRequests, "redis-requests", 100000, "requests per unpipelined redis-benchmark run (pipelined runs make 16 times as many)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("rounds", func() { o.rounds = 1 })
		def("duration", func() { o.duration = 2 * time.Second })
		def("warmup", func() { o.warmup = time.Second })
		def("idle", func() { o.idle = 200 })
		def("out", func() { o.out = "-" })
		def("redis-requests", func() { o.redisRequests = 20000 })
	}
	var errs []error
	var err error
	if o.suites, err = parseSuites(*suites); err != nil {
		errs = append(errs, err)
	}
	if o.redisRequests < 1000 {
		errs = append(errs, errors.New("-redis-requests: at least 1000"))
	}
	for flag, addr := range map[string]string{"-mysql": o.mysqlAddr, "-redis": o.redisAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: host:port, such as 127.0.0.1:3306: %w", flag, err))
		}
	}
	if o.rounds < 1 {
		errs = append(errs, errors.New("-rounds: at least 1"))
	}
	if o.duration < time.Second {
		errs = append(errs, errors.New("-duration: at least 1s (pgbench counts whole seconds)"))
	}
	if o.warmup != 0 && o.warmup < time.Second {
		errs = append(errs, errors.New("-warmup: 0 or at least 1s"))
	}
	if o.socketDir != "" && !strings.HasPrefix(o.socketDir, "/") {
		errs = append(errs, errors.New("-upstream-socket: an absolute directory, such as /var/run/postgresql"))
	}
	if o.idle < 0 || o.pgMargin < 0 || o.scale < 1 {
		errs = append(errs, errors.New("-idle, -pg-margin and -scale must not be negative (scale at least 1)"))
	}
	return o, errors.Join(errs...)
}

// selectRun returns the workloads and targets the flags select.
func selectRun(opt options) ([]Workload, []string, error) {
	ws, err := selectWorkloads(opt.workloads, protoWorkloadKeys(opt)...)
	if err != nil {
		return nil, nil, err
	}
	targets, err := selectTargets(opt.targets)
	return ws, targets, err
}

func run(args []string, stdout, stderr io.Writer) int {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "airlock-bench:", err)
		}
		return 2
	}
	ws, targets, err := selectRun(opt)
	if err != nil {
		fmt.Fprintln(stderr, "airlock-bench:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second Ctrl-C ends the harness at once; children still die
		// with it (parent-death signal).
		stop()
	}()

	b := &bench{opt: opt, log: log, sv: &supervisor{}, clkTck: clockTicks()}
	if b.repo, err = repoRoot(); err != nil {
		fmt.Fprintln(stderr, "airlock-bench:", err)
		return 1
	}
	for _, d := range sweepAbandoned(os.TempDir()) {
		log.Info("removed the temporary directory of an earlier, killed run", "dir", d)
	}
	if b.tmp, err = makeTempDir(); err != nil {
		fmt.Fprintln(stderr, "airlock-bench:", err)
		return 1
	}
	defer func() {
		b.sv.stopAll()
		if opt.keepTmp {
			log.Info("kept the temporary directory", "dir", b.tmp)
			return
		}
		_ = os.RemoveAll(b.tmp)
		if opt.recordings != "" {
			_ = os.RemoveAll(b.recordingRoot())
		}
	}()

	rep, protos, err := b.benchmarkSuites(ctx, ws, targets, args)
	if err != nil {
		if ctx.Err() != nil {
			log.Error("interrupted; everything started was stopped")
			return 130
		}
		log.Error("benchmark failed", "err", err)
		return 1
	}
	pg, proto, err := renderAll(rep, protos, contains(opt.suites, suitePostgres))
	if err != nil {
		log.Error("render report", "err", err)
		return 1
	}
	if err := b.writeReport(stdout, pg, proto); err != nil {
		log.Error("write report", "err", err)
		return 1
	}
	printSummary(stdout, rep)
	failed := printProtoSummary(stdout, protos)
	for _, s := range rep.Samples {
		if !s.ok() {
			failed++
		}
	}
	if failed > 0 {
		log.Warn("some runs failed; see the report", "failed", failed)
		return 1
	}
	return 0
}

// writeReport writes the report's parts to -out, keeping the parts of the
// file there that this run did not measure (assembleReport), or to stdout.
func (b *bench) writeReport(stdout io.Writer, pg, proto []byte) error {
	if b.opt.out == "-" {
		_, err := stdout.Write(joinParts(reportParts{postgres: pg, proto: proto}))
		return err
	}
	path := b.opt.out
	if !filepath.IsAbs(path) {
		path = filepath.Join(b.repo, path)
	}
	if err := os.WriteFile(path, assembleReport(path, pg, proto), 0o644); err != nil {
		return err
	}
	b.log.Info("report written", "path", path)
	return nil
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "cmd", "airlock")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run from the Airlock checkout: no go.mod with cmd/airlock above %s", dir)
		}
	}
}

// benchmark prepares everything, runs the rounds and the memory
// measurement, and returns the report.
func (b *bench) benchmark(ctx context.Context, ws []Workload, targetNames []string, args []string) (*Report, error) {
	if lim, err := raiseNoFile(); err != nil {
		b.log.Warn("could not raise the open-file limit", "err", err)
	} else if lim < uint64(2*b.opt.idle+200) {
		b.log.Warn("open-file limit may be too low for the idle-client measurement", "limit", lim)
	}
	if err := b.findTools(ctx); err != nil {
		return nil, err
	}
	if err := b.prepareDB(ctx); err != nil {
		return nil, err
	}
	rep := &Report{
		Date:        time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Command:     strings.TrimSpace("go run ./cmd/airlock-bench " + strings.Join(args, " ")),
		Quick:       b.opt.quick,
		Rounds:      b.opt.rounds,
		Duration:    b.opt.duration.String(),
		Warmup:      b.opt.warmup.String(),
		Upstream:    b.upstreamDesc(),
		Targets:     targetNames,
		ClockTicks:  b.clkTck,
		runDuration: b.opt.duration,
	}
	rep.Facts = b.gatherFacts(ctx)

	b.log.Info("building airlock")
	if err := b.buildAirlock(ctx); err != nil {
		return nil, err
	}
	if err := b.newToken(ctx); err != nil {
		return nil, err
	}
	base := airlockConfig{Identity: benchIdentity, TokenHash: b.tokenHash, Connection: benchConnection,
		Upstream: b.upstreamAddr(), Database: b.opt.db}
	full, active, err := b.fullConfig(ctx, base, rep)
	if err != nil {
		return nil, err
	}
	cfgs := targetConfigs{base: base, full: full}
	if contains(targetNames, targetQuickstart) || contains(targetNames, targetQuickstartNoMask) {
		if cfgs.quick, cfgs.quickWhy, err = b.quickstartConfig(ctx, base, rep); err != nil {
			return nil, err
		}
	}
	if anyFloor(targetNames) {
		if err := b.buildFloor(ctx); err != nil {
			return nil, err
		}
	}
	targets, skipped, err := b.startTargets(ctx, targetNames, ws, cfgs)
	if err != nil {
		return nil, err
	}
	noteTargets(rep, ws, targetNames, targets, skipped)
	if err := b.verifyTargets(ctx, targets, rep); err != nil {
		return nil, err
	}

	if err := b.runRounds(ctx, ws, targets, rep); err != nil {
		return nil, err
	}
	b.summarizeTargets(targets, active, rep)
	if b.opt.idle > 0 && contains(targetNames, targetFull) {
		rep.Memory = b.measureMemory(ctx, full)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rep.Results = aggregate(rep.Samples, ws, rep.Targets)
	rep.Goals = evaluateGoals(rep.Results, rep.Memory, active, rep.Skipped)
	rep.EarlierGoals = evaluateEarlierGoals(rep.Results, active)
	rep.Runtime = runtimeRows(rep.Results, rep.Skipped)
	rep.Experiments = evaluateExperiments(rep.Results, rep.Skipped)
	rep.Facts.LoadAfter = loadAvg()
	return rep, nil
}

// noteTargets notes in rep which targets run, on which workloads, and why
// the others do not.
func noteTargets(rep *Report, ws []Workload, targetNames []string, targets []*target, skipped map[string]string) {
	rep.Skipped = skipped
	rep.Targets = nil
	for _, t := range targets {
		rep.Targets = append(rep.Targets, t.name)
	}
	for _, name := range targetNames {
		if d, ok := describeTarget(name); ok {
			if only, ok := targetWorkloads[name]; ok {
				d += " (runs on " + strings.Join(only, ", ") + ")"
			}
			if why, ok := skipped[name]; ok {
				d = "not run: " + why
			}
			rep.Modes = append(rep.Modes, ModeInfo{Target: name, Description: d})
		}
	}
	for _, w := range ws {
		if w.Ablations {
			rep.AblationWorkloads = append(rep.AblationWorkloads, w.Key)
		}
	}
}

// fullConfig probes which full-inspection sections this build accepts and
// returns the full target's configuration and the sections active in it,
// noting the probes in rep.
func (b *bench) fullConfig(ctx context.Context, base airlockConfig, rep *Report) (airlockConfig, []string, error) {
	probe := withMode(base, modeInspect)
	probe.Data = probeData{RecordingDir: b.recordingDir("probe"), KeyEnv: recordingKeyEnv}
	if err := os.MkdirAll(probe.Data.RecordingDir, 0o700); err != nil {
		return airlockConfig{}, nil, fmt.Errorf("recordings dir: %w", err)
	}
	show := probeData{RecordingDir: "<tmp>/recordings/<target>", KeyEnv: recordingKeyEnv}
	full, probes, err := b.probeFull(ctx, probe, show)
	if err != nil {
		return airlockConfig{}, nil, err
	}
	full.Mode = modeFull
	full.PGMode = "" // full inspection: the default inspect mode plus the sections
	rep.Probes = probes
	var active []string
	for _, p := range probes {
		if p.Accepted {
			rep.FullActive = append(rep.FullActive, p.Section+" ("+p.Level+")")
			active = append(active, p.Section)
		}
	}
	b.log.Info("full inspection sections", "active", rep.FullActive)
	return full, active, nil
}

// runRounds warms each target up, then runs every workload against every
// target once per round, in each round's order, appending rep.Samples.
func (b *bench) runRounds(ctx context.Context, ws []Workload, targets []*target, rep *Report) error {
	runs, est := estimateRounds(ws, targets, b.opt)
	b.log.Info("measuring", "runs", runs, "estimated_duration", est.Round(time.Minute).String())
	if b.opt.warmup > 0 {
		warm, _ := workloadByKey("select-prepared-c16")
		for _, t := range targets {
			b.log.Info("warm-up", "target", t.name)
			if s := b.runPgbench(ctx, warm, t, 0, b.opt.warmup, false); !s.ok() {
				b.log.Warn("warm-up failed", "target", t.name, "err", s.Err)
			}
		}
	}
	for round := 1; round <= b.opt.rounds; round++ {
		for _, w := range ws {
			for _, t := range roundOrder(targets, round) {
				if !w.runs(t.name) {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if w.ReadWrite {
					if err := b.vacuumForRW(ctx); err != nil {
						return err
					}
				}
				s := b.runPgbench(ctx, w, t, round, b.opt.duration, true)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				attrs := []any{"round", round, "workload", w.Key, "target", t.name, "tps", int(s.TPS), "p50_us", s.P50us, "p99_us", s.P99us}
				if !isNaN(s.CPUus) {
					attrs = append(attrs, "cpu_us_per_tx", fmt.Sprintf("%.1f", s.CPUus))
				}
				if s.ok() {
					b.log.Info("run", attrs...)
				} else {
					b.log.Warn("run failed", append(attrs, "err", s.Err)...)
				}
				rep.Samples = append(rep.Samples, s)
			}
		}
	}
	return nil
}

// runOverhead is what a measured run costs besides its duration: pgbench's
// start and connections, reading its logs, the vacuum of read-write runs.
const runOverhead = 2 * time.Second

// estimateRounds counts the measured runs of the rounds and estimates how
// long they and the warm-ups take.
func estimateRounds(ws []Workload, targets []*target, opt options) (int, time.Duration) {
	runs := 0
	for _, w := range ws {
		for _, t := range targets {
			if w.runs(t.name) {
				runs++
			}
		}
	}
	runs *= opt.rounds
	warm := time.Duration(len(targets)) * (opt.warmup + runOverhead)
	if opt.warmup == 0 {
		warm = 0
	}
	return runs, time.Duration(runs)*(opt.duration+runOverhead) + warm
}

// summarizeTargets notes what each target did besides its figures (its
// sessions, its recordings) and stops its process.
func (b *bench) summarizeTargets(targets []*target, active []string, rep *Report) {
	for _, t := range targets {
		if t.admin != 0 {
			rep.Activity = append(rep.Activity, activity(t))
		}
		switch t.name {
		case targetFull:
			n, size := countRecordings(b.recordingDirs(t)...)
			rep.RecordingSeen = recordingSummary(n, size)
			if n == 0 && contains(active, "recording") {
				rep.RecordingSeen = "configured, but no recording file was written"
			}
		case targetQuickstart:
			n, size := countRecordings(b.recordingDirs(t)...)
			rep.Checks = append(rep.Checks, t.name+" recorded: "+recordingSummary(n, size)+".")
		case targetNoRec:
			if n, size := countRecordings(b.recordingDirs(t)...); n > 0 {
				rep.Checks = append(rep.Checks, fmt.Sprintf("**%s wrote %d recording files (%.1f MiB) during the run although recording was disabled: its figures do not measure recording's cost.**", t.name, n, float64(size)/(1<<20)))
			} else {
				rep.Checks = append(rep.Checks, t.name+" wrote no recording file during the whole run.")
			}
		}
		if t.svc != nil {
			b.sv.remove(t.svc)
		}
	}
}

// roundOrder is the order in which round runs the targets: each round
// starts one target further along, so that no target always runs right
// after the same other one (whose ending sessions, recordings and
// PostgreSQL backends may still be settling) or always first or last in a
// round while the machine's load drifts.
func roundOrder[T any](targets []T, round int) []T {
	if len(targets) == 0 {
		return nil
	}
	k := (round - 1) % len(targets)
	return append(append(make([]T, 0, len(targets)), targets[k:]...), targets[:k]...)
}

func withMode(c airlockConfig, mode string) airlockConfig {
	c.Mode = mode
	switch mode {
	case modeRelay:
		c.PGMode = "relay"
	case modeInspect:
		c.PGMode = "decode"
	default:
		c.PGMode = ""
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// startTargets starts the services behind the named targets. A target
// that cannot be run here (an ablation whose section airlock-full lacks, a
// configuration this build rejects, a floor mode this machine or
// relay-floor does not support, no selected workload to run on) is
// skipped: skipped maps its name to the reason.
func (b *bench) startTargets(ctx context.Context, names []string, ws []Workload, cfgs targetConfigs) (out []*target, skipped map[string]string, err error) {
	skipped = map[string]string{}
	for _, name := range names {
		if !runsOnAny(name, ws) {
			skipped[name] = "none of its workloads (" + strings.Join(targetWorkloads[name], ", ") + ") was selected"
			continue
		}
		t, why, err := b.startTarget(ctx, name, cfgs)
		if err != nil {
			return nil, nil, fmt.Errorf("start %s: %w", name, err)
		}
		if why != "" {
			skipped[name] = why
			b.log.Warn("target skipped", "target", name, "reason", why)
			continue
		}
		b.log.Info("target ready", "target", name, "port", t.port, "pid", t.pid())
		out = append(out, t)
	}
	return out, skipped, nil
}

// runsOnAny reports whether target runs on any of ws.
func runsOnAny(target string, ws []Workload) bool {
	for _, w := range ws {
		if w.runs(target) {
			return true
		}
	}
	return false
}

// startTarget starts one target, or returns why it is skipped.
func (b *bench) startTarget(ctx context.Context, name string, cfgs targetConfigs) (*target, string, error) {
	switch name {
	case targetDirect:
		return b.directTarget(b.opt.db), "", nil
	case targetPgbouncer:
		t, err := b.startPgbouncer(ctx, targetPgbouncer, 200)
		return t, "", err
	}
	if f, ok := floorTargets[name]; ok {
		return b.startFloor(ctx, name, f)
	}
	cfg, why := cfgs.of(name)
	if why != "" {
		return nil, why, nil
	}
	t, err := b.startAirlock(ctx, name, cfg)
	if errors.Is(err, errInvalidConfig) {
		return nil, "this build rejects its configuration: " + rejectionReason(errors.Unwrap(err)), nil
	}
	return t, "", err
}

func isNaN(f float64) bool { return f != f }

// printSummary prints the goals and headline ratios to the terminal.
func printSummary(w io.Writer, r *Report) {
	if len(r.Goals) == 0 {
		return
	}
	fmt.Fprintln(w, "\nGoals:")
	for _, g := range r.Goals {
		fmt.Fprintf(w, "  [%s] %s: %s\n", g.Outcome, g.Goal, g.Measured)
	}
	if len(r.Experiments) > 0 {
		fmt.Fprintln(w, "\nRuntime experiments (CPU/tx change at 1 and 16 clients):")
	}
	for _, e := range r.Experiments {
		fmt.Fprintf(w, "  [%s] %s: %s, %s\n", e.Verdict, e.Name, dash(e.C1*100, "%+.1f%%"), dash(e.C16*100, "%+.1f%%"))
	}
}
