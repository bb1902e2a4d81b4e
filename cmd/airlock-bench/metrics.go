package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// metricSums is what the harness reads from Airlock's /metrics: the sum of
// some series over all their labels, and commands by action.
type metricSums struct {
	Sums     map[string]float64 // metric name -> sum over its series
	ByAction map[string]float64 // airlock_commands_total by action label
}

// Metric names the harness reads.
const (
	mGoroutines = "go_goroutines"
	mClassified = "airlock_classify_duration_seconds_count"
	mCommands   = "airlock_commands_total"
)

// parseMetrics reads the Prometheus text exposition format for the named
// metrics. It is written by hand because it needs three series of one
// known exporter, whose lines are "name{labels} value" or "name value";
// comments and other metrics are skipped.
func parseMetrics(r io.Reader, names ...string) (metricSums, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	m := metricSums{Sums: map[string]float64{}, ByAction: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, value, ok := splitSample(line)
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		m.Sums[name] += v
		if name == mCommands {
			if a, ok := labelValue(labels, "action"); ok {
				m.ByAction[a] += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

// splitSample splits `name{labels} value [timestamp]`.
func splitSample(line string) (name, labels, value string, ok bool) {
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", "", "", false
		}
		name, labels, rest = line[:i], line[i+1:j], line[j+1:]
	} else {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return "", "", "", false
		}
		name, rest = line[:sp], line[sp:]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", "", "", false
	}
	return name, labels, f[0], true
}

// labelValue finds key="value" in a label list; label values of the
// exporter's bounded label sets hold no quotes or commas.
func labelValue(labels, key string) (string, bool) {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k == key {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}

// scrape reads the named metrics from an Airlock admin port.
func scrape(adminPort int, names ...string) (metricSums, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
	if err != nil {
		return metricSums{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metricSums{}, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, names...)
}

// goroutines reads go_goroutines from Airlock's /metrics (NaN when there is
// no admin port or it cannot be read).
func goroutines(adminPort int) float64 {
	if adminPort == 0 {
		return math.NaN()
	}
	m, err := scrape(adminPort, mGoroutines)
	if err != nil {
		return math.NaN()
	}
	v, ok := m.Sums[mGoroutines]
	if !ok {
		return math.NaN()
	}
	return v
}

// Activity is what an Airlock target reports having done during the run.
type Activity struct {
	Target     string
	Classified float64
	Commands   float64
	ByAction   string // "allow 1200, deny 3"
	Err        string
}

// activity scrapes an Airlock target's counters after the rounds.
func activity(t *target) Activity {
	a := Activity{Target: t.name}
	m, err := scrape(t.admin, mClassified, mCommands)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	a.Classified, a.Commands = m.Sums[mClassified], m.Sums[mCommands]
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.ByAction)) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m.ByAction[k]))
	}
	a.ByAction = strings.Join(parts, ", ")
	return a
}
