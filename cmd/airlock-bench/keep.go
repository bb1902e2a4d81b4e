package main

import (
	"bytes"
	"os"
)

// BENCHMARKS.md has three parts: PostgreSQL's (from the top), the protocol
// suites' (from protoHeading) and the part other commands write (from
// keptMarker). A run rewrites the parts it measured and keeps the others
// as they are: a PostgreSQL-only run keeps the protocol section, which
// carries its own date and command, and a protocol-only run keeps the
// PostgreSQL part.
const (
	// keptMarker starts the part of BENCHMARKS.md that other commands write
	// (`make soak`'s memory per session): a new report keeps it as it is.
	keptMarker = "<!-- Below: sections airlock-bench keeps as they are. -->"
	// protoHeading starts the protocol suites' section.
	protoHeading = "## MySQL, Redis and HTTP"
	// reportTitle heads a report that has no PostgreSQL part.
	reportTitle = "# Airlock benchmarks"
)

// reportParts are the three parts of BENCHMARKS.md; nil when absent.
type reportParts struct {
	postgres, proto, kept []byte
}

// splitReport cuts a BENCHMARKS.md into its parts.
func splitReport(md []byte) reportParts {
	var p reportParts
	if i := bytes.Index(md, []byte(keptMarker)); i >= 0 {
		md, p.kept = md[:i], md[i:]
	}
	i := bytes.Index(md, []byte("\n"+protoHeading+"\n"))
	if i < 0 {
		p.postgres = md
	} else {
		p.postgres, p.proto = md[:i+1], md[i+1:]
	}
	if t := bytes.TrimSpace(p.postgres); len(t) == 0 || string(t) == reportTitle {
		p.postgres = nil // a protocol-only report's title
	}
	return p
}

// assembleReport returns the report to write at path: pg and proto where
// this run measured them (non-nil), the existing file's parts elsewhere,
// and the existing file's kept part at the end.
func assembleReport(path string, pg, proto []byte) []byte {
	var old reportParts
	if b, err := os.ReadFile(path); err == nil {
		old = splitReport(b)
	}
	if pg == nil {
		pg = old.postgres
	}
	if proto == nil {
		proto = old.proto
	}
	return joinParts(reportParts{postgres: pg, proto: proto, kept: old.kept})
}

// joinParts puts the parts together, one blank line between two, with a
// title when there is no PostgreSQL part.
func joinParts(p reportParts) []byte {
	out := bytes.TrimRight(p.postgres, "\n")
	if len(out) == 0 {
		out = []byte(reportTitle)
	}
	for _, part := range [][]byte{p.proto, p.kept} {
		if part = bytes.Trim(part, "\n"); len(part) > 0 {
			out = append(append(out, "\n\n"...), part...)
		}
	}
	return append(out, '\n')
}
