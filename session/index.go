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
	// Ended completes the entry when the recording closes.
	Ended(ctx context.Context, e Entry) error
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
