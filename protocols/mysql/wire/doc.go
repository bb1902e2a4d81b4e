// Package wire is the MySQL client/server protocol as Airlock's MySQL engine
// needs it: packet framing, the connection phase on both sides (Airlock as
// the server its callers log in to, and as the client of the upstream), the
// client commands it must inspect, and the server responses it must read or
// rewrite (OK, ERR, EOF, column definitions, text and binary rows).
//
// The protocol is specified by MySQL at
// https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html and,
// for MariaDB's variant, at https://mariadb.com/kb/en/clientserver-protocol/.
//
// Constants, error codes and the password scramble functions come from
// github.com/go-mysql-org/go-mysql/mysql. Its packet, client and server
// packages are not used: they own the connection (a packet.Conn with its own
// read-ahead buffer, no bound on a payload's size and no raw frame to relay),
// decide the capability flags themselves and expose neither the negotiated
// set nor the status, and its server authenticates only against clear
// passwords it holds. Airlock relays packets raw after the handshake, so it
// must control every flag both sessions agree on and must hand over sockets
// with nothing read ahead; each hand-written piece below says which of these
// reasons applies.
//
// Everything here is pure (bytes in, bytes or structs out) except ReadPacket,
// WritePacket, PacketReader and Dial, which do I/O on what they are given.
// Nothing keeps goroutines or shared state: a PacketReader and a ServerAuth
// belong to one connection and one goroutine at a time.
//
// Capabilities: the engine relays the command phase byte for byte, so the
// flags that shape it (RelayCapabilities) must be equal on the client's and
// the upstream's session. The greeting offers clients only what the upstream
// offers (ClientCapabilities), the upstream is asked for what the client then
// chose (DialConfig.Capabilities), and CheckRelay confirms the two agree.
// Airlock always presents itself as MySQL (CLIENT_LONG_PASSWORD set), so
// MariaDB clients do not negotiate MariaDB's extended capabilities, and it
// never requests them upstream either.
package wire
