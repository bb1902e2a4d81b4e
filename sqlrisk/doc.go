// Package sqlrisk classifies the risk of a database command from a real
// parse tree, by effect, and fails closed.
//
// Keyword and regular-expression filters over raw text are walked past with
// a comment, a CTE or a second statement. sqlrisk parses each command with
// the engine's own grammar and judges what it would do:
//
//   - PostgreSQL through pg_query (the server's parser; package postgres),
//   - MySQL and MariaDB through the TiDB parser (package mysql),
//   - Redis through a hand-built command table (package redis).
//
// Every statement of a multi-statement text is classified and the worst one
// wins. Each finding is a stable, dotted rule id with a fixed risk, from
// none (a read) to critical (reach beyond the database: files, programs,
// the network, native code); the catalogue is in RULES.md and in package
// rule. Text that cannot be parsed is high risk (parse.error), never
// allowed silently; empty text is risk none.
//
// Classifier implements protocols.Classifier: it dispatches a Command by its
// Protocol to an Analyzer (the seam where another parsing engine can replace
// a default one) through a bounded, concurrency-safe Cache keyed by protocol
// and exact text, so that prepared statements and ORMs that repeat text cost
// a map lookup. A second cache keyed by shape (the text with its numeric
// literals replaced) serves statements that differ only in numbers, such as
// those of pgbench or an ORM that inlines ids, but only when the analyzer
// vouches that the judgement read no literal's value (a WHERE folded from
// constants never qualifies). Classification.Redacted is the command text with secret
// literals (passwords, connection strings, AUTH arguments) replaced, found
// by token positions from each engine's scanner.
//
// RunJSONL is the core of `airlock classify`.
//
// The package is pure: it sees no connection and imports no protocol
// engine.
package sqlrisk
