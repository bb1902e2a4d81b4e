package approvals

import (
	"context"
	"fmt"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// AccessFilter selects access requests for ListAccess.
type AccessFilter struct {
	// Statuses to include; empty means all.
	Statuses []AccessStatus
	// Identity and Connection, when set, select one caller or connection.
	Identity, Connection string
	// Limit caps the result (newest first); 0 means 100.
	Limit int
}

// AccessStateError reports a change refused because of the access
// request's state; errors.Is(err, ErrNotPending) holds.
type AccessStateError struct {
	ID     string
	Status AccessStatus
}

// Error implements error.
func (e *AccessStateError) Error() string {
	return fmt.Sprintf("access request %s is %s", e.ID, e.Status)
}

// Is makes errors.Is(err, ErrNotPending) true.
func (e *AccessStateError) Is(target error) bool { return target == ErrNotPending }

// GrantUse is a session whose commands were decided under a grant.
type GrantUse struct {
	Grant   string
	Session string
	First   time.Time
}

// AccessStore persists access requests and the grants they become. Like
// Store, every change is atomic, conditional on the current state and
// durable on return, and is announced to every process sharing the store
// through Store.Watch as the id "access:" followed by the request's id.
type AccessStore interface {
	// CreateAccess inserts a pending request unless its caller already has
	// one pending or active on its connection at now (ErrAccessHeld).
	CreateAccess(ctx context.Context, r *AccessRequest, now time.Time) error
	// GetAccess returns a request with its decisions, or ErrNotFound.
	GetAccess(ctx context.Context, id string) (*AccessRequest, error)
	// ListAccess returns requests newest first.
	ListAccess(ctx context.Context, f AccessFilter) ([]*AccessRequest, error)
	// VoteAccess records a reviewer's decision on a pending request: a deny
	// decides at once; with Required approvals the grant is active from
	// now for its duration. A request out of time is expired instead and
	// an *AccessStateError returned.
	VoteAccess(ctx context.Context, id string, v Vote, now time.Time) (*AccessRequest, error)
	// RevokeAccess ends a pending request or an active grant.
	RevokeAccess(ctx context.Context, id, by, reason string, now time.Time) (*AccessRequest, error)
	// SweepAccess expires pending requests past their deadline and ends
	// grants past their window, returning them, and deletes requests
	// resolved before purgeBefore.
	SweepAccess(ctx context.Context, now, purgeBefore time.Time) ([]*AccessRequest, error)
	// ActiveGrants returns the grants in force at now.
	ActiveGrants(ctx context.Context, now time.Time) ([]*AccessRequest, error)
	// NoteGrantUse records that session s's commands were decided under
	// grant id (once per pair).
	NoteGrantUse(ctx context.Context, id string, s protocols.SessionInfo, at time.Time) error
	// GrantUses returns the grants each of the sessions used.
	GrantUses(ctx context.Context, sessions []string) (map[string][]string, error)
	// GrantSessions returns the sessions that used grant id.
	GrantSessions(ctx context.Context, id string) ([]GrantUse, error)
}

// accessNotice is the Watch id announcing a change of access request id.
const accessNotice = "access:"
