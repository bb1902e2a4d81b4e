package approvals

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Status is the state of an approval request.
type Status string

// The states of a request. Pending is the only state a reviewer can change;
// approved becomes consumed when the command is forwarded. Every other state
// is final.
const (
	StatusPending   Status = "pending"
	StatusApproved  Status = "approved"
	StatusDenied    Status = "denied"
	StatusExpired   Status = "expired"
	StatusCancelled Status = "cancelled"
	StatusConsumed  Status = "consumed"
)

var statuses = []Status{StatusPending, StatusApproved, StatusDenied, StatusExpired, StatusCancelled, StatusConsumed}

// ParseStatus parses a status name.
func ParseStatus(s string) (Status, error) {
	for _, v := range statuses {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown status %q (want pending, approved, denied, expired, cancelled or consumed)", s)
}

// Mode is how a caller waits for an approval.
type Mode string

// The two ways to wait.
const (
	// ModeHold blocks the command on the wire until a reviewer decides.
	ModeHold Mode = "hold"
	// ModeRetry refuses the command at once; the identical command retried
	// after approval runs once.
	ModeRetry Mode = "retry"
)

// Verdict is one reviewer's answer.
type Verdict string

// Reviewer verdicts.
const (
	Approve Verdict = "approve"
	Reject  Verdict = "deny"
)

// Vote is one reviewer's decision on a request.
type Vote struct {
	Reviewer string    `json:"reviewer"`
	Verdict  Verdict   `json:"decision"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// Request is one command waiting for, or resolved by, human approval.
type Request struct {
	ID       string             `json:"id"`
	Status   Status             `json:"status"`
	Mode     Mode               `json:"mode"`
	Identity protocols.Identity `json:"identity"`
	// Connection and Protocol name the route the command arrived on.
	Connection string             `json:"connection"`
	Protocol   protocols.Protocol `json:"protocol"`
	SessionID  string             `json:"session_id"`
	ClientAddr string             `json:"client_addr,omitempty"`
	// Replica is the Airlock process that created the request (and, in hold
	// mode, holds the session).
	Replica string `json:"replica"`
	// Command is the redacted command text: safe to show reviewers, never
	// the original when it held a secret.
	Command string `json:"command"`
	// CommandSHA256 is the hex SHA-256 of the exact command
	// (protocols.Command.Hash): an approval applies to that command only.
	CommandSHA256 string         `json:"command_sha256"`
	Risk          protocols.Risk `json:"risk"`
	Rules         []string       `json:"rules"`
	// Required is the number of distinct approving reviewers needed.
	Required int `json:"required"`
	// Validity is how long an approval in retry mode stays usable.
	Validity   time.Duration `json:"-"`
	CreatedAt  time.Time     `json:"created_at"`
	ExpiresAt  time.Time     `json:"expires_at"`
	DecidedAt  time.Time     `json:"decided_at,omitzero"`
	ValidUntil time.Time     `json:"valid_until,omitzero"`
	ConsumedAt time.Time     `json:"consumed_at,omitzero"`
	Decisions  []Vote        `json:"decisions"`
	// Preview is what the command would touch, estimated when the
	// request was made (a blast-radius preview); nil when none was made.
	Preview *protocols.Preview `json:"preview,omitempty"`
}

// Approvers returns the names of the reviewers who approved, in order.
func (r *Request) Approvers() []string {
	var out []string
	for _, v := range r.Decisions {
		if v.Verdict == Approve {
			out = append(out, v.Reviewer)
		}
	}
	return out
}

// Denial returns the deciding deny vote, if any.
func (r *Request) Denial() (Vote, bool) {
	for _, v := range r.Decisions {
		if v.Verdict == Reject {
			return v, true
		}
	}
	return Vote{}, false
}

// Final reports whether no reviewer can change the request any more.
func (r *Request) Final() bool { return r.Status != StatusPending }

// idLen is the length of a request id: 15 random bytes (120 bits) in
// lower-case base32, short enough to type and never guessable.
const idLen = 24

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a fresh random request id.
func newID() string {
	var b [15]byte
	// crypto/rand.Read never fails (it crashes the program instead).
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of a request id. It lets the API
// answer 404 without a store round trip for garbage.
func ValidID(s string) bool {
	if len(s) != idLen {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") == ""
}
