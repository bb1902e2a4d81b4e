// Package redis is Airlock's Redis engine: it accepts redis-cli, go-redis,
// rueidis, redis-py and node-redis clients on RESP2 and RESP3
// (https://redis.io/docs/latest/develop/reference/protocol-spec/),
// authenticates the caller with AUTH or HELLO … AUTH, dials the upstream
// with the credentials Airlock holds, and relays the session, passing every
// command through the session flow (classify, policy, approval, record) and
// every reply through masking and the recording.
//
// The wire is read and written with the package's own codec (resp), not
// with go-redis: go-redis reads each reply whole into memory and keeps its
// socket to itself, while the gateway must relay a 100 MB value or a
// million-element array with bounded memory, keep the bytes as received,
// and take the socket over after its own handshake. The same codec dials
// the upstream for the agent frontends (Executor), so credentials, TLS and
// the database number are applied in one place.
//
// # Callers
//
// Redis has no database name in its handshake, so one listener serves every
// Redis connection and the user name chooses: AUTH <identity>@<connection>
// <token>. Without @connection the connection is the only Redis connection
// there is. A user name that is empty or "default" (AUTH <token>, which
// clients send as HELLO 3 AUTH default <token>) takes the connection's
// default_identity, or the identity the token belongs to. A JWT works
// wherever a token does.
//
// # Concurrency contract
//
// Each session runs two goroutines. The client reader owns the client
// socket's read side and the upstream socket's write side: it decodes
// commands, runs the session's Check (which may block while a command waits
// for approval) and forwards them. The upstream reader owns the upstream
// socket's read side: it decodes replies token by token, masks, records and
// relays them to the client. The two share the queue of replies the
// upstream still owes (pending), which tells the upstream reader what each
// reply answers, and the client socket's write side, guarded by a mutex
// that the upstream reader holds for the whole of each reply, so that a
// reply Airlock writes itself (a refusal, HELLO) never lands inside one
// from the upstream. The lock order is the writer's mutex, then the queue's.
//
// Replies Airlock writes itself keep their place in a pipeline: when the
// upstream still owes replies to earlier commands, the reply is queued and
// the upstream reader writes it once those are out.
package redis
