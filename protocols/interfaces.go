package protocols

import (
	"context"
	"errors"
	"net"
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
	// OID is the server's type id (Postgres), 0 when unknown; with it a
	// replay shows binary values as text.
	OID uint32
}

// Masker masks the values of one session's results. Plan is called once per
// result set; nil means no column needs work and rows pass untouched.
type Masker interface {
	Plan(cols []Column) RowMasker
	// Text masks free text such as error messages and notification
	// payloads; it returns the input itself when nothing changed.
	Text(b []byte) []byte
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
	// Close writes the session end and the trailer.
	Close(reason string) error
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
	// OID is the PostgreSQL type of the parameter, 0 when unknown; a replay
	// shows a binary value of a known type in its text form.
	OID uint32
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

// UpstreamTLS says how Airlock secures its own connection to an upstream.
type UpstreamTLS struct {
	// Mode is disable, prefer, require or verify-full.
	Mode       string
	CAFile     string
	ServerName string
}

// Upstream is the service a connection points at and the credentials Airlock
// holds for it. The caller never sees them.
type Upstream struct {
	Address  string // host:port
	Database string
	User     string
	Password Secret
	TLS      UpstreamTLS
}

// Connection is a named route: one upstream, who may use it, its policy and
// its masking rules.
type Connection struct {
	Name     string
	Protocol Protocol
	Allow    Principals
	Upstream Upstream
	Policy   Policy
	Masking  MaskerSource // may be nil: nothing masked
}

// Engine serves one protocol on a listener until ctx ends.
type Engine interface {
	Protocol() Protocol
	Serve(ctx context.Context, ln net.Listener) error
}
