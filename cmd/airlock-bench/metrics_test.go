package main

import (
	"strings"
	"testing"
)

const exposition = `# HELP airlock_commands_total Commands decided, by action and risk.
# TYPE airlock_commands_total counter
airlock_commands_total{action="allow",connection="airlock_bench",protocol="postgres",risk="low"} 1200
airlock_commands_total{action="allow",connection="airlock_bench",protocol="postgres",risk="none"} 300
airlock_commands_total{action="deny",connection="airlock_bench",protocol="postgres",risk="critical"} 2
# TYPE airlock_classify_duration_seconds histogram
airlock_classify_duration_seconds_bucket{protocol="postgres",le="1e-06"} 0
airlock_classify_duration_seconds_sum{protocol="postgres"} 0.05
airlock_classify_duration_seconds_count{protocol="postgres"} 1502
go_goroutines 14
go_goroutines_other 99
process_start_time_seconds 1.7e+09 1700000000000
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(exposition), mGoroutines, mClassified, mCommands)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{mGoroutines: 14, mClassified: 1502, mCommands: 1502}
	for k, v := range want {
		if m.Sums[k] != v {
			t.Errorf("%s = %v, want %v", k, m.Sums[k], v)
		}
	}
	if len(m.Sums) != 3 {
		t.Errorf("sums of unrequested metrics: %v", m.Sums)
	}
	if m.ByAction["allow"] != 1500 || m.ByAction["deny"] != 2 || len(m.ByAction) != 2 {
		t.Errorf("by action = %v", m.ByAction)
	}
}

func TestParseMetricsSkipsJunk(t *testing.T) {
	in := "go_goroutines\n{broken 1\ngo_goroutines{a=\"b\"} notanumber\ngo_goroutines NaN\ngo_goroutines 3\n"
	m, err := parseMetrics(strings.NewReader(in), mGoroutines)
	if err != nil || m.Sums[mGoroutines] != 3 {
		t.Fatalf("got %v, %v; want only the valid sample", m.Sums, err)
	}
}

func TestSplitSample(t *testing.T) {
	tests := []struct {
		line, name, labels, value string
		ok                        bool
	}{
		{`a{x="1",y="2"} 5`, "a", `x="1",y="2"`, "5", true},
		{"b 7 1700000000", "b", "", "7", true},
		{"c", "", "", "", false},
		{"d{x} ", "", "", "", false},
		{"e}{ 1", "", "", "", false},
	}
	for _, tc := range tests {
		n, l, v, ok := splitSample(tc.line)
		if n != tc.name || l != tc.labels || v != tc.value || ok != tc.ok {
			t.Errorf("splitSample(%q) = %q %q %q %v", tc.line, n, l, v, ok)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(exposition)
	f.Add("go_goroutines 3\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parseMetrics(strings.NewReader(in), mGoroutines, mClassified, mCommands)
		if err != nil {
			return
		}
		// A sample counted by action is always counted in its metric's
		// total, and only requested metrics are summed.
		if _, ok := m.Sums[mCommands]; len(m.ByAction) > 0 && !ok {
			t.Fatalf("by action %v without a %s total", m.ByAction, mCommands)
		}
		for k := range m.Sums {
			if k != mGoroutines && k != mClassified && k != mCommands {
				t.Fatalf("summed unrequested metric %q", k)
			}
		}
	})
}
