package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// mysqlBenchDB is the database sysbench's tables live in, created and
// dropped by the suite.
const mysqlBenchDB = "airlock_bench_mysql"

// mysqlTables and mysqlTableSize size sysbench's table set.
const (
	mysqlTables    = 4
	mysqlTableSize = 10000
)

// mysqlWorkloads are the sysbench runs: each sysbench event is one
// operation (oltp_point_select: one primary-key SELECT; oltp_read_only: a
// transaction of 14 SELECTs and ranges).
func (b *bench) mysqlWorkloads() []protoWorkload {
	mk := func(key, script string, threads int, extra ...string) protoWorkload {
		args := append([]string{script, fmt.Sprintf("--threads=%d", threads)}, extra...)
		return protoWorkload{Key: key,
			Desc: fmt.Sprintf("`sysbench %s --tables=%d --table-size=%d` for the run's duration; one operation is one sysbench event.",
				strings.Join(args, " "), mysqlTables, mysqlTableSize),
			run: func(ctx context.Context, t *protoTarget, dur time.Duration) (protoRun, error) {
				return b.runSysbench(ctx, t, dur, args)
			}}
	}
	return []protoWorkload{
		mk("point-select-c1", "oltp_point_select", 1),
		mk("point-select-c16", "oltp_point_select", 16),
		mk("read-only-c1", "oltp_read_only", 1),
		mk("read-only-c16", "oltp_read_only", 16),
		mk("point-select-c16-noprep", "oltp_point_select", 16, "--db-ps-mode=disable"),
		mysqlConnectWorkload(),
	}
}

// runSysbench runs one sysbench load against t.
func (b *bench) runSysbench(ctx context.Context, t *protoTarget, dur time.Duration, args []string) (protoRun, error) {
	all := append(append([]string(nil), args...), sysbenchConn(t)...)
	all = append(all, fmt.Sprintf("--time=%d", int(dur.Seconds())), "--histogram=on", "--percentile=99", "run")
	cmd := exec.Command("sysbench", all...)
	out, err := runCmd(ctx, cmd)
	if err != nil {
		return protoRun{}, fmt.Errorf("sysbench: %w: %s", err, tail(out, 400))
	}
	return parseSysbench(out)
}

// sysbenchConn are sysbench's options that reach t; the password goes on
// the command line, which only the local user can read in /proc.
func sysbenchConn(t *protoTarget) []string {
	a := []string{"--db-driver=mysql", "--mysql-host=" + t.host, fmt.Sprintf("--mysql-port=%d", t.port),
		"--mysql-user=" + t.user, "--mysql-db=" + t.db, "--mysql-ssl=off",
		fmt.Sprintf("--tables=%d", mysqlTables), fmt.Sprintf("--table-size=%d", mysqlTableSize)}
	if t.password != "" {
		a = append(a, "--mysql-password="+t.password)
	}
	return a
}

var (
	sysbenchEventsRE = regexp.MustCompile(`(?m)^\s*transactions:\s+(\d+)\s+\(([\d.]+) per sec\.\)`)
	sysbenchHistRE   = regexp.MustCompile(`(?m)^\s*([\d.]+) \|\**\s+(\d+)\s*$`)
	sysbenchErrRE    = regexp.MustCompile(`(?m)^\s*ignored errors:\s+(\d+)`)
)

// parseSysbench reads a sysbench run's events and per-second rate, and the
// latency percentiles from its histogram (milliseconds per event).
func parseSysbench(out []byte) (protoRun, error) {
	m := sysbenchEventsRE.FindSubmatch(out)
	if m == nil {
		return protoRun{}, fmt.Errorf("sysbench printed no transaction count: %s", tail(out, 300))
	}
	var r protoRun
	r.Ops, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.PerSec, _ = strconv.ParseFloat(string(m[2]), 64)
	if e := sysbenchErrRE.FindSubmatch(out); e != nil && string(e[1]) != "0" {
		return r, fmt.Errorf("sysbench ignored %s errors", e[1])
	}
	type bucket struct {
		ms    float64
		count int64
	}
	var hist []bucket
	var total int64
	for _, h := range sysbenchHistRE.FindAllSubmatch(out, -1) {
		v, err1 := strconv.ParseFloat(string(h[1]), 64)
		n, err2 := strconv.ParseInt(string(h[2]), 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return r, fmt.Errorf("sysbench histogram: %w", err)
		}
		hist = append(hist, bucket{v, n})
		total += n
	}
	if total == 0 {
		return r, errors.New("sysbench printed no latency histogram")
	}
	pct := func(p float64) float64 {
		rank := int64(p / 100 * float64(total))
		if rank < 1 {
			rank = 1
		}
		var seen int64
		for _, bk := range hist {
			seen += bk.count
			if seen >= rank {
				return bk.ms * 1000
			}
		}
		return hist[len(hist)-1].ms * 1000
	}
	r.P50us, r.P99us = pct(50), pct(99)
	return r, nil
}

// haproxyConfig is HAProxy in TCP mode: a plain relay in front of addr.
func haproxyConfig(port int, addr string, maxconn int) string {
	return fmt.Sprintf(`global
    maxconn %[3]d
defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
frontend bench
    bind 127.0.0.1:%[1]d
    default_backend upstream
backend upstream
    server s1 %[2]s
`, port, addr, maxconn)
}

// startTCPRelay starts a relay peer (HAProxy or nutcracker) from the
// configuration file text conf, and waits until it accepts connections.
func (b *bench) startTCPRelay(ctx context.Context, name string, port int, conf string, argv func(path string) *exec.Cmd) (*service, error) {
	path := filepath.Join(b.tmp, name+".cfg")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write %s config: %w", name, err)
	}
	svc, err := b.sv.start(name, argv(path), filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, svc, 15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}); err != nil {
		b.sv.remove(svc)
		return nil, err
	}
	b.log.Info("target ready", "target", name, "port", port, "pid", svc.pid())
	return svc, nil
}

// mysqlTargets starts the MySQL suite's targets; a target that cannot
// start is left out with a note.
func (b *bench) mysqlTargets(ctx context.Context, suite *ProtoSuite) ([]*protoTarget, error) {
	host, portS, err := net.SplitHostPort(b.opt.mysqlAddr)
	if err != nil {
		return nil, fmt.Errorf("-mysql: %w", err)
	}
	port, _ := strconv.Atoi(portS)
	targets := []*protoTarget{{name: targetDirect, desc: "MariaDB itself", host: host, port: port, user: "root", db: mysqlBenchDB}}
	if hp, err := freePort(); err != nil {
		return nil, err
	} else if svc, err := b.startTCPRelay(ctx, "haproxy", hp, haproxyConfig(hp, b.opt.mysqlAddr, 1000), func(p string) *exec.Cmd {
		return exec.Command("haproxy", "-db", "-f", p)
	}); err != nil {
		suite.Notes = append(suite.Notes, "haproxy not run: "+oneLineErr(err))
	} else {
		targets = append(targets, &protoTarget{name: "haproxy", desc: "HAProxy in TCP mode: a plain relay, the peer of airlock-relay",
			host: "127.0.0.1", port: hp, user: "root", db: mysqlBenchDB, svc: svc})
	}
	conn := fmt.Sprintf(`- name: %s
  protocol: mysql
  upstream: {address: %q, database: %s, user: root, password: "", tls: {mode: disable}}
  allow: [%s]`, mysqlBenchDB, b.opt.mysqlAddr, mysqlBenchDB, benchIdentity)
	return b.airlockTargets(ctx, suite, "mysql", conn, benchIdentity, mysqlBenchDB, targets)
}

// airlockTargets adds Airlock in mode relay, decode and inspect with
// recording and masking (full) to targets.
func (b *bench) airlockTargets(ctx context.Context, suite *ProtoSuite, listener, conn, user, db string, targets []*protoTarget) ([]*protoTarget, error) {
	for _, m := range []struct{ name, mode, desc string }{
		{protoRelay, "relay", fmt.Sprintf("`%s: {mode: relay}`: authenticate, then pass bytes untouched", listener)},
		{protoDecode, "decode", fmt.Sprintf("`%s: {mode: decode}`: protocol-aware without policy: nothing classified, masked or recorded", listener)},
		{protoFull, "", "the default mode, inspect, with the default policy, masking (e-mail addresses) on the connection and every session recorded"},
	} {
		c := protoAirlock{Name: m.name, Listener: listener, Mode: m.mode, Connection: conn}
		if m.mode == "" {
			rec, err := b.recordingSection(listener, m.name)
			if err != nil {
				return nil, err
			}
			c.Top = append(c.Top, rec)
			if listener == "redis" {
				// redis-benchmark asks CONFIG GET at its start, which the
				// default policy holds for review: refused at once instead.
				c.Top = append(c.Top, "policy: {rules: {admin.config: deny}}")
			}
			c.Connection += "\n  masking: {detect: [{entity: email, strategy: redact}]}"
		}
		t, err := b.startProtoAirlock(ctx, c, user, db)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			suite.Notes = append(suite.Notes, m.name+" not run: "+oneLineErr(err))
			b.log.Warn("target not run", "target", m.name, "err", err)
			continue
		}
		t.desc = m.desc
		targets = append(targets, t)
	}
	return targets, nil
}

// mysqlCLI runs the mariadb client as root against the local server.
func (b *bench) mysqlCLI(ctx context.Context, sql string) error {
	host, port, _ := net.SplitHostPort(b.opt.mysqlAddr)
	bin := "mariadb"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "mysql"
	}
	cmd := exec.Command(bin, "--no-defaults", "-h", host, "-P", port, "-u", "root", "-e", sql)
	if out, err := runCmd(ctx, cmd); err != nil {
		return fmt.Errorf("%s -e %q: %w: %s", bin, sql, err, tail(out, 300))
	}
	return nil
}

// runMySQLSuite prepares sysbench's tables, runs the workloads against
// every target and drops the database.
func (b *bench) runMySQLSuite(ctx context.Context) *ProtoSuite {
	suite := &ProtoSuite{Name: suiteMySQL, Title: "MySQL (MariaDB) with sysbench",
		Tool: fmt.Sprintf("%s logs in to Airlock as the bench identity with its token as the password, to MariaDB and HAProxy as root; tables in database `%s`, prepared before and dropped after the suite.", firstLineOf("sysbench", "--version"), mysqlBenchDB)}
	if err := needTools("sysbench", "mariadb|mysql"); err != nil {
		suite.Err = err.Error()
		return suite
	}
	if err := b.mysqlCLI(ctx, "DROP DATABASE IF EXISTS "+mysqlBenchDB+"; CREATE DATABASE "+mysqlBenchDB); err != nil {
		suite.Err = oneLineErr(err)
		return suite
	}
	defer func() {
		if err := b.mysqlCLI(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+mysqlBenchDB); err != nil {
			b.log.Warn("drop the sysbench database", "err", err)
		}
	}()
	direct := &protoTarget{host: strings.Split(b.opt.mysqlAddr, ":")[0], user: "root", db: mysqlBenchDB}
	direct.port, _ = strconv.Atoi(strings.Split(b.opt.mysqlAddr, ":")[1])
	prep := exec.Command("sysbench", append([]string{"oltp_read_only"}, append(sysbenchConn(direct), "prepare")...)...)
	suite.Notes = append(suite.Notes, "sysbench's rows hold no e-mail addresses: airlock-full's masking reads every value and finds nothing to mask.")
	b.log.Info("preparing sysbench tables", "db", mysqlBenchDB)
	if out, err := runCmd(ctx, prep); err != nil {
		suite.Err = oneLineErr(fmt.Errorf("sysbench prepare: %w: %s", err, tail(out, 300)))
		return suite
	}
	return b.runSuite(ctx, suite, func() ([]*protoTarget, error) { return b.mysqlTargets(ctx, suite) }, b.mysqlWorkloads())
}

// runSuite starts the targets, runs the rounds and stops the targets.
func (b *bench) runSuite(ctx context.Context, suite *ProtoSuite, start func() ([]*protoTarget, error), ws []protoWorkload) *ProtoSuite {
	if ws = selectProto(ws, b.opt.workloads); len(ws) == 0 {
		suite.Err = "-workloads names none of this suite's workloads"
		return suite
	}
	targets, err := start()
	defer b.stopTargets(targets)
	if err != nil {
		suite.Err = oneLineErr(err)
		return suite
	}
	for _, t := range targets {
		suite.Targets = append(suite.Targets, ModeInfo{Target: t.name, Description: t.desc})
	}
	if err := b.runProto(ctx, suite, targets, ws); err != nil {
		suite.Err = oneLineErr(err)
		return suite
	}
	for _, t := range targets {
		if t.name != protoFull {
			continue
		}
		suite.Notes = append(suite.Notes, recordingNote(suite, b.recordingDir(suite.Name+"-"+t.name)))
	}
	return suite
}

// firstLineOf is the first line a tool prints, for the report.
func firstLineOf(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "(version unknown)"
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(out)).ReadLine()
	return strings.TrimSpace(string(line))
}

// recordingNote says how many recording files airlock-full wrote for how
// many operations (the warm-up-free total of its runs).
func recordingNote(suite *ProtoSuite, dir string) string {
	n, size := countRecordings(dir)
	if n == 0 {
		return "**airlock-full wrote no recording file: its figures do not include recording.**"
	}
	var ops int64
	for _, s := range suite.Samples {
		if s.Target == protoFull {
			ops += s.Ops
		}
	}
	return fmt.Sprintf("airlock-full: %s, for %d operations.", recordingSummary(n, size), ops)
}

// needTools checks that the tools a suite runs are installed; a|b accepts
// either name.
func needTools(names ...string) error {
	for _, n := range names {
		found := false
		for _, alt := range strings.Split(n, "|") {
			if _, err := exec.LookPath(alt); err == nil {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s is not installed", strings.ReplaceAll(n, "|", " (or ")+strings.Repeat(")", strings.Count(n, "|")))
		}
	}
	return nil
}
