package approvals

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Review implements protocols.Approver. In hold mode it records a request,
// calls notify once with how to approve it, and blocks until reviewers
// decide (Allow, consuming the approval exactly once), deny, the timeout
// passes (Deny) or ctx ends (the request is cancelled and ctx's error
// returned). In retry mode it consumes a matching approval if there is one
// and otherwise records (or reuses) a pending request and denies at once.
// Whatever fails on the way, the command is refused, never allowed.
func (s *Service) Review(ctx context.Context, rr protocols.ReviewRequest, notify func(string)) (protocols.Decision, error) {
	dec := protocols.Decision{Action: protocols.Deny, Risk: rr.Decision.Risk, Rules: rr.Decision.Rules}
	r, reason := s.newRequest(rr)
	if r == nil {
		s.log.Warn("review refused before a request was made", "reason", reason)
		dec.Reason = reason
		return dec, nil
	}
	if r.Mode == ModeRetry {
		return s.retry(ctx, r, rr, dec)
	}
	return s.hold(ctx, r, rr, dec, notify)
}

// newRequest builds the request for rr, or explains why none can be made.
func (s *Service) newRequest(rr protocols.ReviewRequest) (*Request, string) {
	cmd, cls := rr.Command, rr.Classification
	if cmd == nil || cls == nil {
		return nil, "approval required but the command could not be described to a reviewer"
	}
	id, conn := rr.Session.Identity, rr.Session.Connection
	if id.Name == "" {
		return nil, "approval required but the caller's identity is unclear"
	}
	if conn == "" {
		return nil, "approval required but the connection is unclear"
	}
	// Reviewers read the redacted text, never Command.Text: it may hold a
	// password literal.
	if cls.Redacted == "" {
		return nil, "approval required but the command has no text a reviewer could read"
	}
	if len(cls.Redacted) > maxCommandBytes {
		return nil, fmt.Sprintf("approval required but the command is too long to review (%d bytes, at most %d)", len(cls.Redacted), maxCommandBytes)
	}
	proto, session := cmd.Protocol, rr.Session.ID
	if proto == "" {
		proto = rr.Session.Protocol
	}
	set := s.settingsFor(conn, &id)
	sum := cmd.Hash()
	now := s.now().UTC()
	return &Request{
		ID:            newID(),
		Status:        StatusPending,
		Mode:          set.Mode,
		Identity:      protocols.Identity{Name: id.Name, Groups: slices.Clone(id.Groups), Method: id.Method},
		Connection:    conn,
		Protocol:      proto,
		SessionID:     session,
		ClientAddr:    rr.Session.ClientAddr,
		Replica:       s.replica,
		Command:       cls.Redacted,
		CommandSHA256: hex.EncodeToString(sum[:]),
		Risk:          cls.Risk,
		Rules:         slices.Clone(cls.Rules),
		Required:      set.Required,
		Validity:      set.Validity,
		CreatedAt:     now,
		ExpiresAt:     now.Add(set.Timeout),
		Decisions:     []Vote{},
	}, ""
}

func (s *Service) hold(ctx context.Context, r *Request, rr protocols.ReviewRequest, dec protocols.Decision, notify func(string)) (protocols.Decision, error) {
	// Listen before the request exists, so that no decision can slip in
	// between and wait for the poll.
	wake, stop := s.hub.subscribe(r.ID)
	defer stop()
	s.preview(ctx, r, rr)
	dec.Preview = r.Preview
	if err := s.store.Create(ctx, r); err != nil {
		if ctx.Err() != nil {
			return dec, ctx.Err()
		}
		s.log.Error("store approval request; command refused", "err", err, "identity", r.Identity.Name, "connection", r.Connection)
		dec.Reason = "approval required but the approval store is unavailable"
		return dec, nil
	}
	dec.ApprovalID = r.ID
	s.requested(r)
	if notify != nil {
		notify(s.approveHint(r.ID))
	}
	deadline := time.NewTimer(r.ExpiresAt.Sub(s.now()))
	defer deadline.Stop()
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	timedOut := false
	for {
		select {
		case <-ctx.Done():
			return s.abandon(r, dec, ctx.Err())
		case <-deadline.C:
			timedOut = true
			got, err := s.store.Finish(ctx, r.ID, StatusExpired, []Status{StatusPending}, s.now())
			if err == nil {
				s.finished(got, "expired", "no decision in time")
				dec.Reason = fmt.Sprintf("approval request %s expired after %s without a decision", r.ID, r.ExpiresAt.Sub(r.CreatedAt).Round(time.Second))
				return dec, nil
			}
			if ctx.Err() != nil {
				return s.abandon(r, dec, ctx.Err())
			}
			if !errors.Is(err, ErrNotPending) {
				// The store cannot say; the command must not wait forever
				// nor run. The sweeper expires the row later.
				s.log.Error("expire approval request; command refused", "approval", r.ID, "err", err)
				dec.Reason = fmt.Sprintf("approval request %s timed out", r.ID)
				return dec, nil
			}
			// Decided at the last moment: read what happened.
		case <-wake:
		case <-poll.C:
		}
		cur, err := s.store.Get(ctx, r.ID)
		if err != nil {
			if ctx.Err() != nil {
				return s.abandon(r, dec, ctx.Err())
			}
			s.log.Warn("read approval request while holding", "approval", r.ID, "err", err)
			if timedOut {
				dec.Reason = fmt.Sprintf("approval request %s timed out", r.ID)
				return dec, nil
			}
			continue
		}
		if d, done := s.outcome(ctx, cur, dec); done {
			return d, nil
		}
		if err := ctx.Err(); err != nil {
			return s.abandon(r, dec, err)
		}
		if timedOut {
			dec.Reason = fmt.Sprintf("approval request %s timed out", r.ID)
			return dec, nil
		}
	}
}

// outcome turns a held request's state into the final decision, consuming
// an approval; done is false while the request is still open.
func (s *Service) outcome(ctx context.Context, cur *Request, dec protocols.Decision) (protocols.Decision, bool) {
	switch cur.Status {
	case StatusPending:
		return dec, false
	case StatusApproved:
		got, err := s.store.Consume(ctx, cur.ID, s.now())
		if err != nil {
			if !errors.Is(err, ErrNotPending) && ctx.Err() == nil {
				s.log.Warn("consume approval", "approval", cur.ID, "err", err)
			}
			return dec, false // look again: cancelled, expired or a store hiccup
		}
		s.finished(got, "consumed", "")
		dec.Action = protocols.Allow
		dec.Reviewer = strings.Join(got.Approvers(), ",")
		return dec, true
	case StatusDenied:
		dec.Reason = denyReason(cur)
		return dec, true
	case StatusExpired:
		dec.Reason = fmt.Sprintf("approval request %s expired without an approval", cur.ID)
		return dec, true
	default: // cancelled, or consumed by anything but this holder
		dec.Reason = fmt.Sprintf("approval request %s is %s", cur.ID, cur.Status)
		return dec, true
	}
}

func denyReason(r *Request) string {
	if v, ok := r.Denial(); ok {
		if v.Reason == "" {
			return fmt.Sprintf("approval request %s denied by %s", r.ID, v.Reviewer)
		}
		return fmt.Sprintf("approval request %s denied by %s: %s", r.ID, v.Reviewer, v.Reason)
	}
	return fmt.Sprintf("approval request %s denied", r.ID)
}

// abandon cancels a held request whose session went away. The cancel runs on
// a context of its own: the session's is already done.
func (s *Service) abandon(r *Request, dec protocols.Decision, cause error) (protocols.Decision, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.store.Finish(ctx, r.ID, StatusCancelled, []Status{StatusPending, StatusApproved}, s.now())
	switch {
	case err == nil:
		s.finished(got, "cancelled", "the session ended while waiting")
	case !errors.Is(err, ErrNotPending):
		s.log.Error("cancel approval request", "approval", r.ID, "err", err)
	}
	dec.Reason = fmt.Sprintf("approval request %s abandoned: the session ended", r.ID)
	return dec, cause
}

func (s *Service) retry(ctx context.Context, r *Request, rr protocols.ReviewRequest, dec protocols.Decision) (protocols.Decision, error) {
	now := s.now()
	got, err := s.store.ConsumeMatch(ctx, Key{Identity: r.Identity.Name, Connection: r.Connection, Hash: r.CommandSHA256}, now)
	switch {
	case err == nil:
		s.finished(got, "consumed", "")
		dec.Action = protocols.Allow
		dec.ApprovalID = got.ID
		dec.Reviewer = strings.Join(got.Approvers(), ",")
		dec.Preview = got.Preview
		return dec, nil
	case ctx.Err() != nil:
		return dec, ctx.Err()
	case !errors.Is(err, ErrNotFound):
		s.log.Error("look up approval; command refused", "err", err, "identity", r.Identity.Name, "connection", r.Connection)
		dec.Reason = "approval required but the approval store is unavailable"
		return dec, nil
	}
	// Only a request that may be new is previewed; a retry of a pending
	// one keeps the first preview.
	s.preview(ctx, r, rr)
	cur, created, err := s.store.CreateRetry(ctx, r, now)
	if err != nil {
		if ctx.Err() != nil {
			return dec, ctx.Err()
		}
		s.log.Error("store approval request; command refused", "err", err, "identity", r.Identity.Name, "connection", r.Connection)
		dec.Reason = "approval required but the approval store is unavailable"
		return dec, nil
	}
	if created {
		s.requested(cur)
	}
	dec.ApprovalID, dec.Preview = cur.ID, cur.Preview
	dec.Reason = fmt.Sprintf("%s, then run the same command again within %s of the approval",
		s.approveHint(cur.ID), cur.Validity.Round(time.Second))
	return dec, nil
}
