package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sample is one pgbench run of one workload against one target.
type Sample struct {
	Workload string
	Target   string
	Round    int
	// TPS is pgbench's own figure: without the initial connection time,
	// or, with -C, including every reconnection.
	TPS       float64
	Txns      int64 // transactions processed (summary)
	Failed    int64 // failed transactions (summary)
	Logged    int64 // transactions with a latency in the logs
	P50us     float64
	P99us     float64
	ConnectMs float64 // average connection time with -C; NaN otherwise
	// CPUus is the target process's user+system CPU per transaction, in
	// microseconds; NaN for direct.
	CPUus float64
	// VolCS and InvolCS are the target process's voluntary and involuntary
	// context switches per transaction, summed over its threads; NaN for
	// direct.
	VolCS, InvolCS float64
	Err            string
}

// ok reports whether the run produced numbers.
func (s Sample) ok() bool { return s.Err == "" }

// summary is what pgbench prints at the end of a run.
type summary struct {
	Txns      int64
	Failed    int64
	TPS       float64
	ConnectMs float64 // NaN when absent
}

var (
	reTxns    = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	reFailed  = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	reTPS     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(([^)]*)\)`)
	reConnAvg = regexp.MustCompile(`(?m)^average connection time = ([0-9.]+) ms`)
)

// errNoSummary marks pgbench output without the closing summary.
var errNoSummary = errors.New("pgbench printed no summary")

// parseSummary reads pgbench's closing summary. With several tps lines
// (pgbench before 14 printed "including" and "excluding connections
// establishing") it prefers the one matching the run: including connection
// time for -C, excluding it otherwise.
func parseSummary(out []byte, connect bool) (summary, error) {
	s := summary{ConnectMs: math.NaN()}
	m := reTxns.FindSubmatch(out)
	if m == nil {
		return s, errNoSummary
	}
	var err error
	if s.Txns, err = strconv.ParseInt(string(m[1]), 10, 64); err != nil {
		return s, fmt.Errorf("parse transactions: %w", err)
	}
	if m := reFailed.FindSubmatch(out); m != nil {
		if s.Failed, err = strconv.ParseInt(string(m[1]), 10, 64); err != nil {
			return s, fmt.Errorf("parse failed transactions: %w", err)
		}
	}
	tps := reTPS.FindAllSubmatch(out, -1)
	if len(tps) == 0 {
		return s, fmt.Errorf("%w: no tps line", errNoSummary)
	}
	pick := tps[0]
	for _, t := range tps {
		label := string(t[2])
		including := strings.HasPrefix(label, "including")
		if including == connect {
			pick = t
			break
		}
	}
	if s.TPS, err = strconv.ParseFloat(string(pick[1]), 64); err != nil {
		return s, fmt.Errorf("parse tps: %w", err)
	}
	if m := reConnAvg.FindSubmatch(out); m != nil {
		if s.ConnectMs, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
			return s, fmt.Errorf("parse connection time: %w", err)
		}
	}
	return s, nil
}

// logStats counts the outcomes in a per-transaction log.
type logStats struct {
	OK      int64
	Failed  int64 // "failed", "serialization" or "deadlock"
	Skipped int64 // "skipped" (only with --rate and --latency-limit)
}

// parseLog reads a pgbench per-transaction log
//
//	client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
//
// and appends the latency (time, in microseconds) of every completed
// transaction to lat. It is written by hand because the format is a fixed
// whitespace-separated line that a scanner reads at disk speed, and there
// is no library for it.
func parseLog(r io.Reader, lat *[]int64) (logStats, error) {
	var st logStats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		f := bytes.Fields(b)
		if len(f) < 6 {
			return st, fmt.Errorf("log line %d: %d fields, want at least 6", line, len(f))
		}
		switch string(f[2]) {
		case "failed", "serialization", "deadlock":
			st.Failed++
			continue
		case "skipped":
			st.Skipped++
			continue
		}
		v, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil || v < 0 {
			return st, fmt.Errorf("log line %d: latency %q is not a count of microseconds", line, f[2])
		}
		*lat = append(*lat, v)
		st.OK++
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read log: %w", err)
	}
	return st, nil
}

// readLogs parses every log file pgbench wrote under prefix (one per
// thread: prefix.PID, prefix.PID.1, ...) and returns the latencies sorted.
func readLogs(prefix string) ([]int64, logStats, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil {
		return nil, logStats{}, err
	}
	if len(files) == 0 {
		return nil, logStats{}, errors.New("pgbench wrote no transaction log")
	}
	var lat []int64
	var total logStats
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, total, err
		}
		st, err := parseLog(f, &lat)
		f.Close()
		if err != nil {
			return nil, total, fmt.Errorf("%s: %w", filepath.Base(name), err)
		}
		total.OK += st.OK
		total.Failed += st.Failed
		total.Skipped += st.Skipped
	}
	slices.Sort(lat)
	return lat, total, nil
}

// usage is a process's CPU time (clock ticks) and its threads' context
// switches at one moment.
type usage struct{ ticks, voluntary, involuntary uint64 }

func readUsage(pid int) (usage, error) {
	var u usage
	var err error
	if u.ticks, err = cpuTicks(pid); err != nil {
		return u, err
	}
	u.voluntary, u.involuntary, err = ctxSwitches(pid)
	return u, err
}

// perTx returns the CPU microseconds and the context switches from before
// to u, per transaction of n.
func (u usage) perTx(before usage, clkTck uint64, n float64) (cpuUs, voluntary, involuntary float64) {
	diff := func(a, b uint64) float64 {
		if a < b { // threads that ended in between took their counts along
			return 0
		}
		return float64(a-b) / n
	}
	return diff(u.ticks, before.ticks) / float64(clkTck) * 1e6, diff(u.voluntary, before.voluntary), diff(u.involuntary, before.involuntary)
}

// runPgbench runs w against t once and measures it.
// The CPU figure is set by a deferred function, so s is a named result.
func (b *bench) runPgbench(ctx context.Context, w Workload, t *target, round int, dur time.Duration, keepLog bool) (s Sample) {
	s = Sample{Workload: w.Key, Target: t.name, Round: round, ConnectMs: math.NaN(), CPUus: math.NaN(), P50us: math.NaN(), P99us: math.NaN(),
		VolCS: math.NaN(), InvolCS: math.NaN()}
	dir, err := os.MkdirTemp(b.tmp, "run-")
	if err != nil {
		s.Err = err.Error()
		return s
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "script.sql")
	if w.Script != "" {
		if err := os.WriteFile(script, []byte(w.Script), 0o644); err != nil {
			s.Err = err.Error()
			return s
		}
	}
	prefix := ""
	if keepLog {
		prefix = filepath.Join(dir, "tx")
	}
	cmd := exec.Command(b.pgbenchBin, w.args(t, dur, script, prefix)...)
	cmd.Env = pgEnv(t.password)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	var before usage
	pid := t.pid()
	if pid != 0 {
		if before, err = readUsage(pid); err != nil {
			s.Err = fmt.Sprintf("read CPU of %s: %v", t.name, err)
			return s
		}
	}
	rctx, cancel := context.WithTimeout(ctx, dur+90*time.Second)
	defer cancel()
	_, runErr := runCmd(rctx, cmd)
	if pid != 0 {
		after, err := readUsage(pid)
		if err != nil {
			s.Err = fmt.Sprintf("read CPU of %s: %v (did it exit?)", t.name, err)
			return s
		}
		defer func() {
			if s.Txns > 0 {
				s.CPUus, s.VolCS, s.InvolCS = after.perTx(before, b.clkTck, float64(s.Txns))
			}
		}()
	}
	sum, perr := parseSummary(stdout.Bytes(), w.Connect)
	if runErr != nil || perr != nil {
		msg := tail(stderr.Bytes(), 600)
		if msg == "" {
			msg = tail(stdout.Bytes(), 600)
		}
		s.Err = fmt.Sprintf("pgbench: %v: %s", errors.Join(runErr, perr), msg)
		return s
	}
	s.TPS, s.Txns, s.Failed, s.ConnectMs = sum.TPS, sum.Txns, sum.Failed, sum.ConnectMs
	if sum.Failed > 0 {
		s.Err = fmt.Sprintf("%d of %d transactions failed: %s", sum.Failed, sum.Txns+sum.Failed, tail(stderr.Bytes(), 400))
	}
	if !keepLog {
		return s
	}
	lat, st, err := readLogs(prefix)
	if err != nil {
		s.Err = fmt.Sprintf("transaction log: %v", err)
		return s
	}
	s.Logged = st.OK
	if len(lat) > 0 {
		s.P50us = percentile(lat, 50)
		s.P99us = percentile(lat, 99)
	}
	return s
}
