// Command airlock-bench measures Airlock side by side with direct access to
// PostgreSQL and with pgbouncer, in one run, and writes BENCHMARKS.md.
//
// It prepares a pgbench database on the local PostgreSQL, builds the airlock
// binary, starts one Airlock process per mode (plain relay, protocol-aware
// inspection without policy, full inspection with whatever policy, masking
// and recording sections the build's check-config accepts, and two ablations
// of it: without masking, and with recording disabled) and a pgbouncer in
// session mode, then runs pgbench against every target in turn, round after
// round, so that each target's throughput can be compared with direct access
// measured minutes earlier on the same busy machine, and what masking and
// recording cost end to end is the ratio of airlock-full to its ablation in
// the same round. It also runs, on the few workloads each is compared on
// (targetWorkloads), airlock-quickstart (the repository's airlock.yaml
// sections on the bench connection) and its ablation without masking;
// Airlock's relay and full inspection with runtime.keep_awake off and with
// GOMAXPROCS=1; and cmd/relay-floor, the smallest Go TCP relays (one
// goroutine per direction or per session, one locked thread over epoll,
// io_uring), built into the run's temporary directory. A floor mode
// relay-floor does not know or this machine cannot run (exit status 3) is
// skipped, and the report says why. The "Runtime experiments" section
// compares CPU per transaction at 1 and 16 clients and gives each change
// of design a verdict: adopt only if it cuts CPU per transaction by 15% at
// both. Besides CPU, the harness reads each process's voluntary and
// involuntary context switches, summed over /proc/<pid>/task/*/status at
// the start and end of each run (a thread that ended in between takes its
// count with it). Besides pgbench's built-in scripts, it reads two tables it
// creates: bench_wide (e-mail addresses and card numbers: masking has work)
// and bench_ordinary (a product catalogue with nothing sensitive: the
// ordinary OLTP result, verified byte-identical through every target).
// Latency percentiles are computed from pgbench's per-transaction logs, CPU
// per transaction from /proc/<pid>/stat of the process under test, and
// memory per idle client from VmRSS with many idle sessions open.
//
// The other engines have suites of their own, selected with -suites (a
// comma-separated list of postgres, mysql, redis and http; default all),
// each reported as throughput, p50 and p99 against direct access in the
// same round, and CPU per operation of the process under test:
//
//   - mysql: sysbench oltp_point_select (prepared and not) and
//     oltp_read_only on tables it prepares in database airlock_bench_mysql
//     (dropped afterwards), and a connection per operation through the
//     harness's own load generator, against MariaDB, HAProxy in TCP mode and
//     Airlock in mode relay, decode and inspect with masking and recording
//     (full);
//   - redis: redis-benchmark GET and SET from 50 clients, pipelined 16 deep
//     and not, against Redis, nutcracker (twemproxy) and the same three
//     Airlock modes, in database 9;
//   - http: a Go load generator (16 keep-alive clients) against a small
//     JSON API the harness serves, directly and through Airlock's HTTP
//     proxy in mode decode, and in mode inspect without and with masking
//     and recording.
//
// BENCHMARKS.md has a PostgreSQL part, a "MySQL, Redis and HTTP" section
// with its own date and command, and a tail other commands write: a run
// rewrites the parts it measured and keeps the others verbatim.
//
// Usage (from the repository root):
//
//	go run ./cmd/airlock-bench             # full run, writes BENCHMARKS.md
//	go run ./cmd/airlock-bench -quick      # smoke run, prints the report
//	go run ./cmd/airlock-bench -suites mysql,redis -rounds 1 -duration 5s -out -
//
// Everything it starts (processes, temporary directories) is removed when it
// ends, also on Ctrl-C. The pgbench database airlock_bench is kept for reuse;
// the mysql suite's database and the redis suite's key are removed.
package main
