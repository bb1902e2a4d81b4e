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
// the same round. Besides pgbench's built-in scripts, it reads two tables it
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
