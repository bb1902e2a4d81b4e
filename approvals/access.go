package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/protocols"
)

// AccessStatus is the state of an access request.
type AccessStatus string

// The states of an access request. A pending request becomes active when
// enough reviewers approve, denied when one denies, expired when nobody
// decides in time, revoked when its caller withdraws it. An active grant
// becomes ended when its window passes or revoked when a reviewer or its
// caller revokes it. Every state but pending and active is final.
const (
	AccessPending AccessStatus = "pending"
	AccessActive  AccessStatus = "active"
	AccessDenied  AccessStatus = "denied"
	AccessExpired AccessStatus = "expired"
	AccessEnded   AccessStatus = "ended"
	AccessRevoked AccessStatus = "revoked"
)

var accessStatuses = []AccessStatus{AccessPending, AccessActive, AccessDenied, AccessExpired, AccessEnded, AccessRevoked}

// ParseAccessStatus parses an access request status.
func ParseAccessStatus(s string) (AccessStatus, error) {
	for _, v := range accessStatuses {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown status %q (want pending, active, denied, expired, ended or revoked)", s)
}

// AccessRequest is a caller's request for elevated access to a connection
// for a bounded time, and, once approved, the grant.
type AccessRequest struct {
	ID         string             `json:"id"`
	Status     AccessStatus       `json:"status"`
	Identity   protocols.Identity `json:"identity"`
	Connection string             `json:"connection"`
	// Role names the configured role asked for; empty for a custom overlay.
	Role string `json:"role,omitempty"`
	// Overlay is what the grant changes in the connection's policy: the
	// role's overlay when the request was made, or the caller's own.
	Overlay policy.OverlayConfig `json:"overlay"`
	// Reason is the caller's justification.
	Reason string `json:"reason"`
	// Duration is the window asked for, counted from the approval.
	Duration Duration `json:"duration"`
	// Required is the number of distinct approving reviewers needed.
	Required int    `json:"required"`
	Replica  string `json:"replica"`
	// ExpiresAt is the deadline for a decision.
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// StartsAt and EndsAt bound an approved grant.
	StartsAt     time.Time `json:"starts_at,omitzero"`
	EndsAt       time.Time `json:"ends_at,omitzero"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokedBy    string    `json:"revoked_by,omitempty"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
	Decisions    []Vote    `json:"decisions"`
}

// Duration is a time.Duration written in JSON as Go writes it ("1h30m0s")
// and read from that or a number of seconds.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as 90m or 2h", b)
	}
	*d = Duration(v)
	return nil
}

// Approvers returns the names of the reviewers who approved, in order.
func (r *AccessRequest) Approvers() []string {
	var out []string
	for _, v := range r.Decisions {
		if v.Verdict == Approve {
			out = append(out, v.Reviewer)
		}
	}
	return out
}

// InForce reports whether the grant applies at now.
func (r *AccessRequest) InForce(now time.Time) bool {
	return r.Status == AccessActive && !now.Before(r.StartsAt) && now.Before(r.EndsAt)
}

// What describes what the request asks for: its role or its overlay.
func (r *AccessRequest) What() string {
	if r.Role != "" {
		return "role " + r.Role + " (" + r.Overlay.String() + ")"
	}
	return r.Overlay.String()
}

// AccessInput is what a caller asks for.
type AccessInput struct {
	Connection string                `json:"connection"`
	Role       string                `json:"role,omitempty"`
	Overlay    *policy.OverlayConfig `json:"overlay,omitempty"`
	Duration   Duration              `json:"duration,omitempty"`
	Reason     string                `json:"reason"`
}

// Access errors, checked with errors.Is.
var (
	// ErrBadRequest means the access request is malformed or asks for
	// what the connection does not offer.
	ErrBadRequest = errors.New("bad access request")
	// ErrAccessHeld means the caller already has a pending request or an
	// active grant on the connection.
	ErrAccessHeld = errors.New("an access request or grant is already open")
)

// RequestAccess records caller's request for access, validated against
// the connection's access settings, and announces it to reviewers.
func (s *Service) RequestAccess(ctx context.Context, caller protocols.Identity, in AccessInput) (*AccessRequest, error) {
	if caller.Name == "" {
		return nil, fmt.Errorf("%w: anonymous caller", ErrForbidden)
	}
	allow, known := s.allowed[in.Connection]
	if !known || !allow.Match(caller) {
		// One answer for both, as at admission: no probing for names.
		return nil, fmt.Errorf("%w: connection %q does not exist or %s may not use it", ErrBadRequest, in.Connection, caller.Name)
	}
	set := s.accessFor(in.Connection)
	if !set.Enabled || s.access == nil {
		return nil, fmt.Errorf("%w: access requests are disabled on connection %s", ErrBadRequest, in.Connection)
	}
	r := &AccessRequest{ID: newID(), Status: AccessPending, Connection: in.Connection, Role: in.Role,
		Identity: protocols.Identity{Name: caller.Name, Groups: slices.Clone(caller.Groups), Method: caller.Method},
		Replica:  s.replica, Decisions: []Vote{}}
	switch {
	case in.Role != "" && in.Overlay != nil:
		return nil, fmt.Errorf("%w: ask for a role or an overlay, not both", ErrBadRequest)
	case in.Role != "":
		rc, ok := set.Roles[in.Role]
		if !ok {
			return nil, fmt.Errorf("%w: role %q is not offered on connection %s (offered: %s)", ErrBadRequest, in.Role, in.Connection, roleList(set.Roles))
		}
		r.Overlay = cloneOverlay(rc.OverlayConfig)
	case in.Overlay != nil:
		if !set.Custom {
			return nil, fmt.Errorf("%w: connection %s offers roles only (%s)", ErrBadRequest, in.Connection, roleList(set.Roles))
		}
		if err := in.Overlay.Validate("overlay", set.LiftCritical); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		r.Overlay = cloneOverlay(*in.Overlay)
	default:
		return nil, fmt.Errorf("%w: ask for a role (%s) or an overlay", ErrBadRequest, roleList(set.Roles))
	}
	d := time.Duration(in.Duration)
	if d == 0 {
		d = min(DefaultAccessDuration, set.MaxDuration)
	}
	if d < minAccessDuration || d > set.MaxDuration {
		return nil, fmt.Errorf("%w: duration %s out of range (want %s to %s on connection %s)", ErrBadRequest, d, minAccessDuration, set.MaxDuration, in.Connection)
	}
	r.Duration = Duration(d)
	reason, err := checkReason(in.Reason, true)
	if err != nil {
		return nil, err
	}
	r.Reason = reason
	r.Required = s.settingsFor(in.Connection, nil).Required
	now := s.now().UTC()
	r.CreatedAt, r.ExpiresAt = now, now.Add(set.Timeout)
	if err := s.access.store.CreateAccess(ctx, r, now); err != nil {
		return nil, err
	}
	s.accessEvent("requested", r, "")
	return r, nil
}

// checkReason trims and checks a reason; required says it may not be empty.
func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case required && reason == "":
		return "", fmt.Errorf("%w: a reason is required", ErrBadReason)
	case !utf8.ValidString(reason):
		return "", fmt.Errorf("%w: the reason is not valid UTF-8", ErrBadReason)
	case utf8.RuneCountInString(reason) > maxReasonRunes:
		return "", fmt.Errorf("%w: the reason is longer than %d characters", ErrBadReason, maxReasonRunes)
	case strings.ContainsFunc(reason, isControl):
		return "", fmt.Errorf("%w: the reason contains control characters", ErrBadReason)
	}
	return reason, nil
}

// MayDecideAccess reports why reviewer may not decide r, or nil: the
// connection's reviewers decide, and approve their own request only where
// self-approval is on.
func (s *Service) MayDecideAccess(reviewer protocols.Identity, r *AccessRequest, v Verdict) error {
	set := s.settingsFor(r.Connection, nil)
	if !set.Reviewers.Match(reviewer) {
		return fmt.Errorf("%w: %s is not a reviewer for connection %s", ErrForbidden, reviewer.Name, r.Connection)
	}
	if v == Approve && reviewer.Name == r.Identity.Name && !set.SelfApproval {
		return fmt.Errorf("%w: %s may not approve their own access request on connection %s", ErrForbidden, reviewer.Name, r.Connection)
	}
	return nil
}

// MayRevokeAccess reports why who may not revoke r: its caller and the
// connection's reviewers may.
func (s *Service) MayRevokeAccess(who protocols.Identity, r *AccessRequest) error {
	if who.Name == r.Identity.Name || s.settingsFor(r.Connection, nil).Reviewers.Match(who) {
		return nil
	}
	return fmt.Errorf("%w: %s may not revoke %s's access on connection %s", ErrForbidden, who.Name, r.Identity.Name, r.Connection)
}

// MayViewAccess reports whether viewer may see r: its caller and the
// connection's reviewers.
func (s *Service) MayViewAccess(viewer protocols.Identity, r *AccessRequest) bool {
	return viewer.Name == r.Identity.Name || s.settingsFor(r.Connection, nil).Reviewers.Match(viewer)
}

// GetAccess returns access request id as viewer may see it.
func (s *Service) GetAccess(ctx context.Context, viewer protocols.Identity, id string) (*AccessRequest, error) {
	if s.access == nil || !ValidID(id) {
		return nil, ErrNotFound
	}
	r, err := s.access.store.GetAccess(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.MayViewAccess(viewer, r) {
		return nil, fmt.Errorf("%w: %s may not see access request %s", ErrForbidden, viewer.Name, id)
	}
	return r, nil
}

// ListAccess returns the access requests viewer may see, newest first.
func (s *Service) ListAccess(ctx context.Context, viewer protocols.Identity, f AccessFilter) ([]*AccessRequest, error) {
	if s.access == nil {
		return nil, nil
	}
	want := f.Limit
	if want <= 0 {
		want = 100
	}
	f.Limit = min(want*5, 2000)
	all, err := s.access.store.ListAccess(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*AccessRequest, 0, min(len(all), want))
	for _, r := range all {
		if len(out) == want {
			break
		}
		if s.MayViewAccess(viewer, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// DecideAccess records reviewer's verdict on access request id. Once
// enough reviewers approve, the grant is in force on this replica before
// DecideAccess returns, and on the others as soon as they hear of it.
func (s *Service) DecideAccess(ctx context.Context, reviewer protocols.Identity, id string, v Verdict, reason string) (*AccessRequest, error) {
	if v != Approve && v != Reject {
		return nil, fmt.Errorf("unknown verdict %q", v)
	}
	reason, err := checkReason(reason, v == Reject)
	if err != nil {
		return nil, err
	}
	if reviewer.Name == "" {
		return nil, fmt.Errorf("%w: anonymous reviewer", ErrForbidden)
	}
	if s.access == nil || !ValidID(id) {
		return nil, ErrNotFound
	}
	r, err := s.access.store.GetAccess(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.MayDecideAccess(reviewer, r, v); err != nil {
		s.accessLog(r).Warn("access decision refused", "reviewer", reviewer.Name, "verdict", v, "err", err)
		return nil, err
	}
	got, err := s.access.store.VoteAccess(ctx, id, Vote{Reviewer: reviewer.Name, Verdict: v, Reason: reason}, s.now())
	if err != nil {
		var se *AccessStateError
		if errors.As(err, &se) && se.Status == AccessExpired && r.Status == AccessPending {
			r.Status = AccessExpired
			s.accessEvent("expired", r, "no decision in time")
		}
		return nil, err
	}
	switch got.Status {
	case AccessActive:
		s.access.refresh(ctx)
		s.accessEvent("approved", got, "")
	case AccessDenied:
		s.accessEvent("denied", got, "")
	default:
		s.accessLog(got).Info("access vote recorded", "reviewer", reviewer.Name, "verdict", v,
			"approvals", len(got.Approvers()), "required", got.Required)
	}
	return got, nil
}

// RevokeAccess ends a pending request or an active grant. The grant no
// longer applies to this replica's next command when RevokeAccess returns,
// nor to the other replicas' once they hear of it.
func (s *Service) RevokeAccess(ctx context.Context, who protocols.Identity, id, reason string) (*AccessRequest, error) {
	reason, err := checkReason(reason, false)
	if err != nil {
		return nil, err
	}
	if s.access == nil || !ValidID(id) {
		return nil, ErrNotFound
	}
	r, err := s.access.store.GetAccess(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.MayRevokeAccess(who, r); err != nil {
		return nil, err
	}
	got, err := s.access.store.RevokeAccess(ctx, id, who.Name, reason, s.now())
	if err != nil {
		return nil, err
	}
	s.access.refresh(ctx)
	s.accessEvent("revoked", got, "")
	return got, nil
}

// Grants returns the access grants in force, kept current from the store,
// for the session flow; nil when access requests are off.
func (s *Service) Grants() protocols.AccessGrants {
	if s.access == nil {
		return nil
	}
	return s.access
}

// AccessRoles returns the roles offered on connection, by name.
func (s *Service) AccessRoles(connection string) map[string]RoleConfig {
	return s.accessFor(connection).Roles
}

func (s *Service) accessFor(connection string) accessSettings {
	var cc *ConnectionConfig
	if c, ok := s.conns[connection]; ok {
		cc = &c
	}
	return resolveAccess(&s.cfg.Access, cc)
}

// accessEvent logs, counts and announces a transition this replica made.
func (s *Service) accessEvent(event string, r *AccessRequest, why string) {
	s.m.access.WithLabelValues(event).Inc()
	l := s.accessLog(r).With("event", event)
	if why != "" {
		l = l.With("why", why)
	}
	if len(r.Decisions) > 0 {
		votes := make([]string, len(r.Decisions))
		for i, v := range r.Decisions {
			votes[i] = v.Reviewer + " " + string(v.Verdict)
		}
		l = l.With("decisions", votes)
	}
	if r.RevokedBy != "" {
		l = l.With("revoked_by", r.RevokedBy)
	}
	l.Info("access " + event)
	s.hooks.sendAccess("access."+event, r)
}

func (s *Service) accessLog(r *AccessRequest) *slog.Logger {
	return s.log.With("access", r.ID, "identity", r.Identity.Name, "connection", r.Connection,
		"role", r.Role, "overlay", r.Overlay.String(), "duration", time.Duration(r.Duration).String(),
		"ends", r.EndsAt)
}

func roleList(m map[string]RoleConfig) string {
	if len(m) == 0 {
		return "no roles"
	}
	return strings.Join(sortedRoles(m), ", ")
}

func cloneOverlay(c policy.OverlayConfig) policy.OverlayConfig {
	out := policy.OverlayConfig{}
	if len(c.Rules) > 0 {
		out.Rules = map[string]string{}
		for k, v := range c.Rules {
			out.Rules[k] = v
		}
	}
	if len(c.Risks) > 0 {
		out.Risks = map[string]string{}
		for k, v := range c.Risks {
			out.Risks[k] = v
		}
	}
	return out
}
