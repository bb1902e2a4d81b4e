// Package recording writes, reads, verifies and replays Airlock's session
// recordings: one append-only, hash-chained, compressed file per client
// session that proves who ran what, when, through which connection, what
// Airlock decided and what came back.
//
// The file format is specified in FORMAT.md beside this file. In short: a
// checksummed header (who, where, when, which protocol), then compressed
// blocks of length-prefixed frames (command, decision, columns, row, result,
// params, a Redis reply, an HTTP exchange, end). Every frame extends a SHA-256
// chain and carries four bytes of its link; every block ends with a
// checkpoint that carries the full chain head, and the file ends with a
// trailer. With an HMAC key both are signed, so an editor without
// the key can neither alter, drop, reorder nor truncate-and-reseal frames
// unnoticed.
//
// Writing: a Factory (protocols.RecorderFactory) opens one Recorder per
// session. A Recorder is safe for concurrent use: an engine records commands
// from the goroutine reading the client and rows from the goroutine reading
// the upstream; a mutex per session orders them. Frames are appended to a
// pooled in-memory block, sealed when it reaches the block size, when the
// factory's single ticker fires, or at Close, and handed to a short-lived
// per-session drain goroutine that compresses it with the factory's codec
// (S2 by default, or one shared zstd encoder) and writes it (at most a few blocks wait per session, so a slow
// disk slows its session instead of growing memory). An idle session holds
// no buffer, no goroutine and no encoder. Any write error is sticky: every
// later call fails with ErrRecordingFailed and the engine ends the session,
// because nothing may run unrecorded. The file is synced once, after
// Close: by default with the other sessions that ended within the same
// flush interval (Config.Sync), so that short sessions share journal
// commits. A process crash loses what was not yet written (at most the
// flush interval's frames and the few queued blocks); a power loss may also
// lose what the kernel had not yet written within about one interval of the
// end; either leaves whole, verifiable blocks before the loss.
//
// Recompress rewrites a finished recording with another codec (zstd, for
// long retention), re-chaining and re-sealing it, since the chain covers the
// header that names the codec.
//
// Reading: NewReader streams frames and checks the chain as it goes; Verify
// and VerifyFile summarise a file in a Report; Replay writes a readable
// transcript or, with JSON set, one JSON object per line.
//
// A PostgreSQL session is format version 1 (zstd) or 2 (s2); a session of any
// other protocol is version 3, whose reply and exchange frames and native
// type ids readers of the earlier versions must refuse rather than
// misread. A replay decodes binary values with pgx only in PostgreSQL
// recordings.
//
// Secrets never enter a recording: a command is recorded only by the
// redacted text the Pipeline passes, never Command.Text or Command.Args, and
// of a Command.Payload only the tool name, the method and the path without
// its query, never its arguments or body; the session header holds no token
// or upstream credential; rows, replies and bodies arrive masked. As a second
// line of defence the writer itself replaces the value of any HTTP header
// that carries a credential (Authorization, Cookie, Set-Cookie, X-Api-Key,
// names containing token, secret, password or api-key, ...) with
// "[removed]", drops the query of every recorded path and keeps at most
// MaxBodySample bytes of a body.
package recording
