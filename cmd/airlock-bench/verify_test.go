package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ordinaryText is the generator's table in text form.
func ordinaryText() [][][]byte {
	rows := make([][][]byte, ordinaryRows)
	for i := range rows {
		for _, v := range makeOrdinaryRow(i + 1).text() {
			rows[i] = append(rows[i], []byte(v))
		}
	}
	return rows
}

func TestSameOrdinary(t *testing.T) {
	ref := ordinaryResult{simple: ordinaryText(), extended: ordinaryText()}
	if err := sameOrdinary(ref, ordinaryResult{simple: ordinaryText(), extended: ordinaryText()}, targetFull); err != nil {
		t.Fatalf("identical rows reported different: %v", err)
	}
	tests := []struct {
		name   string
		change func(r *ordinaryResult)
		want   string
	}{
		{"masked value", func(r *ordinaryResult) { r.extended[6][3] = []byte("[redacted:email]") },
			`extended protocol, table bench_ordinary: row 7, column description: "[redacted:email]", direct "A `},
		{"nulled value", func(r *ordinaryResult) { r.simple[0][4] = nil }, `simple protocol, table bench_ordinary: row 1, column price: NULL, direct "`},
		{"empty is not NULL", func(r *ordinaryResult) { r.simple[0][4] = []byte{} }, `row 1, column price: "", direct`},
		{"missing row", func(r *ordinaryResult) { r.simple = r.simple[1:] }, "9999 rows, direct 10000"},
		{"missing value", func(r *ordinaryResult) { r.simple[2] = r.simple[2][:7] }, "row 3: 7 values, direct 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ordinaryResult{simple: ordinaryText(), extended: ordinaryText()}
			tc.change(&got)
			err := sameOrdinary(ref, got, targetFull)
			if !errors.Is(err, errVerify) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), targetFull) {
				t.Fatalf("err = %v, want errVerify naming %s and %q", err, targetFull, tc.want)
			}
		})
	}
	short := ordinaryResult{simple: ordinaryText()[:5], extended: ordinaryText()[:5]}
	if err := sameOrdinary(short, short, targetFull); err == nil {
		t.Fatal("a short reference table passed: the check would compare nothing")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -1000: "-1,000", -100: "-100"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCountRecordings(t *testing.T) {
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "absent")
	if n, _ := countRecordings(a, b); n != 0 {
		t.Fatalf("empty: %d files", n)
	}
	if err := os.MkdirAll(filepath.Join(a, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"one.alrec", "x/two.alrec"} {
		if err := os.WriteFile(filepath.Join(a, f), []byte("abc"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, size := countRecordings(a, b); n != 2 || size != 6 {
		t.Fatalf("countRecordings = %d files, %d bytes; want 2, 6", n, size)
	}
	if got := recordingSummary(0, 0); got != "none" {
		t.Errorf("summary of nothing = %q", got)
	}
	if got := recordingSummary(3, 3<<20); got != "3 recording files, 3.0 MiB written during the run" {
		t.Errorf("summary = %q", got)
	}
}
