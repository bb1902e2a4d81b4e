package recording

import (
	"context"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Index is where a Factory registers recordings so they can be listed,
// found by session id and pruned. session/index implements it over the SQL
// store; a Factory without one records all the same.
type Index interface {
	// Started registers a recording whose header is on disk. An error
	// refuses the session (its file is removed).
	Started(ctx context.Context, e Entry) error
	// Ended completes the entry once the recording is closed and, with
	// batched syncing, on disk: the factory then completes the entries of
	// a whole batch after its fsyncs (through EndedAll when the index is a
	// BatchIndex), so the index never says a recording ended before its
	// file is durable, and a batch shares one commit.
	Ended(ctx context.Context, e Entry) error
}

// BatchIndex is an Index that can complete many entries at once, in one
// transaction: at a thousand short sessions a second, one commit per
// session was the index's largest cost.
type BatchIndex interface {
	Index
	// EndedAll is Ended for each entry. An entry the index does not know
	// is reported without keeping the others from being completed.
	EndedAll(ctx context.Context, es []Entry) error
}

// DeferredIndex is a BatchIndex that can register a starting session after
// Open has returned, together with other starts, in one transaction (the
// SQLite index: with the next EndedAll, at most two seconds later, so a
// session that has ended by then is inserted whole). Waiting for its own
// commit was the largest cost of a short session's recording: each commit
// of one row wrote some six pages to SQLite's log, and the caller waited
// for it before the session could start (with pgbench -C, Airlock's CPU per
// connection with recording went from 490–550 µs to 375–415 µs without it).
type DeferredIndex interface {
	BatchIndex
	// StartedLater queues e and returns at once. If the index then refuses
	// e, refused is called, once, from another goroutine; the factory ends
	// that session at its next command. It reports false, having queued
	// nothing, while the index is failing or closed: the factory then
	// registers e with Started and refuses the session if that fails, so
	// that new sessions are refused for as long as the index cannot take
	// them. An entry queued before EndedAll or Ended is called is in the
	// index before they complete any entry.
	StartedLater(e Entry, refused func(error)) bool
}

// Entry describes one recording for the Index.
type Entry struct {
	Info protocols.SessionInfo
	// Path is the recording file, as the factory opened it.
	Path string
	// Node names the Airlock instance whose disk holds the file.
	Node string
	// End, EndReason, Frames and Bytes are set for Ended.
	End       time.Time
	EndReason string
	Frames    int64
	Bytes     int64
}
