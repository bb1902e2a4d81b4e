// Command airlock-bench measures Airlock side by side with direct access to
// PostgreSQL and with pgbouncer, in one run, and writes BENCHMARKS.md.
//
// It prepares a pgbench database on the local PostgreSQL, builds the airlock
// binary, starts one Airlock process per mode (plain relay, protocol-aware
// inspection without policy, full inspection with whatever policy, masking
// and recording sections the build's check-config accepts) and a pgbouncer in
// session mode, then runs pgbench against every target in turn, round after
// round, so that each target's throughput can be compared with direct access
// measured minutes earlier on the same busy machine. Latency percentiles are
// computed from pgbench's per-transaction logs, CPU per transaction from
// /proc/<pid>/stat of the process under test, and memory per idle client from
// VmRSS with many idle sessions open.
//
// Usage (from the repository root):
//
//	go run ./cmd/airlock-bench             # full run, writes BENCHMARKS.md
//	go run ./cmd/airlock-bench -quick      # smoke run (about two minutes), prints the report
//
// Everything it starts (processes, temporary directories) is removed when it
// ends, also on Ctrl-C. The pgbench database airlock_bench is kept for reuse.
package main
