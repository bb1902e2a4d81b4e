// Package redis classifies Redis commands by effect from their argument
// vector and a command table (name, subcommand, arity, effect category).
// No Go library provides such a table — go-redis builds commands but does
// not describe them, and COMMAND DOCS would have to be asked of a live
// server, which a pure classifier must not do — so the table is written by
// hand from the Redis command reference (Redis 7.x and 8.0 core commands).
//
// Unknown commands and subcommands, including module commands, and calls
// with the wrong number of arguments are command.unknown, high risk: they
// are never allowed silently. CONFIG SET is judged per parameter (dir,
// dbfilename, logfile and the append-only file names reach the file system)
// and REPLICAOF/SLAVEOF by their arguments (NO ONE stops replication, a host
// makes the server connect out and load another server's data).
//
// Redacted is the command line with secret arguments masked; see Redact.
package redis
