package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/airlock-gw/airlock/protocols"
)

// Reviewer errors, checked with errors.Is.
var (
	// ErrForbidden means the caller may not see or decide the request.
	ErrForbidden = errors.New("forbidden")
	// ErrBadReason means the reason is missing (a deny needs one) or too long.
	ErrBadReason = errors.New("bad reason")
)

// maxReasonRunes caps a reviewer's reason.
const maxReasonRunes = 1000

// MayDecide reports why reviewer may not decide r, or nil when they may.
// Reviewers are judged by the connection's current configuration.
func (s *Service) MayDecide(reviewer protocols.Identity, r *Request, v Verdict) error {
	set := s.settingsFor(r.Connection, nil)
	if !set.Reviewers.Match(reviewer) {
		return fmt.Errorf("%w: %s is not a reviewer for connection %s", ErrForbidden, reviewer.Name, r.Connection)
	}
	if v == Approve && reviewer.Name == r.Identity.Name && !set.SelfApproval {
		return fmt.Errorf("%w: %s may not approve their own command on connection %s", ErrForbidden, reviewer.Name, r.Connection)
	}
	return nil
}

// MayView reports whether viewer may see r: its reviewers and its caller.
func (s *Service) MayView(viewer protocols.Identity, r *Request) bool {
	if viewer.Name == r.Identity.Name {
		return true
	}
	return s.settingsFor(r.Connection, nil).Reviewers.Match(viewer)
}

// Get returns request id as viewer may see it.
func (s *Service) Get(ctx context.Context, viewer protocols.Identity, id string) (*Request, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.MayView(viewer, r) {
		return nil, fmt.Errorf("%w: %s may not see request %s", ErrForbidden, viewer.Name, id)
	}
	return r, nil
}

// List returns the requests viewer may see, newest first.
func (s *Service) List(ctx context.Context, viewer protocols.Identity, f Filter) ([]*Request, error) {
	want := f.Limit
	if want <= 0 {
		want = 100
	}
	// Visibility depends on configuration the store does not know, so read
	// a wider window and filter here.
	f.Limit = min(want*5, 2000)
	all, err := s.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*Request, 0, min(len(all), want))
	for _, r := range all {
		if len(out) == want {
			break
		}
		if s.MayView(viewer, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Decide records reviewer's verdict on request id. The change is committed
// before Decide returns. It fails with ErrNotFound, ErrForbidden,
// ErrBadReason, ErrAlreadyVoted or a *StateError (ErrNotPending) and then
// changes nothing.
func (s *Service) Decide(ctx context.Context, reviewer protocols.Identity, id string, v Verdict, reason string) (*Request, error) {
	if v != Approve && v != Reject {
		return nil, fmt.Errorf("unknown verdict %q", v)
	}
	reason = strings.TrimSpace(reason)
	switch {
	case v == Reject && reason == "":
		return nil, fmt.Errorf("%w: a deny needs a reason", ErrBadReason)
	case !utf8.ValidString(reason):
		return nil, fmt.Errorf("%w: the reason is not valid UTF-8", ErrBadReason)
	case utf8.RuneCountInString(reason) > maxReasonRunes:
		return nil, fmt.Errorf("%w: the reason is longer than %d characters", ErrBadReason, maxReasonRunes)
	case strings.ContainsFunc(reason, isControl):
		return nil, fmt.Errorf("%w: the reason contains control characters", ErrBadReason)
	}
	if reviewer.Name == "" {
		return nil, fmt.Errorf("%w: anonymous reviewer", ErrForbidden)
	}
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.MayDecide(reviewer, r, v); err != nil {
		s.auditLog(r).Warn("approval decision refused", "reviewer", reviewer.Name, "verdict", v, "err", err)
		return nil, err
	}
	got, err := s.store.Vote(ctx, id, Vote{Reviewer: reviewer.Name, Verdict: v, Reason: reason}, s.now())
	if err != nil {
		var se *StateError
		if errors.As(err, &se) && se.Status == StatusExpired && r.Status == StatusPending {
			// This vote found the request out of time and expired it.
			r.Status = StatusExpired
			s.finished(r, "expired", "no decision in time")
		}
		return nil, err
	}
	switch got.Status {
	case StatusApproved:
		s.finished(got, "approved", "")
	case StatusDenied:
		s.finished(got, "denied", "")
	default:
		s.auditLog(got).Info("approval vote recorded", "reviewer", reviewer.Name, "verdict", v,
			"approvals", len(got.Approvers()), "required", got.Required)
	}
	return got, nil
}

// isControl reports C0/C1 control characters other than tab; reasons reach
// terminals and chat, where they could hide or rewrite text.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0)
}
