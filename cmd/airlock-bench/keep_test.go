package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAssembleReport(t *testing.T) {
	const (
		oldPG    = "# Airlock benchmarks\n\nold postgres\n"
		oldProto = protoHeading + "\n\n- Date: old\n\n### Redis\n"
		kept     = keptMarker + "\n## Memory per session\n"
	)
	tests := []struct {
		name      string
		old       string // "" for no file
		pg, proto string // "" for not measured
		want      string
	}{
		{name: "no file, both", pg: "# Airlock benchmarks\n\nnew postgres\n", proto: "\n" + protoHeading + "\n\nnew proto\n",
			want: "# Airlock benchmarks\n\nnew postgres\n\n" + protoHeading + "\n\nnew proto\n"},
		{name: "no file, postgres only", pg: "# Airlock benchmarks\n\nnew postgres\n", want: "# Airlock benchmarks\n\nnew postgres\n"},
		{name: "no file, protocols only: a title of its own", proto: protoHeading + "\n\nnew proto\n",
			want: reportTitle + "\n\n" + protoHeading + "\n\nnew proto\n"},
		{name: "postgres run keeps the protocol section and the kept tail", old: oldPG + "\n" + oldProto + "\n" + kept,
			pg: "# Airlock benchmarks\n\nnew postgres\n", want: "# Airlock benchmarks\n\nnew postgres\n\n" + oldProto + "\n" + kept},
		{name: "protocol run keeps the postgres part", old: oldPG + "\n" + oldProto + "\n" + kept,
			proto: protoHeading + "\n\nnew proto\n", want: oldPG + "\n" + protoHeading + "\n\nnew proto\n\n" + kept},
		{name: "postgres run on a file without protocol section", old: oldPG + "\n" + kept,
			pg: "# Airlock benchmarks\n\nnew postgres\n", want: "# Airlock benchmarks\n\nnew postgres\n\n" + kept},
		{name: "protocol run on a protocol-only file", old: reportTitle + "\n\n" + oldProto,
			proto: protoHeading + "\n\nnew proto\n", want: reportTitle + "\n\n" + protoHeading + "\n\nnew proto\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var pg, proto []byte
			if tc.pg != "" {
				pg = []byte(tc.pg)
			}
			if tc.proto != "" {
				proto = []byte(tc.proto)
			}
			if got := string(assembleReport(path, pg, proto)); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestAssembleKeepsRepositoryReport checks that a PostgreSQL-only run
// keeps the repository's protocol section and kept tail byte for byte.
func TestAssembleKeepsRepositoryReport(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("..", "..", "BENCHMARKS.md"))
	if err != nil {
		t.Skip("no BENCHMARKS.md in the checkout")
	}
	parts := splitReport(old)
	if parts.proto == nil {
		t.Skip("BENCHMARKS.md has no protocol section")
	}
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	got := assembleReport(path, []byte("# Airlock benchmarks\n\nnew\n"), nil)
	if want := "# Airlock benchmarks\n\nnew\n\n" + string(parts.proto); len(got) < len(want) || string(got[:len(want)]) != want {
		t.Errorf("the protocol section was not kept verbatim")
	}
	if again := assembleReport(path, nil, nil); string(again) != string(old) && string(again) != string(old)+"\n" {
		t.Errorf("a run that measured nothing changed the file")
	}
}
