package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSummary(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		connect   bool
		txns      int64
		failed    int64
		tps       float64
		connectMs float64 // NaN: absent
	}{
		{"pg15 select-only", "summary-pg15-select.txt", false, 3324, 0, 2763.287514, math.NaN()},
		{"pg15 connect per transaction", "summary-pg15-connect.txt", true, 78, 0, 74.762915, 13.004},
		{"pg13 prefers excluding connections", "summary-pg13.txt", false, 12000, 0, 1200, math.NaN()},
		{"pg13 with -C prefers including connections", "summary-pg13.txt", true, 12000, 0, 1190, math.NaN()},
		{"failed transactions", "summary-failed.txt", false, 9000, 12, 900.5, math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			s, err := parseSummary(out, tc.connect)
			if err != nil {
				t.Fatalf("parseSummary: %v", err)
			}
			if s.Txns != tc.txns || s.Failed != tc.failed || s.TPS != tc.tps {
				t.Errorf("got txns %d failed %d tps %v, want %d %d %v", s.Txns, s.Failed, s.TPS, tc.txns, tc.failed, tc.tps)
			}
			if math.IsNaN(tc.connectMs) != math.IsNaN(s.ConnectMs) || (!math.IsNaN(tc.connectMs) && s.ConnectMs != tc.connectMs) {
				t.Errorf("connect ms = %v, want %v", s.ConnectMs, tc.connectMs)
			}
		})
	}
}

func TestParseSummaryErrors(t *testing.T) {
	tests := []struct {
		name string
		out  string
	}{
		{"empty", ""},
		{"connection failure", "pgbench: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"},
		{"no tps line", "number of transactions actually processed: 10\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseSummary([]byte(tc.out), false); !errors.Is(err, errNoSummary) {
				t.Fatalf("err = %v, want errNoSummary", err)
			}
		})
	}
}

func TestParseLog(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		lat     []int64
		st      logStats
		wantErr string
	}{
		{name: "pg15 lines", in: "0 1 3842 0 1795919438 625309\n0 2 481 0 1795919438 625802\n",
			lat: []int64{3842, 481}, st: logStats{OK: 2}},
		{name: "schedule lag and retries", in: "3 7 250 0 1795919438 625309 12 0\n",
			lat: []int64{250}, st: logStats{OK: 1}},
		{name: "failed and skipped", in: "0 1 failed 0 1 2\n0 2 skipped 0 1 2 5\n0 3 serialization 0 1 2\n0 4 deadlock 0 1 2\n1 1 10 0 1 2\n",
			lat: []int64{10}, st: logStats{OK: 1, Failed: 3, Skipped: 1}},
		{name: "blank lines ignored", in: "\n0 1 7 0 1 2\n\n", lat: []int64{7}, st: logStats{OK: 1}},
		{name: "empty", in: "", st: logStats{}},
		{name: "too few fields", in: "0 1 7 0 1\n", wantErr: "line 1: 5 fields"},
		{name: "not a number", in: "0 1 7 0 1 2\n0 2 7ms 0 1 2\n", wantErr: `line 2: latency "7ms"`},
		{name: "negative", in: "0 1 -3 0 1 2\n", wantErr: `latency "-3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lat []int64
			st, err := parseLog(strings.NewReader(tc.in), &lat)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLog: %v", err)
			}
			if !slices.Equal(lat, tc.lat) || st != tc.st {
				t.Errorf("got %v %+v, want %v %+v", lat, st, tc.lat, tc.st)
			}
		})
	}
}

func TestReadLogsMergesThreads(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "tx")
	files := map[string]string{
		"tx.4242":   "0 1 300 0 1 2\n0 2 100 0 1 2\n",
		"tx.4242.1": "1 1 200 0 1 2\n1 2 failed 0 1 2\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lat, st, err := readLogs(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{100, 200, 300}; !slices.Equal(lat, want) {
		t.Errorf("latencies = %v, want %v (sorted, both threads)", lat, want)
	}
	if st.OK != 3 || st.Failed != 1 {
		t.Errorf("stats = %+v, want 3 ok, 1 failed", st)
	}
	if _, _, err := readLogs(filepath.Join(dir, "missing")); err == nil {
		t.Error("readLogs without files: want an error")
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add([]byte("0 1 3842 0 1795919438 625309\n1 1 failed 0 1 2\n"))
	f.Add([]byte("3 7 250 0 1795919438 625309 12 0\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var lat []int64
		st, err := parseLog(strings.NewReader(string(in)), &lat)
		if err != nil {
			return
		}
		if int64(len(lat)) != st.OK {
			t.Fatalf("%d latencies for %d ok transactions", len(lat), st.OK)
		}
		for _, v := range lat {
			if v < 0 {
				t.Fatalf("negative latency %d", v)
			}
		}
	})
}

func FuzzParseSummary(f *testing.F) {
	for _, name := range []string{"summary-pg15-select.txt", "summary-pg15-connect.txt", "summary-pg13.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, connect bool) {
		s, err := parseSummary(in, connect)
		if err != nil {
			return
		}
		if s.Txns < 0 || s.Failed < 0 || s.TPS < 0 || math.IsNaN(s.TPS) {
			t.Fatalf("implausible summary %+v", s)
		}
	})
}
