// Package mysql is Airlock's MySQL engine: it accepts mysql, mariadb,
// go-sql-driver, mysql2 and JDBC clients on the MySQL client/server
// protocol (https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html,
// MariaDB's variant at https://mariadb.com/kb/en/clientserver-protocol/),
// authenticates the caller, logs in to the upstream with the credentials
// Airlock holds, and relays the session, passing every command through the
// session flow (package session). The protocol's codec is the wire
// subpackage; this package is the connection loop.
//
// Authentication: the caller's user is its Airlock identity, its password
// a token or an OIDC JWT, its database the connection's name. Airlock
// greets with caching_sha2_password; a static token, stored only as its
// SHA-256, is verified from the fast path's scramble (session.Caller.Proof)
// and so never crosses the network. Any other secret needs full
// authentication, which Airlock accepts over TLS, or on loopback (where it
// also serves the RSA key exchange). The upstream is logged in to with the
// flags the client chose, so that the command phase can be relayed packet
// for packet.
//
// Concurrency contract: each session runs two goroutines. The client
// reader owns the client socket's read side and writes commands upstream:
// it decodes each command, runs Session.Check (which may block while a
// command waits for approval) and forwards the command's original packets.
// The upstream reader owns the upstream socket's read side and writes
// responses to the client; rows go through the flow's Results (mask,
// record, forward). The client's write side is shared (responses, and
// Airlock's own answers to refused commands) and guarded by a mutex; so is
// the upstream's write side (commands, and the upstream reader's refusal
// of a file request). The two share the queue of responses owed (pending),
// which tells the upstream reader the shape of what it reads and orders
// Airlock's own answers after the responses owed before them, and the
// prepared statements, which the upstream reader learns from PREPARE_OK
// before the client can name them.
//
// Connection ids: the greeting, which comes before the caller says who it
// is or which connection it wants, carries an id of Airlock's own; KILL
// and COM_PROCESS_KILL are routed by Airlock's table, by that id or by the
// upstream's (what CONNECTION_ID() returns), to the caller's own sessions
// only, and never reach the upstream as written.
package mysql
