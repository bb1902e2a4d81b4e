package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWithKeptTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if got := string(withKeptTail(path, []byte("new\n"))); got != "new\n" {
		t.Errorf("no file: %q", got)
	}
	if err := os.WriteFile(path, []byte("old\n\n"+keptMarker+"\n## Kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := string(withKeptTail(path, []byte("new\n"))), "new\n\n"+keptMarker+"\n## Kept\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(withKeptTail(path, []byte("new\n"))); got != "new\n" {
		t.Errorf("no marker: %q", got)
	}
}
