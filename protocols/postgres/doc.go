// Package postgres is Airlock's PostgreSQL engine: it accepts psql, libpq,
// pgx and JDBC clients on the PostgreSQL frontend/backend protocol v3
// (https://www.postgresql.org/docs/current/protocol.html), authenticates the
// caller, dials the upstream with the credentials Airlock holds, and relays
// the session, passing every statement through the protocols.Pipeline.
//
// Messages are decoded with github.com/jackc/pgx/v5/pgproto3 and the upstream
// is dialled and authenticated with pgconn (trust, md5, SCRAM-SHA-256, TLS),
// then hijacked: from there on Airlock relays raw frames and re-encodes only
// what it must change (a masked DataRow, a refusal).
//
// Concurrency contract: each session runs two goroutines. The client reader
// owns the client socket's read side and the upstream socket's write side:
// it decodes client messages, runs Pipeline.Check (which may block while a
// command waits for approval) and forwards. The upstream reader owns the
// upstream socket's read side and writes results to the client. The client
// socket's write side is shared (results from the upstream reader, approval
// notices from the client reader) and guarded by a mutex. The two goroutines
// also share the queue of responses the upstream still owes (pending), which
// tells the upstream reader which statement a RowDescription or DataRow
// belongs to and which upstream error stands for a refused command.
//
// Refusals keep the protocol's own ordering: a refused statement is replaced
// upstream by one that fails to parse, and the upstream's syntax error is
// rewritten into Airlock's refusal. The client therefore sees its error at
// the right place in a pipeline, the upstream skips to the next Sync exactly
// as PostgreSQL would, and an open transaction fails the way it would have
// failed had the server itself refused the statement.
package postgres
