// Package rule is the catalogue of Airlock's classification rule ids and the
// Builder the dialect analyzers use to assemble a protocols.Classification.
//
// A rule id is a stable, dotted name ("schema.drop", "reach.file") with one
// fixed risk. Policies refer to rules by id, so ids are never renamed; new
// rules may be added. The catalogue is documented in sqlrisk/RULES.md, which
// is generated from this package and checked by its tests.
//
// The package is pure and small on purpose: approvals/policy imports it to
// validate rule overrides without pulling in the SQL parsers.
package rule
