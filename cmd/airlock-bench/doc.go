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
// Usage (from the repository root):
//
//	go run ./cmd/airlock-bench             # full run, writes BENCHMARKS.md
//	go run ./cmd/airlock-bench -quick      # smoke run (about three minutes), prints the report
//
// Everything it starts (processes, temporary directories) is removed when it
// ends, also on Ctrl-C. The pgbench database airlock_bench is kept for reuse.
package main
