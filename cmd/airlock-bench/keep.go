package main

import (
	"bytes"
	"os"
)

// keptMarker starts the part of BENCHMARKS.md that other commands write
// (`make soak`'s memory per session): a new report keeps it as it is.
const keptMarker = "<!-- Below: sections airlock-bench keeps as they are. -->"

// withKeptTail appends to md the part of the file at path from keptMarker
// on, when the file has one.
func withKeptTail(path string, md []byte) []byte {
	old, err := os.ReadFile(path)
	if err != nil {
		return md
	}
	i := bytes.Index(old, []byte(keptMarker))
	if i < 0 {
		return md
	}
	out := append(bytes.TrimRight(md, "\n"), "\n\n"...)
	return append(out, old[i:]...)
}
