package sqlrisk

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/approvals/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestRunJSONLGolden runs testdata/classify.jsonl through the default
// classifier and policy and compares with testdata/classify.golden.
func TestRunJSONLGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/classify.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := RunJSONL(bytes.NewReader(in), &out, New(Config{}), policy.Default()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/classify.golden", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/classify.golden")
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if out.String() != string(want) {
		t.Errorf("output differs from testdata/classify.golden (run with -update and review the diff):\n%s", out.String())
	}
	if strings.Count(out.String(), "\n") != strings.Count(string(in), "\n") {
		t.Errorf("%d output lines for %d input lines", strings.Count(out.String(), "\n"), strings.Count(string(in), "\n"))
	}
}

func TestRunJSONLLines(t *testing.T) {
	long := "SELECT * FROM t WHERE id IN (" + strings.Repeat("12345678, ", 400000) + "0)" // ~4 MB
	lines := []string{
		`{"protocol":"postgres","command":"DROP TABLE t"}`,
		`not json`,
		``,
		`{"protocol":"postgres","command":"` + long + `"}`,
		`{"protocol":"sqlite","command":"x"}`,
		`{"protocol":"mysql"}`,
		`{"protocol":"postgres","args":["x"]}`,
		`{"protocol":"redis","args":["FLUSHALL"]}`,
		`{"protocol":"redis","command":"AUTH secret"}`,
		`{"protocol":"postgres","command":"DROP TABLE t","identity":{"name":"x","groups":["dba"]}}` + "\r",
		`{"protocol":"mysql","command":"SELECT 1"}`, // last line without a newline
	}
	var out bytes.Buffer
	err := RunJSONL(strings.NewReader(strings.Join(lines, "\n")), &out, New(Config{}), policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("%d output lines for %d input lines:\n%s", len(got), len(lines), out.String())
	}
	want := []string{
		`"action":"review","risk":"high","rules":["schema.drop"]`,
		`"error":"invalid JSON`,
		`"error":"empty line"`,
		`"action":"allow","risk":"none"`,
		`"error":"unknown protocol \"sqlite\"`,
		`"error":"missing \"command\""`,
		`"error":"args is only for redis`,
		`"action":"review","risk":"high","rules":["admin.flush"]`,
		`"action":"allow","risk":"none","rules":[],"statements":[{"kind":"auth","tables":[]}]`,
		`"action":"review"`,
		`"action":"allow","risk":"none","rules":[],"statements":[{"kind":"select","tables":[]}]`,
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("line %d = %s, want it to contain %s", i+1, got[i], want[i])
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got[i]), &v); err != nil {
			t.Errorf("line %d is not JSON: %v", i+1, err)
		}
	}
	if strings.Contains(out.String(), "secret") {
		t.Error("an AUTH secret reached the output")
	}
}

func TestRunJSONLTooLong(t *testing.T) {
	const limit = 3 << 20 // larger than the reader's buffer, so a line spans reads
	in := `{"protocol":"postgres","command":"` + strings.Repeat("x", limit+10) + `"}` + "\n" + `{"protocol":"postgres","command":"SELECT 1"}` + "\n"
	var out bytes.Buffer
	if err := runJSONL(strings.NewReader(in), &out, New(Config{}), policy.Default(), limit); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != 2 || !strings.Contains(got[0], "line longer than") || !strings.Contains(got[1], `"action":"allow"`) {
		t.Errorf("output = %s", out.String())
	}
}

type failingReader struct{ data *strings.Reader }

func (r *failingReader) Read(p []byte) (int, error) {
	n, err := r.data.Read(p)
	if err != nil {
		return n, errors.New("disk on fire")
	}
	return n, nil
}

func TestRunJSONLErrors(t *testing.T) {
	var out bytes.Buffer
	err := RunJSONL(&failingReader{strings.NewReader(`{"protocol":"postgres","command":"SELECT 1"}` + "\n")}, &out, New(Config{}), policy.Default())
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error = %v", err)
	}
	if !strings.Contains(out.String(), `"action":"allow"`) {
		t.Errorf("lines before the read error were not answered: %q", out.String())
	}
	if err := RunJSONL(strings.NewReader(""), &out, nil, policy.Default()); err == nil {
		t.Error("a nil classifier was accepted")
	}
}
