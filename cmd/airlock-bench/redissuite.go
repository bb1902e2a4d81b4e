package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// redisBenchDB is the Redis database the suite's keys live in: every
// target reaches the same one (redis-benchmark SELECTs it directly,
// nutcracker and Airlock are configured with it). redis-benchmark without
// -r writes the single key key:__rand_int__, deleted after the suite.
const (
	redisBenchDB  = 9
	redisBenchKey = "key:__rand_int__"
	redisClients  = 50
)

// redisWorkloads are the redis-benchmark runs; each is a fixed number of
// requests (redis-benchmark has no duration), -redis-requests, sixteen
// times as many when pipelined.
func (b *bench) redisWorkloads() []protoWorkload {
	mk := func(cmd string, pipeline int) protoWorkload {
		n := b.opt.redisRequests
		if pipeline > 1 {
			n *= pipeline
		}
		key := fmt.Sprintf("%s-c%d", cmd, redisClients)
		if pipeline > 1 {
			key += fmt.Sprintf("-P%d", pipeline)
		}
		args := []string{"-t", cmd, "-c", strconv.Itoa(redisClients), "-n", strconv.Itoa(n), "-P", strconv.Itoa(pipeline), "--csv"}
		return protoWorkload{Key: key,
			Desc: fmt.Sprintf("`redis-benchmark %s` (3-byte values); one operation is one request.", strings.Join(args, " ")),
			run: func(ctx context.Context, t *protoTarget, _ time.Duration) (protoRun, error) {
				return runRedisBenchmark(ctx, t, args, n)
			}}
	}
	return []protoWorkload{mk("set", 1), mk("get", 1), mk("set", 16), mk("get", 16)}
}

// runRedisBenchmark runs one redis-benchmark load against t.
func runRedisBenchmark(ctx context.Context, t *protoTarget, args []string, n int) (protoRun, error) {
	all := []string{"-h", t.host, "-p", strconv.Itoa(t.port)}
	if t.db != "" {
		all = append(all, "--dbnum", t.db)
	}
	if t.password != "" {
		all = append(all, "--user", t.user, "-a", t.password)
	}
	start := time.Now()
	out, err := runCmd(ctx, exec.Command("redis-benchmark", append(all, args...)...))
	if err != nil {
		return protoRun{}, fmt.Errorf("redis-benchmark: %w: %s", err, tail(out, 300))
	}
	r, err := parseRedisCSV(out)
	r.Ops, r.Elapsed = int64(n), time.Since(start)
	return r, err
}

// parseRedisCSV reads redis-benchmark's --csv output: a header, then one
// row per test with rps and latencies in milliseconds.
func parseRedisCSV(out []byte) (protoRun, error) {
	// Warnings (such as a refused CONFIG GET) precede the CSV.
	text := string(out)
	if i := strings.Index(text, `"test",`); i >= 0 {
		text = text[i:]
	} else {
		return protoRun{}, fmt.Errorf("redis-benchmark printed no CSV: %s", tail(out, 300))
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil || len(rows) < 2 {
		return protoRun{}, fmt.Errorf("redis-benchmark CSV: %v: %s", err, tail(out, 300))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	get := func(name string) (float64, error) {
		i, ok := col[name]
		if !ok || i >= len(rows[1]) {
			return 0, fmt.Errorf("redis-benchmark CSV has no %s column", name)
		}
		return strconv.ParseFloat(rows[1][i], 64)
	}
	var r protoRun
	var errs [3]error
	r.PerSec, errs[0] = get("rps")
	r.P50us, errs[1] = get("p50_latency_ms")
	r.P99us, errs[2] = get("p99_latency_ms")
	for _, e := range errs {
		if e != nil {
			return r, e
		}
	}
	r.P50us *= 1000
	r.P99us *= 1000
	return r, nil
}

// nutcrackerConfig is twemproxy in front of addr, on database db.
func nutcrackerConfig(port int, addr string, db int) string {
	return fmt.Sprintf(`bench:
  listen: 127.0.0.1:%d
  redis: true
  redis_db: %d
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  timeout: 10000
  servers:
    - %s:1
`, port, db, addr)
}

// redisTargets starts the Redis suite's targets.
func (b *bench) redisTargets(ctx context.Context, suite *ProtoSuite) ([]*protoTarget, error) {
	host, portS, err := net.SplitHostPort(b.opt.redisAddr)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	port, _ := strconv.Atoi(portS)
	targets := []*protoTarget{{name: targetDirect, desc: "Redis itself", host: host, port: port, db: strconv.Itoa(redisBenchDB)}}
	np, err1 := freePort()
	stats, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	svc, err := b.startTCPRelay(ctx, "nutcracker", np, nutcrackerConfig(np, b.opt.redisAddr, redisBenchDB), func(p string) *exec.Cmd {
		return exec.Command("nutcracker", "-c", p, "-a", "127.0.0.1", "-s", strconv.Itoa(stats), "-v", "4")
	})
	if err != nil {
		suite.Notes = append(suite.Notes, "nutcracker not run: "+oneLineErr(err))
	} else {
		targets = append(targets, &protoTarget{name: "nutcracker", desc: "nutcracker (twemproxy): a Redis-aware relay, the peer of airlock-decode",
			host: "127.0.0.1", port: np, svc: svc})
	}
	conn := fmt.Sprintf(`- name: bench
  protocol: redis
  upstream: {address: %q, database: %d}
  allow: [%s]`, b.opt.redisAddr, redisBenchDB, benchIdentity)
	return b.airlockTargets(ctx, suite, "redis", conn, benchIdentity, "", targets)
}

// runRedisSuite runs the Redis workloads and deletes the benchmark's key.
func (b *bench) runRedisSuite(ctx context.Context) *ProtoSuite {
	suite := &ProtoSuite{Name: suiteRedis, Title: "Redis with redis-benchmark",
		Tool: fmt.Sprintf("%s logs in to Airlock with `--user %s -a <token>` (AUTH), to Redis and nutcracker without AUTH; database %d, whose key `%s` is deleted after the suite.",
			firstLineOf("redis-benchmark", "--version"), benchIdentity, redisBenchDB, redisBenchKey)}
	if err := needTools("redis-benchmark", "redis-cli"); err != nil {
		suite.Err = err.Error()
		return suite
	}
	suite.Notes = append(suite.Notes,
		"redis-benchmark's values (`xxx`) hold nothing to mask.",
		"airlock-full's policy denies `admin.config`: the CONFIG GET redis-benchmark sends at its start is refused at once (it warns and carries on) rather than held for review, as the default policy would.")
	defer func() {
		host, port, _ := net.SplitHostPort(b.opt.redisAddr)
		cmd := exec.Command("redis-cli", "-h", host, "-p", port, "-n", strconv.Itoa(redisBenchDB), "DEL", redisBenchKey)
		if out, err := runCmd(context.WithoutCancel(ctx), cmd); err != nil {
			b.log.Warn("delete the benchmark key", "err", err, "out", tail(out, 200))
		}
	}()
	return b.runSuite(ctx, suite, func() ([]*protoTarget, error) { return b.redisTargets(ctx, suite) }, b.redisWorkloads())
}
