package session

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
