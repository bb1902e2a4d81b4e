// Package resp is Airlock's codec for the Redis serialization protocol,
// RESP2 and RESP3 (https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md,
// https://redis.io/docs/latest/develop/reference/protocol-spec/), as the
// gateway needs it between redis-cli, go-redis, rueidis, redis-py or Jedis
// on one side and a Redis server on the other.
//
// It is written by hand because no maintained Go library decodes the
// protocol from the server's side and streams replies: go-redis's proto
// reader is internal, client-side (it never reads inline commands) and
// buffers each reply whole, and the RESP3 libraries that exist either build
// a tree of values per reply or do not keep the bytes as received. The
// gateway needs three things none of them give at once: the exact bytes of
// every command and reply, so it can relay them unchanged; bounded memory
// for replies of any size; and Redis's own limits and error texts on the
// client side, so a client sees what a real Redis would have said.
//
// The package has three parts:
//
//   - RequestDecoder reads client commands, RESP arrays of bulk strings or
//     inline lines split as Redis's sdssplitargs splits them, and returns the
//     argument vector together with the command's raw bytes.
//   - ReplyDecoder is a pull decoder of server replies: every Next returns
//     one Token (a scalar, an aggregate's header, or a piece of a long bulk
//     string) with its raw bytes, and tells when a top-level reply, a push
//     message or an attribute is complete.
//   - The Append functions encode every type in either protocol version, for
//     the replies the gateway writes itself (HELLO, AUTH, refusals), and
//     AppendToken re-encodes a decoded scalar with a new payload, which is
//     how a masked value replaces the original.
//
// Memory: a RequestDecoder holds each command whole until the next call, up
// to RequestLimits (Redis, too, keeps a command's arguments in memory before
// running it), and grows its buffer only as bytes arrive, so a declared
// length costs nothing until it is sent. A ReplyDecoder holds at most one
// line or one chunk, whatever the size of the reply.
//
// Decoders read from a Reader, which *bufio.Reader satisfies. They are not
// safe for concurrent use: one goroutine owns a decoder and its Reader, and
// the slices a decoder returns are valid until its next call.
package resp
