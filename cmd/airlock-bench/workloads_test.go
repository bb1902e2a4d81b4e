package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWorkloadArgs(t *testing.T) {
	tg := &target{host: "127.0.0.1", port: 6000, user: "bench", db: "airlock_bench"}
	byKey := map[string]Workload{}
	for _, w := range workloads {
		byKey[w.Key] = w
	}
	tests := []struct {
		key  string
		want string
	}{
		{"select-simple-c1", "-n -T 10 -c 1 -j 1 -M simple -b select-only --log --log-prefix=/l/tx -h 127.0.0.1 -p 6000 -U bench airlock_bench"},
		{"select-prepared-c16", "-n -T 10 -c 16 -j 2 -M prepared -b select-only --log --log-prefix=/l/tx -h 127.0.0.1 -p 6000 -U bench airlock_bench"},
		{"tpcb-c16", "-n -T 10 -c 16 -j 2 -M simple -b tpcb-like --log --log-prefix=/l/tx -h 127.0.0.1 -p 6000 -U bench airlock_bench"},
		{"wide-c4", "-n -T 10 -c 4 -j 2 -M prepared -f /l/wide.sql --log --log-prefix=/l/tx -h 127.0.0.1 -p 6000 -U bench airlock_bench"},
		{"ordinary-c4", "-n -T 10 -c 4 -j 2 -M prepared -f /l/wide.sql --log --log-prefix=/l/tx -h 127.0.0.1 -p 6000 -U bench airlock_bench"},
		{"connect-c4", "-n -T 10 -c 4 -j 2 -M simple -b select-only -C --log --log-prefix=/l/tx -h 127.0.0.1 -p 6000 -U bench airlock_bench"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			got := strings.Join(byKey[tc.key].args(tg, 10*time.Second, "/l/wide.sql", "/l/tx"), " ")
			if got != tc.want {
				t.Fatalf("args:\n got %s\nwant %s", got, tc.want)
			}
			if strings.Contains(got, "password") {
				t.Fatal("a password must never be on pgbench's command line")
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	for key, want := range map[string]string{
		"select-simple-c1": "pgbench -n -T 10 -c 1 -j 1 -M simple -b select-only -h HOST -p PORT -U USER DB",
		"ordinary-c4":      "pgbench -n -T 10 -c 4 -j 2 -M prepared -f ordinary.sql -h HOST -p PORT -U USER DB",
	} {
		w, ok := workloadByKey(key)
		if !ok {
			t.Fatalf("no workload %s", key)
		}
		if got := w.CommandLine(10 * time.Second); got != want {
			t.Errorf("CommandLine = %q, want %q", got, want)
		}
	}
}

// TestAblationWorkloads pins where the ablation targets run: exactly the
// workloads the masking and recording goals read.
func TestAblationWorkloads(t *testing.T) {
	var got []string
	for _, w := range workloads {
		if w.Ablations {
			got = append(got, w.Key)
		}
		if !w.runs(targetFull) || !w.runs(targetDirect) {
			t.Errorf("%s must run every non-ablation target", w.Key)
		}
		if w.runs(targetNoMask) != w.Ablations || w.runs(targetNoRec) != w.Ablations {
			t.Errorf("%s: ablation targets run = %v, want %v", w.Key, w.runs(targetNoMask), w.Ablations)
		}
	}
	want := []string{"select-simple-c16", "select-prepared-c16", "wide-c4", "ordinary-c4", "connect-c4"}
	if !slices.Equal(got, want) {
		t.Fatalf("ablation workloads = %v, want %v", got, want)
	}
}

func TestWideScript(t *testing.T) {
	if !strings.Contains(wideScript, `\set start random(1, 9901)`) || !strings.Contains(wideScript, ":start + 99;") {
		t.Fatalf("wide script does not read 100 rows within the table:\n%s", wideScript)
	}
}

func TestSelect(t *testing.T) {
	ws, err := selectWorkloads("connect-c4, select-simple-c1")
	if err != nil || len(ws) != 2 || ws[0].Key != "connect-c4" {
		t.Fatalf("selectWorkloads = %v, %v", ws, err)
	}
	if _, err := selectWorkloads("nope"); err == nil || !strings.Contains(err.Error(), "select-simple-c1") {
		t.Fatalf("unknown workload error should list the known ones: %v", err)
	}
	ts, err := selectTargets("airlock-full,pgbouncer")
	if err != nil || !slices.Equal(ts, []string{targetDirect, targetPgbouncer, targetFull}) {
		t.Fatalf("selectTargets = %v, %v (direct always first, run order kept)", ts, err)
	}
	if _, err := selectTargets("mysql"); err == nil {
		t.Fatal("unknown target accepted")
	}
	if ts, _ := selectTargets(""); !slices.Equal(ts, allTargets) {
		t.Fatalf("default targets = %v", ts)
	}
	ts, err = selectTargets("airlock-full-norec,airlock-full,airlock-full-nomask")
	if err != nil || !slices.Equal(ts, []string{targetDirect, targetFull, targetNoMask, targetNoRec}) {
		t.Fatalf("selectTargets = %v, %v (ablations right after full)", ts, err)
	}
}

func TestCardNumbersAreLuhnValid(t *testing.T) {
	for _, id := range []int{1, 2, 9, 10, 77, 9999, 10000} {
		c := cardNumber(id)
		if len(c) != 19 || !luhnValid(c) {
			t.Errorf("cardNumber(%d) = %q: want 16 Luhn-valid digits in groups of four", id, c)
		}
	}
	if luhnValid("4000 0000 0000 0001") {
		t.Error("luhnValid accepts an invalid number: the check would prove nothing")
	}
}

// luhnValid reports whether the digits of s pass the Luhn check.
func luhnValid(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c == ' ' {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		v := int(c - '0')
		if n%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		n++
	}
	return n > 1 && sum%10 == 0
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-quick"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 1 || o.duration != 2*time.Second || o.idle != 200 || o.out != "-" || o.warmup != time.Second {
		t.Errorf("quick defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-quick", "-rounds", "2", "-out", "x.md"}, &strings.Builder{})
	if err != nil || o.rounds != 2 || o.out != "x.md" {
		t.Errorf("explicit flags must win over -quick: %+v %v", o, err)
	}
	o, err = parseFlags(nil, &strings.Builder{})
	if err != nil || o.rounds != 3 || o.duration != 10*time.Second || o.out != "BENCHMARKS.md" || o.idle != 1000 {
		t.Errorf("defaults = %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-rounds", "0"}, {"-duration", "500ms"}, {"-warmup", "10ms"}, {"-idle", "-1"}, {"extra"}} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

// TestSelectProtoWorkloads: -workloads names the protocol suites'
// workloads too, and each suite runs only those of its own it names.
func TestSelectProtoWorkloads(t *testing.T) {
	keys := protoWorkloadKeys(options{redisRequests: 10})
	if !slices.Contains(keys, "point-select-c16") || !slices.Contains(keys, "get-c50") || !slices.Contains(keys, "get-item-c16") {
		t.Fatalf("protocol workload keys = %v", keys)
	}
	ws, err := selectWorkloads("connect-c4,point-select-c16", keys...)
	if err != nil || len(ws) != 1 || ws[0].Key != "connect-c4" {
		t.Fatalf("selectWorkloads = %v, %v: want pgbench's connect-c4 only", ws, err)
	}
	if _, err := selectWorkloads("nope", keys...); err == nil || !strings.Contains(err.Error(), "point-select-c16") {
		t.Fatalf("unknown workload error should list the protocol suites' too: %v", err)
	}
	b := &bench{opt: options{redisRequests: 10}}
	got := selectProto(b.mysqlWorkloads(), "connect-c4, select-simple-c1")
	if len(got) != 1 || got[0].Key != "connect-c4" {
		t.Fatalf("selectProto kept %v: want the mysql suite's connect-c4 only", got)
	}
	if got := selectProto(b.mysqlWorkloads(), ""); len(got) != len(b.mysqlWorkloads()) {
		t.Fatalf("selectProto without -workloads kept %d of %d", len(got), len(b.mysqlWorkloads()))
	}
	if got := selectProto(b.redisWorkloads(), "connect-c4"); len(got) != 0 {
		t.Fatalf("selectProto kept %v of the redis suite for connect-c4", got)
	}
}

// TestRecordingRoot: -recordings moves every target's recordings into a
// subdirectory of the run's own there.
func TestRecordingRoot(t *testing.T) {
	b := &bench{tmp: "/tmp/airlock-bench-123"}
	if got := b.recordingDir("airlock-full"); got != "/tmp/airlock-bench-123/recordings/airlock-full" {
		t.Errorf("default recording dir %s", got)
	}
	b.opt.recordings = "/dev/shm"
	if got := b.recordingDir("airlock-full"); got != "/dev/shm/airlock-bench-123-recordings/airlock-full" {
		t.Errorf("recording dir with -recordings %s", got)
	}
}
