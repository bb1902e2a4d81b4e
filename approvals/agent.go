package approvals

import (
	"context"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Retrying returns an Approver that resolves every review as retry mode
// does, whatever the configuration's mode: the command is refused at once
// with its request's id and runs once when sent again after approval. It
// is for frontends that cannot hold a request open while a reviewer
// decides (the agent API and the MCP endpoint): their callers wait with
// Wait instead, and every other setting (reviewers, timeout, validity)
// still applies.
func (s *Service) Retrying() protocols.Approver { return retrying{s} }

type retrying struct{ s *Service }

// Review implements protocols.Approver.
func (r retrying) Review(ctx context.Context, rr protocols.ReviewRequest, _ func(string)) (protocols.Decision, error) {
	dec := protocols.Decision{Action: protocols.Deny, Risk: rr.Decision.Risk, Rules: rr.Decision.Rules}
	req, reason := r.s.newRequest(rr)
	if req == nil {
		r.s.log.Warn("review refused before a request was made", "reason", reason)
		dec.Reason = reason
		return dec, nil
	}
	req.Mode = ModeRetry
	return r.s.retry(ctx, req, rr, dec)
}

// Wait returns request id as viewer may see it (Get) once it is no longer
// pending, or as it is when d has passed. A decision is noticed at once
// when this process or a replica sharing the store made it, and otherwise
// within the poll interval. It returns ctx's error when ctx ends first.
func (s *Service) Wait(ctx context.Context, viewer protocols.Identity, id string, d time.Duration) (*Request, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	// Listen before reading, so that no decision slips in between.
	wake, stop := s.hub.subscribe(id)
	defer stop()
	r, err := s.Get(ctx, viewer, id)
	if err != nil || r.Status != StatusPending || d <= 0 {
		return r, err
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-deadline.C:
			return r, nil
		case <-wake:
		case <-poll.C:
		}
		cur, err := s.store.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			s.log.Warn("read approval request while waiting", "approval", id, "err", err)
			continue
		}
		r = cur
		if r.Status != StatusPending {
			return r, nil
		}
	}
}
