// Package mysql classifies MySQL and MariaDB commands by effect, from the
// parse tree of the TiDB SQL parser (github.com/pingcap/tidb/pkg/parser, a
// MySQL-compatible grammar in pure Go).
//
// A small hand-written scanner (lex.go) sits in front of the parser. It reads
// comments as the server does: the content of executable comments, MySQL's
// /*!NNNNN … */ and MariaDB's /*M!NNNNNN … */, is code whatever the version
// number (fail closed), while TiDB ignores the MariaDB form. It splits a
// multi-statement text at semicolons so that a statement the parser rejects
// does not hide the ones around it (the server runs them one by one), and it
// gives the byte positions used for redaction. Statements the TiDB grammar
// lacks (INSTALL PLUGIN, CREATE FUNCTION … SONAME, CREATE TRIGGER/EVENT,
// CHANGE MASTER, EXECUTE IMMEDIATE, SET PERSIST) count as parse.error plus
// the rule their leading keywords name.
//
// The session's sql_mode changes lexing: NO_BACKSLASH_ESCAPES and
// ANSI_QUOTES can move literal and statement boundaries. Airlock does not
// track the session's mode, so a text with backslashes or double quotes is
// classified under each reading and the worst wins.
//
// Optimizer hints are read for SET_VAR, which changes a variable for one
// statement (SET_VAR(foreign_key_checks=OFF)).
//
// Previews (preview.go, preview_write.go) derive, from a held write's own
// parse tree, the read-only SELECT a reviewer's blast-radius preview plans
// and counts (same FROM, joins and WHERE), and name the objects a DDL
// statement touches; CheckRead refuses anything derived that is not one
// plain read before it is sent.
//
// See sqlrisk/RULES.md for the rule catalogue.
package mysql
