package recording

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors of the writer.
var (
	// ErrRecordingFailed is wrapped by every Recorder error after a write
	// failed: the recording can no longer be trusted and the session must end.
	ErrRecordingFailed = errors.New("session recording failed")
	// ErrClosed is returned by a Recorder after Close and by a Factory after
	// its Close.
	ErrClosed = errors.New("recording closed")
	// ErrInvalidSessionID refuses a session id that cannot name a file safely.
	ErrInvalidSessionID = errors.New("invalid session id (want 1-128 letters, digits, '.', '_' or '-', not starting with '.')")
)

// Verification outcomes, wrapped by the reader's *FormatError.
var (
	// ErrAltered: bytes that were completely written do not match their
	// checksums, chain or signatures: the file was edited or damaged.
	ErrAltered = errors.New("recording altered")
	// ErrUnfinished: the file ends before its trailer, at or inside a block:
	// the writer stopped (crash, full disk) or the file was truncated.
	ErrUnfinished = errors.New("recording unfinished")
)

// FormatError locates what a reader found wrong with a recording.
type FormatError struct {
	// Kind is ErrAltered or ErrUnfinished.
	Kind error
	// Frame is the index of the first frame that could not be trusted or
	// read; -1 when the header itself is bad.
	Frame int64
	// Block counts the blocks before the bad one; Offset is the bad block's
	// (or the header's) byte offset in the file.
	Block  int
	Offset int64
	Reason string
}

// Error implements error.
func (e *FormatError) Error() string {
	kind := "altered"
	if e.Kind == ErrUnfinished {
		kind = "unfinished"
	}
	if e.Frame < 0 {
		return fmt.Sprintf("%s: header: %s", kind, e.Reason)
	}
	return fmt.Sprintf("%s: frame %d (block %d at byte %d): %s", kind, e.Frame, e.Block, e.Offset, e.Reason)
}

// Unwrap returns Kind, so errors.Is(err, ErrAltered) works.
func (e *FormatError) Unwrap() error { return e.Kind }

// failureReason maps a write error to the metric's reason label.
func failureReason(err error, otherwise string) string {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return reasonDiskFull
	}
	return otherwise
}
