// Package postgres classifies PostgreSQL commands by effect, from the parse
// tree of the server's own grammar (github.com/pganalyze/pg_query_go, the
// PostgreSQL 17 parser compiled in through cgo).
//
// Every statement of a simple-query string is classified and the worst one
// wins. The walker follows the whole tree generically, so function calls,
// data-modifying CTEs, sub-queries, rule actions, column defaults and
// policy expressions are found wherever they hide. Bodies are classified as
// if they ran: PREPARE, CREATE FUNCTION … LANGUAGE sql, PL/pgSQL functions
// and DO blocks (through pg_query's PL/pgSQL parser, every embedded statement
// and expression), and constant query text given to query_to_xml and the
// like. Plain EXPLAIN only plans its statement, so the statement's own
// effects (writes, DDL) do not count, but calls inside it do, because the
// planner may evaluate functions while folding constants. EXPLAIN ANALYZE
// runs the statement and counts in full.
//
// Literals, comments, dollar-quoted bodies and quoted identifiers are data to
// the parser, so SELECT 'DROP TABLE x' is a read. Because a session (or an
// old server) may run with standard_conforming_strings off, where a
// backslash escapes a quote and can move statement boundaries, text whose
// plain literals contain backslashes is also classified as such a server
// would read it, and the worse reading wins. Text containing NUL is rejected
// (parse.error): the server stops at NUL and the proxy must not guess.
//
// Secrets are redacted by token positions from pg_query's scanner, never by
// patterns over the raw text.
//
// See sqlrisk/RULES.md for the rule catalogue.
package postgres
