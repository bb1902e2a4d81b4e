package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

func strp(s string) *string { return &s }

func TestCollectorKeepsTheLastStatement(t *testing.T) {
	cols := []protocols.Column{{Name: "a", Type: protocols.TypeNumber}, {Name: "b", Type: protocols.TypeText}}
	tests := []struct {
		name      string
		limits    limits
		run       func(c *collector)
		wantRows  [][]*string
		wantCols  int
		wantTag   string
		wantCount int64
		truncated bool
	}{
		{name: "rows within limits", limits: limits{10, 1000}, run: func(c *collector) {
			_ = c.ForwardColumns(cols)
			_ = c.ForwardRow([][]byte{[]byte("1"), nil}, false)
			c.outcome(protocols.Result{Tag: "SELECT 1", Rows: 1})
		}, wantRows: [][]*string{{strp("1"), nil}}, wantCols: 2, wantTag: "SELECT 1", wantCount: 1},
		{name: "max rows", limits: limits{2, 1000}, run: func(c *collector) {
			_ = c.ForwardColumns(cols)
			for range 5 {
				_ = c.ForwardRow([][]byte{[]byte("1"), []byte("x")}, false)
			}
			c.outcome(protocols.Result{Tag: "SELECT 5", Rows: 5})
		}, wantRows: [][]*string{{strp("1"), strp("x")}, {strp("1"), strp("x")}}, wantCols: 2, wantTag: "SELECT 5", wantCount: 5, truncated: true},
		{name: "max bytes", limits: limits{10, 20}, run: func(c *collector) {
			_ = c.ForwardColumns(cols)
			_ = c.ForwardRow([][]byte{[]byte("1"), []byte("short")}, false)
			_ = c.ForwardRow([][]byte{[]byte("2"), []byte(strings.Repeat("long", 10))}, false)
			_ = c.ForwardRow([][]byte{[]byte("3"), []byte("s")}, false)
			c.outcome(protocols.Result{Tag: "SELECT 3", Rows: 3})
		}, wantRows: [][]*string{{strp("1"), strp("short")}}, wantCols: 2, wantTag: "SELECT 3", wantCount: 3, truncated: true},
		{name: "a write after a select", limits: limits{10, 1000}, run: func(c *collector) {
			_ = c.ForwardColumns(cols)
			_ = c.ForwardRow([][]byte{[]byte("1"), nil}, false)
			c.outcome(protocols.Result{Tag: "SELECT 1", Rows: 1})
			c.outcome(protocols.Result{Tag: "UPDATE 4", Rows: 4})
		}, wantRows: nil, wantCols: 0, wantTag: "UPDATE 4", wantCount: 4},
		{name: "a select after a write", limits: limits{10, 1000}, run: func(c *collector) {
			c.outcome(protocols.Result{Tag: "UPDATE 4", Rows: 4})
			_ = c.ForwardColumns(cols)
			c.outcome(protocols.Result{Tag: "SELECT 0"})
		}, wantCols: 2, wantTag: "SELECT 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &collector{maxRows: tc.limits.rows, maxBytes: tc.limits.bytes}
			tc.run(c)
			if !slices.EqualFunc(c.rows, tc.wantRows, func(a, b []*string) bool {
				return slices.EqualFunc(a, b, func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) })
			}) {
				t.Errorf("rows %v", c.rows)
			}
			if len(c.cols) != tc.wantCols || c.tag != tc.wantTag || c.count != tc.wantCount || c.truncated != tc.truncated {
				t.Errorf("cols %v tag %q count %d truncated %v", c.cols, c.tag, c.count, c.truncated)
			}
		})
	}
}

func TestParseWait(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "30s": 30 * time.Second, "5": 5 * time.Second, "1m": time.Minute} {
		if got, err := parseWait(in); err != nil || got != want {
			t.Errorf("parseWait(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"forever", "-1s", "2m", "61"} {
		if _, err := parseWait(in); err == nil {
			t.Errorf("parseWait(%q) accepted", in)
		}
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		values []string
		token  string
		ok     bool
	}{
		{[]string{"Bearer abc"}, "abc", true},
		{[]string{"bearer  abc"}, "abc", true},
		{[]string{"Basic abc"}, "", false},
		{[]string{"Bearer"}, "", false},
		{[]string{"Bearer a b"}, "", false},
		{[]string{"Bearer a", "Bearer b"}, "", false},
	} {
		if tok, ok := bearer(tc.values); tok != tc.token || ok != tc.ok {
			t.Errorf("bearer(%q) = %q, %v", tc.values, tok, ok)
		}
	}
}

func TestFitSchemaKeepsWholeTables(t *testing.T) {
	var tables []engine.Table
	for i := range 100 {
		tables = append(tables, engine.Table{Name: strings.Repeat("t", 10) + string(rune('a'+i%26)), Kind: "table",
			Columns: []engine.Column{{Name: "c", Type: "text"}}})
	}
	a := fitSchema("main", tables, 1000)
	if !a.Truncated || len(a.Tables) == 0 || len(a.Tables) >= 100 || !strings.Contains(a.Message, "of 100 tables") {
		t.Fatalf("%d tables, truncated %v: %s", len(a.Tables), a.Truncated, a.Message)
	}
	if a := fitSchema("main", tables[:2], 1000); a.Truncated || len(a.Tables) != 2 {
		t.Fatalf("small schema cut: %+v", a)
	}
}
