// Package transport is the I/O every Airlock engine shares: the accept loop
// with its admission control (Server), and the buffered read and write seam
// of a session's sockets (Reader, Writer).
//
// Engines do all their socket I/O through this package so that the data path
// (a goroutine per connection today, perhaps an event loop per core later)
// changes here alone. Engines see connections, frames and lines, never how
// the bytes were waited for.
//
// # Accepting
//
// Server.Serve runs a handler per connection on its own goroutine. Until the
// handler calls Admission.Authenticated, its connection counts against a cap
// of unauthenticated connections and carries a handshake deadline; when the
// cap is reached the oldest unauthenticated connection is closed to make
// room, so a flood of silent connections cannot keep a real client out.
// Temporary accept errors (a full file table among them) are retried with
// the backoff net/http's Server uses, and never end the loop.
//
// # Concurrency contract
//
// A Server's Serve runs once; Wait may be called after Serve has returned,
// and returns when every handler has. Admission.Authenticated is safe to
// call from any goroutine, any number of times.
//
// A Reader is owned by one goroutine, the one that reads the socket: its
// frames and lines are views into its buffer, valid until that goroutine's
// next call. A Writer is not safe for concurrent use either; when more than
// one goroutine answers a client (the relay and a shutdown notice, say), the
// engine guards the Writer with its own lock.
//
// # Why by hand
//
// bufio.Reader has no framed read: reading a length-prefixed frame as a view
// takes a Peek of the header, a Peek of the frame and a Discard, each checking
// the buffer again, and a frame larger than the buffer needs a second buffer
// bufio does not keep. Reader.Next checks the buffer once for the header and
// once for the frame, and keeps a side buffer for large frames, which it
// drops again when it is big. The Writer
// wraps bufio.Writer, which already does what a session needs, and adds the
// pooling.
package transport
