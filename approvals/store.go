package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store errors, checked with errors.Is.
var (
	// ErrNotFound means no request has that id (or none matched).
	ErrNotFound = errors.New("approval request not found")
	// ErrNotPending means the request is no longer open for the change; the
	// error is a *StateError that says which state it is in.
	ErrNotPending = errors.New("approval request is not pending")
	// ErrAlreadyVoted means this reviewer has already decided the request.
	ErrAlreadyVoted = errors.New("reviewer has already decided this request")
)

// StateError reports a change refused because of the request's state.
type StateError struct {
	ID     string
	Status Status
}

// Error implements error.
func (e *StateError) Error() string {
	switch e.Status {
	case StatusExpired:
		return fmt.Sprintf("approval request %s has expired", e.ID)
	case StatusCancelled:
		return fmt.Sprintf("approval request %s was cancelled (the session ended)", e.ID)
	case StatusConsumed:
		return fmt.Sprintf("approval request %s was approved and its command has run", e.ID)
	default:
		return fmt.Sprintf("approval request %s is already %s", e.ID, e.Status)
	}
}

// Is makes errors.Is(err, ErrNotPending) true.
func (e *StateError) Is(target error) bool { return target == ErrNotPending }

// Key identifies the command an approval applies to: who, where and what.
type Key struct {
	Identity   string
	Connection string
	// Hash is the hex SHA-256 of the exact command.
	Hash string
}

// Filter selects requests for List.
type Filter struct {
	// Statuses to include; empty means all.
	Statuses []Status
	// Limit caps the result (newest first); 0 means 100.
	Limit int
}

// Store persists approval requests. Every method that changes a request is
// atomic and conditional on its current state, and is durable when it
// returns. Implementations are safe for concurrent use by several goroutines
// and, for shared stores, several processes.
type Store interface {
	// Create inserts a new pending request.
	Create(ctx context.Context, r *Request) error
	// CreateRetry inserts r unless a pending retry-mode request for the same
	// Key exists and has not expired at now; it returns the request that is
	// now pending and whether it is r.
	CreateRetry(ctx context.Context, r *Request, now time.Time) (*Request, bool, error)
	// Get returns the request with its decisions, or ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// List returns requests newest first.
	List(ctx context.Context, f Filter) ([]*Request, error)
	// Vote records one reviewer's decision on a pending request: a deny
	// decides at once, approvals decide when Required distinct reviewers
	// approved. A request whose time is up is marked expired instead and a
	// *StateError returned; so is any request that is not pending.
	Vote(ctx context.Context, id string, v Vote, now time.Time) (*Request, error)
	// Consume marks the approved request id consumed, once.
	Consume(ctx context.Context, id string, now time.Time) (*Request, error)
	// ConsumeMatch consumes one approved, still valid retry-mode request for
	// k, once, or returns ErrNotFound.
	ConsumeMatch(ctx context.Context, k Key, now time.Time) (*Request, error)
	// Finish moves request id from one of the states in from to the final
	// state to (expired or cancelled).
	Finish(ctx context.Context, id string, to Status, from []Status, now time.Time) (*Request, error)
	// ExpireReplica expires the hold-mode requests that replica left pending
	// or approved but unconsumed: their sessions died with its previous life.
	ExpireReplica(ctx context.Context, replica string, now time.Time) ([]*Request, error)
	// Sweep expires pending requests past their deadline and approvals past
	// their validity, and deletes resolved requests created before
	// purgeBefore. It returns the requests it expired.
	Sweep(ctx context.Context, now, purgeBefore time.Time) ([]*Request, error)
	// CountPending returns the number of pending requests.
	CountPending(ctx context.Context) (int, error)
	// Watch calls fn with the id of each request changed by any process
	// sharing the store, until ctx ends. fn("") means changes may have been
	// missed and every waiter should look again.
	Watch(ctx context.Context, fn func(id string)) error
}
