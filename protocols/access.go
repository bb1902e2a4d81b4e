package protocols

import (
	"context"
	"time"
)

// AccessGrant is an access request a reviewer approved: for a bounded
// time, one caller's commands on one connection are judged by the
// connection's policy with the grant's overlay on top.
type AccessGrant struct {
	ID         string
	Identity   string
	Connection string
	// Ends is when the grant stops applying.
	Ends time.Time
	// Overlay is the compiled overlay, opaque outside the policy that
	// made it (a GrantPolicy reads it).
	Overlay any
}

// AccessGrants yields the access grant in force for a caller on a
// connection. Check asks it for every command, so an implementation
// answers from memory.
type AccessGrants interface {
	// Version changes whenever the grants may have changed: a caller may
	// keep an answer of Lookup while Version stays the same, checking
	// only the grant's end. It is never 0.
	Version() uint64
	// Lookup returns the grant of identity on connection that is in force
	// at now, or nil.
	Lookup(connection, identity string, now time.Time) *AccessGrant
	// Used notes, once per session and grant, that a session's commands
	// were decided under the grant. It never blocks.
	Used(g *AccessGrant, s SessionInfo)
}

// GrantPolicy is a Policy that can decide with an access grant's overlay
// on top of itself.
type GrantPolicy interface {
	Policy
	// DecideGranted decides as Decide does, with g's overlay applied; an
	// overlay it did not make leaves the decision Decide's.
	DecideGranted(id Identity, c *Classification, g *AccessGrant) Decision
}

// Enforcer is a Policy that may be in audit mode for some callers: their
// decisions are recorded and counted but not enforced.
type Enforcer interface {
	// Enforces reports whether id's commands are refused and held as the
	// policy decides (false: audit mode).
	Enforces(id Identity) bool
}

// Preview is a blast-radius preview: what a command held for review would
// touch, estimated before a reviewer decides, without running it.
type Preview struct {
	// Status is ok (every statement could be estimated), partial (some
	// could), failed, timeout or skipped (nothing could be estimated
	// safely, Note says why).
	Status string `json:"status"`
	// Note says what failed or why the preview was skipped.
	Note string `json:"note,omitempty"`
	// Effects has one entry per statement or object the command touches.
	Effects []PreviewEffect `json:"effects,omitempty"`
	// Elapsed is how long the preview took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Preview statuses.
const (
	PreviewOK      = "ok"
	PreviewPartial = "partial"
	PreviewFailed  = "failed"
	PreviewTimeout = "timeout"
	PreviewSkipped = "skipped"
)

// PreviewEffect is what one statement of a command would touch.
type PreviewEffect struct {
	// Statement is the statement's position in the command, from 1.
	Statement int `json:"statement"`
	// Kind is the statement's kind: update, delete, insert, replace, merge,
	// drop, truncate, alter or rename.
	Kind string `json:"kind"`
	// Object is the table (or other object) affected, as the server names it.
	Object string `json:"object,omitempty"`
	// ObjectType is what Object is: table, view, materialized view, index,
	// sequence, partitioned table, foreign table, or another catalog kind.
	ObjectType string `json:"object_type,omitempty"`
	// EstimatedRows is the planner's estimate of the rows a write affects
	// (EXPLAIN, never run), or the catalog's estimate of an object's rows.
	EstimatedRows *int64 `json:"estimated_rows,omitempty"`
	// ExactRows is the exact count of rows a write would affect, from a
	// read-only query derived from the statement (preview.exact_count).
	ExactRows *int64 `json:"exact_rows,omitempty"`
	// Bytes is the object's size on disk with its indexes and TOAST.
	Bytes *int64 `json:"bytes,omitempty"`
	// Dependents name the objects that depend on Object (views, foreign
	// keys of other tables), at most a few dozen.
	Dependents []string `json:"dependents,omitempty"`
	// Note says what could not be estimated and why.
	Note string `json:"note,omitempty"`
}

// PreviewOptions tune one preview.
type PreviewOptions struct {
	// ExactCount asks for the exact number of rows a write would affect,
	// counted with a read-only query derived from the statement.
	ExactCount bool
}

// Previewer makes blast-radius previews for one protocol's connections
// (the PostgreSQL and MySQL engines do).
type Previewer interface {
	// Preview estimates what cmd would touch on conn without running it.
	// It returns nil for a command it has nothing to say about (a read),
	// and otherwise a Preview whose Status says how far it got; it
	// returns once ctx ends, with status timeout.
	Preview(ctx context.Context, conn *Connection, cmd *Command, cls *Classification, o PreviewOptions) *Preview
}
