package protocols

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Protocol names the wire protocol a command arrived on.
type Protocol string

// The protocols Airlock speaks.
const (
	Postgres Protocol = "postgres"
	MySQL    Protocol = "mysql"
	Redis    Protocol = "redis"
	HTTP     Protocol = "http"
)

// Identity is an authenticated caller: a named person or machine with groups.
type Identity struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
	// Method says how the caller proved who they are: "token" or "oidc".
	Method string `json:"method,omitempty"`
}

// InGroup reports whether the identity belongs to group g.
func (id Identity) InGroup(g string) bool { return slices.Contains(id.Groups, g) }

// Principals is a list of identity names and groups that something is granted
// to. An entry "group:NAME" matches members of NAME, "*" matches any
// authenticated caller, and any other entry matches the identity of that name.
type Principals []string

// Match reports whether id is one of the principals.
func (p Principals) Match(id Identity) bool {
	for _, e := range p {
		switch {
		case e == "*":
			return true
		case strings.HasPrefix(e, "group:"):
			if id.InGroup(strings.TrimPrefix(e, "group:")) {
				return true
			}
		case e == id.Name:
			return true
		}
	}
	return false
}

// Risk is how much harm a command can do, from none (a read) to critical
// (reach beyond the database: files, programs, the network).
type Risk uint8

// Risk levels, ordered: a larger value is worse.
const (
	RiskNone Risk = iota
	RiskLow
	RiskMedium
	RiskHigh
	RiskCritical
)

var riskNames = [...]string{"none", "low", "medium", "high", "critical"}

// String returns the lower-case name used in config, JSON and metric labels.
func (r Risk) String() string {
	if int(r) < len(riskNames) {
		return riskNames[r]
	}
	return fmt.Sprintf("risk(%d)", uint8(r))
}

// ParseRisk parses a risk name as written by String.
func ParseRisk(s string) (Risk, error) {
	for i, n := range riskNames {
		if n == s {
			return Risk(i), nil
		}
	}
	return 0, fmt.Errorf("unknown risk %q (want one of %s)", s, strings.Join(riskNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (r Risk) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Risk) UnmarshalText(b []byte) error {
	v, err := ParseRisk(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Action is what Airlock does with a command.
type Action string

// The three actions a policy can choose.
const (
	Allow  Action = "allow"
	Review Action = "review"
	Deny   Action = "deny"
)

// ParseAction parses "allow", "review" or "deny".
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case Allow, Review, Deny:
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q (want allow, review or deny)", s)
}

// Statement describes one statement of a classified command.
type Statement struct {
	Kind   string   `json:"kind"`
	Tables []string `json:"tables"`
}

// Classification is the classifier's verdict on one command. Values may be
// shared through a cache: treat them as immutable.
type Classification struct {
	Risk Risk `json:"risk"`
	// Rules are stable rule ids (e.g. "schema.drop") explaining Risk, sorted.
	Rules      []string    `json:"rules"`
	Statements []Statement `json:"statements"`
	// Prepares and Executes name the SQL-level prepared statements the
	// command creates (PREPARE) and runs (EXECUTE, EXPLAIN ANALYZE EXECUTE,
	// CREATE TABLE … AS EXECUTE), as the server will see the names.
	Prepares []string `json:"prepares,omitempty"`
	Executes []string `json:"executes,omitempty"`
	// Redacted is the command text safe to show, log and record: secret
	// literals (passwords, AUTH tokens) replaced. It equals the original text
	// when there was nothing to redact.
	Redacted string `json:"-"`
}

// Command is one client request decoded from the wire, or made by a
// frontend (the agent API, the MCP endpoint) for a connection. Who sent it,
// on which connection and in which session is the session's to say: a
// command carries only what it asks.
type Command struct {
	Protocol Protocol
	// Text is the statement text (SQL) or, for HTTP, "METHOD /path".
	Text string
	// Args is the argument vector of a Redis command (Args[0] is its name).
	Args []string
	// Kind says which protocol message carried the command, e.g. "query",
	// "parse", "copy"; it is informative only.
	Kind string
	// Payload is the structured part of a command that is more than text:
	// an MCP tool call or an HTTP request. nil for wire commands.
	Payload *Payload
}

// Payload is a command's structured content. An MCP tool call sets Tool and
// Arguments; an HTTP request sets Method, Path and Body (Text then reads
// "METHOD /path").
type Payload struct {
	Tool      string `json:"tool,omitempty"`
	Arguments []byte `json:"arguments,omitempty"` // JSON
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	Body      []byte `json:"body,omitempty"`
}

// Hash returns the SHA-256 of the exact command: its protocol and text, or
// its arguments for Redis, and its payload. Approvals match retried
// commands by this hash.
func (c *Command) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(c.Protocol))
	h.Write([]byte{0})
	if len(c.Args) > 0 {
		// Length-prefix each argument so ["a b"] and ["a","b"] differ.
		for _, a := range c.Args {
			fmt.Fprintf(h, "%d:", len(a))
			h.Write([]byte(a))
		}
	} else {
		h.Write([]byte(c.Text))
	}
	if p := c.Payload; p != nil {
		for _, f := range [][]byte{[]byte(p.Tool), p.Arguments, []byte(p.Method), []byte(p.Path), p.Body} {
			fmt.Fprintf(h, "|%d:", len(f))
			h.Write(f)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Decision is the Pipeline's verdict on a command.
type Decision struct {
	Action Action   `json:"action"`
	Risk   Risk     `json:"risk"`
	Rules  []string `json:"rules,omitempty"`
	// Reason is a human sentence for a refusal (deny or unapproved review).
	Reason     string `json:"reason,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
	Reviewer   string `json:"reviewer,omitempty"`
	// Grant is the id of the access grant in force for the caller when the
	// command was decided: its overlay was applied to the policy.
	Grant string `json:"grant,omitempty"`
	// PolicyAction is the policy's own action when the final Action differs
	// from it: review, then allow (approved) or deny; or any action not
	// enforced in audit mode. Empty when Action is the policy's.
	PolicyAction Action `json:"policy_action,omitempty"`
	// Audit marks a decision of audit mode (enforce: false): the policy's
	// action was recorded and counted but not enforced, and Action is allow.
	Audit bool `json:"audit,omitempty"`
	// Preview is what the command would touch, estimated for its reviewers
	// before they decided; nil when none was made.
	Preview *Preview `json:"preview,omitempty"`
}

// Verdict is the action the policy chose for the command, before review
// or audit mode changed it.
func (d *Decision) Verdict() Action {
	if d.PolicyAction != "" {
		return d.PolicyAction
	}
	return d.Action
}

// LogValue implements slog.LogValuer.
func (d Decision) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("action", string(d.Action)),
		slog.String("risk", d.Risk.String()),
		slog.Any("rules", d.Rules),
		slog.String("approval", d.ApprovalID),
		slog.String("grant", d.Grant),
		slog.Bool("audit", d.Audit),
	)
}

// Secret is a string that never prints: upstream passwords and keys are held
// in it so that a stray %v, log attribute or JSON encoding shows a placeholder.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "[secret]" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return "[secret]" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[secret]") }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal("[secret]") }

// Reveal returns the secret's value, for the one place that must use it.
func (s Secret) Reveal() string { return string(s) }

// SessionInfo describes one client session for recordings and approvals.
// Protocol also names the dialect of the native types its recording holds
// (Column.Native, Param.Native).
type SessionInfo struct {
	ID         string    `json:"id"`
	Protocol   Protocol  `json:"protocol"`
	Identity   Identity  `json:"identity"`
	Connection string    `json:"connection"`
	ClientAddr string    `json:"client_addr"`
	Start      time.Time `json:"start"`
}
