package protocols

import (
	"context"
	"errors"
	"time"
)

// Classifier turns a command into a Classification from a real parse tree.
// Implementations are safe for concurrent use and never fail: what they cannot
// parse they classify as high risk with rule "parse.error".
type Classifier interface {
	Classify(cmd *Command) *Classification
}

// Policy maps a classified command and its caller to an action. A connection
// holds one Policy; it already knows the connection's own overrides.
type Policy interface {
	Decide(id Identity, c *Classification) Decision
}

// ReviewRequest is a command the policy sent to review.
type ReviewRequest struct {
	Session        SessionInfo
	Command        *Command
	Classification *Classification
	Decision       Decision
	// Preview, when set, estimates what the command would touch without
	// running it (a blast-radius preview). An approver calls it at most
	// once, when it creates a request, with a ctx that bounds it; nil
	// means there is nothing to preview (a read).
	Preview func(ctx context.Context, o PreviewOptions) *Preview
}

// Approver resolves commands whose policy decision is review. It returns the
// final decision, Allow (approved) or Deny (denied, timed out, or refused
// until approved). In hold mode it calls notify once, at once, with a message
// for the client, then blocks until a reviewer decides, the request times out
// or ctx ends; in retry mode it returns without waiting. When ctx ends while
// waiting the request is cancelled and the error is ctx's.
type Approver interface {
	Review(ctx context.Context, req ReviewRequest, notify func(msg string)) (Decision, error)
}

// ValueType is the neutral family of a result column's type, enough for a
// masker to produce a replacement the client can still decode.
type ValueType uint8

// Value type families.
const (
	TypeOther  ValueType = iota // unknown: masked values become NULL
	TypeText                    // text, varchar, char, name, citext, xml, enums
	TypeJSON                    // json, jsonb
	TypeBytes                   // bytea, blobs
	TypeNumber                  // integers, numeric, floats
	TypeBool                    // boolean
	TypeTime                    // dates, times, timestamps, intervals
	TypeUUID                    // uuid
	TypeNet                     // inet, cidr, macaddr
	TypeArray                   // arrays of any element type (text form "{...}")
)

// Column describes one column of a result set.
type Column struct {
	Name string
	// Table is the source table, "schema.table", when the result metadata
	// says where the column came from; empty for expressions.
	Table string
	Type  ValueType
	// Binary is true when values travel in the protocol's binary format.
	// For TypeText, TypeJSON and TypeBytes the binary form is the raw bytes
	// after TextOffset; other binary values are opaque to the masker.
	Binary bool
	// TextOffset is the number of framing bytes before the text in each
	// binary value (Postgres jsonb's binary form starts with a version byte).
	TextOffset int
	// Native is the server's own type id in the session's protocol (a
	// PostgreSQL type OID, a MySQL column type), 0 when unknown. It is
	// opaque to everything but that protocol's engine and the replay, which
	// shows binary values as text with it.
	Native uint32
}

// Masker masks the values of one session's results. Plan is called once per
// result set; nil means no column needs work and rows pass untouched.
type Masker interface {
	Plan(cols []Column) RowMasker
	// Text masks free text such as error messages and notification
	// payloads; it returns the input itself when nothing changed.
	Text(b []byte) []byte
}

// ColumnRuler is a Masker that can say whether it masks columns by name or
// table (an engine then looks up where each column comes from, which costs
// a catalog query).
type ColumnRuler interface {
	HasColumnRules() bool
}

// RowMasker masks rows of one result set. MaskRow replaces entries of values
// (nil is NULL) with masked ones and reports whether any changed; replaced
// slices stay valid until the next call. A RowMasker is used by one goroutine.
type RowMasker interface {
	MaskRow(values [][]byte) bool
}

// MaskerSource yields the masker for one caller on a connection; nil when the
// caller is exempt or the connection masks nothing.
type MaskerSource interface {
	For(id Identity) Masker
}

// Result summarises one command's outcome for the recording.
type Result struct {
	Tag      string        `json:"tag,omitempty"`
	Rows     int64         `json:"rows"`
	Duration time.Duration `json:"duration"`
	// Error is the (masked) error message and Code its SQLSTATE or class.
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// Recorder writes one session's tamper-evident recording. Its methods are
// safe for concurrent use: an engine records commands from the goroutine
// reading the client and results from the goroutine reading the upstream. An
// error means the recording can no longer be trusted and the engine must end
// the session (fail closed).
type Recorder interface {
	// Command records a command by its redacted text, never the original.
	Command(cmd *Command, redacted string) error
	Decision(d Decision) error
	// Columns starts a result set; Row records one already-masked row of it.
	Columns(cols []Column) error
	Row(values [][]byte) error
	Result(r Result) error
	// Parameters records the parameter values a Bind gives portal, already
	// masked. Engines call it only when recording.parameters is on.
	Parameters(portal string, params []Param) error
	// Reply records one reply of a protocol whose results are not row
	// sets (Redis), already masked.
	Reply(r Reply) error
	// Exchange records one HTTP exchange, credentials removed and bodies
	// masked.
	Exchange(x Exchange) error
	// Close writes the session end and the trailer.
	Close(reason string) error
}

// ClockedRecorder is a Recorder that takes the time of a command, a result
// set's start and a result from a caller that has read the clock already
// (an engine reads it once per read from its socket). at is from
// time.Now; zero means now.
type ClockedRecorder interface {
	Recorder
	CommandAt(cmd *Command, redacted string, at time.Time) error
	ColumnsAt(cols []Column, at time.Time) error
	ResultAt(r Result, at time.Time) error
}

// Param is one bound parameter value as recorded. Value nil is NULL.
// Binary marks a value in the protocol's binary format. Withheld marks one
// that is not recorded (only its length, Omitted, is): a binary value of a
// caller whose values are masked, since masking reads text.
type Param struct {
	Value    []byte
	Binary   bool
	Withheld bool
	Omitted  int
	// Native is the parameter's type in the session's protocol (as
	// Column.Native), 0 when unknown; a replay shows a binary value of a
	// known type in its text form.
	Native uint32
}

// Reply is one reply of a protocol whose results are not row sets (Redis)
// as a recording keeps it.
type Reply struct {
	// Kind is the reply's type: simple, error, integer, bulk, null, bool,
	// double, bignum, verbatim, array, map, set or push.
	Kind string
	// Values are the reply's scalar values in order, masked: for an
	// aggregate its leaves, flattened (a map's keys and values alternate).
	// A recording may keep only the first few.
	Values [][]byte
	// Count is how many scalar values the reply had, more than len(Values)
	// when some were left out.
	Count int64
}

// Exchange is one HTTP request and its response as a recording keeps
// them: headers that carry credentials removed, bodies masked and cut to a
// sample.
type Exchange struct {
	Method string
	Path   string
	Status int
	// RequestHeaders and ResponseHeaders are in the order received.
	RequestHeaders  []Header
	ResponseHeaders []Header
	RequestBody     []byte
	ResponseBody    []byte
	// RequestBytes and ResponseBytes are the bodies' whole sizes.
	RequestBytes  int64
	ResponseBytes int64
}

// Header is one HTTP header field.
type Header struct {
	Name  string
	Value string
}

// RecorderFactory opens a Recorder for a new session. An error refuses the
// session: nothing runs unrecorded.
type RecorderFactory interface {
	Open(info SessionInfo) (Recorder, error)
}

// ErrAuthFailed is returned by an Authenticator for any bad name or secret;
// callers must not tell the client which one was wrong.
var ErrAuthFailed = errors.New("authentication failed")

// Authenticator proves a caller's identity from a name and a secret (a static
// token or an OIDC JWT).
type Authenticator interface {
	Authenticate(ctx context.Context, name, secret string) (Identity, error)
}

// Connection is a named route: one upstream, who may use it, its policy and
// its masking rules.
type Connection struct {
	Name     string
	Protocol Protocol
	// Description says what the connection is for, as the config gives it;
	// shown to agents choosing a connection, never its upstream.
	Description string
	Allow       Principals
	// DefaultIdentity is the identity of a caller whose protocol's login
	// gives a secret but no name (a Redis AUTH with only a token); empty
	// when the connection has none.
	DefaultIdentity string
	// Upstream is the connection's engine's own description of its
	// upstream and the credentials Airlock holds for it, as the engine
	// decoded it from the config; nothing else reads it.
	Upstream any
	Policy   Policy
	Masking  MaskerSource // may be nil: nothing masked
	// Classifier is the connection's own classifier of its protocol's
	// commands (an HTTP connection's route rules), used instead of the
	// gateway's; nil for the gateway's.
	Classifier Classifier
	// MaxSessions caps the connection's sessions at once, each of which
	// holds one upstream session: 0 is the protocol's default
	// (session.ConnectionCap), negative no cap.
	MaxSessions int
}
