package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Workload is one pgbench configuration, run against every target.
type Workload struct {
	Key     string // stable identifier, used in flags and file names
	Title   string
	Clients int
	Threads int
	// Mode is pgbench's -M: simple, extended or prepared.
	Mode string
	// Builtin is a pgbench builtin script (-b), empty with Script.
	Builtin string
	// Script is a custom script's body (-f), empty with Builtin.
	Script string
	// Connect opens a new connection per transaction (-C).
	Connect bool
	// ReadWrite workloads change the tables; the harness vacuums before
	// each run as pgbench itself would.
	ReadWrite bool
	// ScriptName is the custom script's file name, as the report shows it.
	ScriptName string
	// Ablations runs the ablation targets (airlock-full minus masking, minus
	// recording) too: only on the workloads whose ratios the masking and
	// recording goals read, to keep a full run short.
	Ablations bool
}

// runs reports whether target runs on w: a target restricted to some
// workloads (targetWorkloads) only on those, an ablation only on workloads
// with Ablations set.
func (w Workload) runs(target string) bool {
	if only, ok := targetWorkloads[target]; ok {
		return slices.Contains(only, w.Key)
	}
	return w.Ablations || !isAblation(target)
}

// wideScript reads 100 rows of 4 columns, two of which hold values a
// masking detector recognises (e-mail addresses and card-like numbers).
var wideScript = fmt.Sprintf(`\set start random(1, %d)
SELECT id, name, email, card FROM %s WHERE id BETWEEN :start AND :start + %d;
`, wideRows-widePage+1, wideTable, widePage-1)

// workloads are the standard set, in run order.
var workloads = []Workload{
	{Key: "select-simple-c1", Title: "Select-only, simple protocol, 1 client (-S -M simple -c 1)", Clients: 1, Threads: 1, Mode: "simple", Builtin: "select-only"},
	{Key: "select-prepared-c1", Title: "Select-only, prepared statements, 1 client (-S -M prepared -c 1)", Clients: 1, Threads: 1, Mode: "prepared", Builtin: "select-only"},
	{Key: "select-simple-c16", Title: "Select-only, simple protocol, 16 clients (-S -M simple -c 16 -j 2)", Clients: 16, Threads: 2, Mode: "simple", Builtin: "select-only", Ablations: true},
	{Key: "select-prepared-c16", Title: "Select-only, prepared statements, 16 clients (-S -M prepared -c 16 -j 2)", Clients: 16, Threads: 2, Mode: "prepared", Builtin: "select-only", Ablations: true},
	{Key: "tpcb-c16", Title: "TPC-B-like read-write (pgbench default script), 16 clients (-M simple -c 16 -j 2)", Clients: 16, Threads: 2, Mode: "simple", Builtin: "tpcb-like", ReadWrite: true},
	{Key: "wide-c4", Title: "Wide rows: 100 rows x 4 columns per query, with e-mails and card numbers (-M prepared -c 4 -j 2)", Clients: 4, Threads: 2, Mode: "prepared", Script: wideScript, ScriptName: "wide.sql", Ablations: true},
	{Key: "ordinary-c4", Title: "Ordinary OLTP rows: 100 rows x 8 columns per query, nothing sensitive (-M prepared -c 4 -j 2)", Clients: 4, Threads: 2, Mode: "prepared", Script: ordinaryScript, ScriptName: "ordinary.sql", Ablations: true},
	{Key: "connect-c4", Title: "Connect per transaction: authentication and startup (-C -S -M simple -c 4 -j 2)", Clients: 4, Threads: 2, Mode: "simple", Builtin: "select-only", Connect: true, Ablations: true},
}

// workloadByKey returns the standard workload named key.
func workloadByKey(key string) (Workload, bool) {
	for _, w := range workloads {
		if w.Key == key {
			return w, true
		}
	}
	return Workload{}, false
}

// args returns pgbench's arguments for w against t, without the password
// (passed through PGPASSWORD). scriptPath is the custom script's file.
func (w Workload) args(t *target, dur time.Duration, scriptPath, logPrefix string) []string {
	a := []string{"-n", "-T", fmt.Sprint(int(dur.Round(time.Second).Seconds())),
		"-c", fmt.Sprint(w.Clients), "-j", fmt.Sprint(w.Threads), "-M", w.Mode}
	if w.Script != "" {
		a = append(a, "-f", scriptPath)
	} else {
		a = append(a, "-b", w.Builtin)
	}
	if w.Connect {
		a = append(a, "-C")
	}
	if logPrefix != "" {
		a = append(a, "--log", "--log-prefix="+logPrefix)
	}
	return append(a, "-h", t.host, "-p", fmt.Sprint(t.port), "-U", t.user, t.db)
}

// CommandLine is the pgbench command for the report, with placeholders for
// what changes per target.
func (w Workload) CommandLine(dur time.Duration) string {
	t := &target{host: "HOST", port: 0, user: "USER", db: "DB"}
	a := w.args(t, dur, w.ScriptName, "")
	s := "pgbench " + strings.Join(a, " ")
	return strings.Replace(s, "-p 0", "-p PORT", 1)
}

// selectWorkloads keeps the workloads named in keys (comma separated;
// empty keeps all).
func selectWorkloads(keys string, others ...string) ([]Workload, error) {
	if keys == "" {
		return workloads, nil
	}
	var out []Workload
	for _, k := range splitKeys(keys) {
		found := slices.Contains(others, k)
		for _, w := range workloads {
			if w.Key == k {
				out, found = append(out, w), true
			}
		}
		if !found {
			var all []string
			for _, w := range workloads {
				all = append(all, w.Key)
			}
			all = append(all, others...)
			return nil, fmt.Errorf("unknown workload %q (want one of %s)", k, strings.Join(all, ", "))
		}
	}
	return out, nil
}

// splitKeys splits a comma-separated -workloads value.
func splitKeys(keys string) []string {
	var out []string
	for _, k := range strings.Split(keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// selectProto keeps the protocol suite's workloads named in keys (all of
// them when keys is empty), in the suite's order.
func selectProto(ws []protoWorkload, keys string) []protoWorkload {
	if keys == "" {
		return ws
	}
	named := splitKeys(keys)
	var out []protoWorkload
	for _, w := range ws {
		if slices.Contains(named, w.Key) {
			out = append(out, w)
		}
	}
	return out
}

// protoWorkloadKeys are the keys of every protocol suite's workloads, which
// -workloads may name too.
func protoWorkloadKeys(opt options) []string {
	b := &bench{opt: opt}
	var keys []string
	for _, ws := range [][]protoWorkload{b.mysqlWorkloads(), b.redisWorkloads(), httpWorkloads()} {
		for _, w := range ws {
			keys = append(keys, w.Key)
		}
	}
	return keys
}

// selectTargets keeps the targets named in names, in run order; direct is
// always kept because every ratio is to direct.
func selectTargets(names string) ([]string, error) {
	if names == "" {
		return allTargets, nil
	}
	want := map[string]bool{targetDirect: true}
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		ok := false
		for _, t := range allTargets {
			if t == n {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("unknown target %q (want some of %s)", n, strings.Join(allTargets, ", "))
		}
		want[n] = true
	}
	var out []string
	for _, t := range allTargets {
		if want[t] {
			out = append(out, t)
		}
	}
	return out, nil
}
