package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Check decides what happens to cmd: classify, apply the connection's
// policy, hold it for approval or refuse it until approved (retry mode),
// record the command and the decision, count it. The engine forwards cmd
// only on a nil error and an Allow decision; on any other decision it
// answers with the protocol's own error and the session goes on.
//
// An error ErrCanceled means the client withdrew the held command (the
// session goes on); any other error means the session must end: the
// recording failed, the client went away while its command was held, the
// session is ending, or Airlock is shutting down (ErrShuttingDown: the held
// command was withdrawn and did not run).
func (s *Session) Check(ctx context.Context, cmd *protocols.Command) (protocols.Decision, error) {
	if gen := s.g.opt.Live.gen.Load(); gen != s.gen {
		s.refresh(gen)
	}
	cls := s.classify(cmd)
	dec := s.revokedDecision(s.outlived(s.decide(cls)))
	review := cls
	if g, name, ok := s.repeatsGrant(cls); ok && dec.Action == protocols.Allow {
		// An approval covers one run: the approved statement runs again
		// only with an approval of its own.
		dec.Action = protocols.Review
		dec.Reason = fmt.Sprintf("runs prepared statement %q again; its approval covered one run", name)
		review = g.forReview(cls, name)
	}
	if err := s.recorder.Command(cmd, s.recordedText(cls.Redacted)); err != nil {
		return protocols.Decision{}, s.recordFailed("command", err)
	}
	switch {
	case dec.Action != protocols.Allow && s.audit:
		dec = s.audited(dec)
	case dec.Action == protocols.Review:
		var err error
		if dec, err = s.review(ctx, cmd, review, dec); err != nil {
			return protocols.Decision{}, err
		}
		dec = s.outlived(dec) // approved after the credential ended
	}
	if err := s.recorder.Decision(dec); err != nil {
		return protocols.Decision{}, s.recordFailed("decision", err)
	}
	counted := dec.Action
	if dec.Audit {
		counted = dec.Verdict()
	}
	s.g.opt.Metrics.countCommand(s, counted, dec.Risk)
	if dec.Action == protocols.Allow && (len(cls.Prepares) > 0 || len(cls.Executes) > 0) {
		s.notePrepares(cls, dec.ApprovalID != "")
	}
	if dec.Action != protocols.Allow {
		s.Log.Info("command refused", "decision", dec)
	}
	return dec, nil
}

func (s *Session) classify(cmd *protocols.Command) *protocols.Classification {
	c := s.classifier(cmd)
	if c == nil {
		return &protocols.Classification{Redacted: cmd.Text}
	}
	start := time.Now()
	cls := c.Classify(cmd)
	s.g.opt.Metrics.observeClassify(s, time.Since(start))
	return cls
}

func (s *Session) decide(cls *protocols.Classification) protocols.Decision {
	if s.current.Policy == nil || s.g.plain {
		return protocols.Decision{Action: protocols.Allow, Risk: cls.Risk, Rules: cls.Rules}
	}
	if g := s.accessGrant(); g != nil {
		return s.decideGranted(cls, g)
	}
	return s.current.Policy.Decide(s.Info.Identity, cls)
}

// classifier is the classifier of cmd: the connection's own for its
// protocol's commands, else the gateway's; nil when nothing is classified.
func (s *Session) classifier(cmd *protocols.Command) protocols.Classifier {
	c := s.g.opt.Classifier
	if c != nil && s.Conn.Classifier != nil && cmd.Protocol == s.Conn.Protocol {
		return s.Conn.Classifier
	}
	return c
}

// review resolves a review decision: refused without an approval channel,
// otherwise held (or, in retry mode, refused until approved) by the
// approver. While it holds, Cancel, Interrupt and the engine's client
// watch can end the wait; the command then never runs, and the recording
// says why before the error returns.
func (s *Session) review(ctx context.Context, cmd *protocols.Command, cls *protocols.Classification, dec protocols.Decision) (protocols.Decision, error) {
	a := s.g.opt.Approver
	if a == nil {
		dec.Action, dec.PolicyAction = protocols.Deny, protocols.Review
		dec.Reason = "approval required (" + ruleList(dec.Rules) + ") and no approval channel is configured"
		return dec, nil
	}
	// A context of its own only here: creating one per command would cost
	// every command, and only a held one can be cancelled.
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.holdMu.Lock()
	if s.ended {
		s.holdMu.Unlock()
		return protocols.Decision{}, ErrSessionEnded
	}
	s.holdCancel = cancel
	s.holdMu.Unlock()
	if s.g.opt.Live.held(s, cancel) {
		defer s.g.opt.Live.released(s)
	} else {
		cancel(ErrShuttingDown) // draining: nothing new is held
	}
	var stopWatch func()
	notify := func(msg string) {
		if s.hold.Notify != nil {
			s.hold.Notify(msg)
		}
		if s.hold.Watch != nil && stopWatch == nil {
			stopWatch = s.hold.Watch(func() { cancel(ErrClientGone) })
		}
	}
	req := protocols.ReviewRequest{Session: s.Info, Command: cmd, Classification: cls, Decision: dec, Preview: s.previewer(cmd, cls)}
	final, err := a.Review(hctx, req, notify)
	final.PolicyAction, final.Grant = protocols.Review, dec.Grant
	s.holdMu.Lock()
	s.holdCancel = nil
	s.holdMu.Unlock()
	if stopWatch != nil {
		stopWatch()
	}
	if err == nil {
		return final, nil
	}
	if cause := context.Cause(hctx); hctx.Err() != nil && cause != nil {
		err = cause
	}
	// The held command never runs; record why before ending.
	abandoned := protocols.Decision{Action: protocols.Deny, Risk: dec.Risk, Rules: dec.Rules,
		Reason: "review abandoned: " + err.Error(), ApprovalID: final.ApprovalID,
		Grant: dec.Grant, PolicyAction: protocols.Review, Preview: final.Preview}
	if rerr := s.recorder.Decision(abandoned); rerr != nil {
		return protocols.Decision{}, s.recordFailed("decision", rerr)
	}
	s.g.opt.Metrics.countCommand(s, protocols.Deny, dec.Risk)
	switch {
	case errors.Is(err, ErrCanceled), errors.Is(err, ErrClientGone), errors.Is(err, ErrSessionEnded), errors.Is(err, ErrShuttingDown):
		return protocols.Decision{}, err
	}
	return protocols.Decision{}, fmt.Errorf("%w: %w", ErrSessionEnded, err)
}

// recordedText is the command text as the recording keeps it: redacted of
// secret literals and, for a caller whose results are masked, masked too,
// so values the caller typed (an email in a WHERE clause) are kept from
// the recording as they are kept from results.
func (s *Session) recordedText(redacted string) string {
	m := s.masker()
	if !s.Records() || m == nil || redacted == "" {
		// Without a recording, nobody reads the masked text.
		return redacted
	}
	in := []byte(redacted)
	out := m.Text(in)
	if len(out) == len(in) && &out[0] == &in[0] {
		return redacted
	}
	return string(out)
}

// RecordedText is the text Check records for cmd: redacted by the
// classifier (a cache hit for a command Check saw) and masked for a caller
// whose results are masked.
func (s *Session) RecordedText(cmd *protocols.Command) string {
	c := s.classifier(cmd)
	if c == nil {
		return cmd.Text
	}
	return s.recordedText(c.Classify(cmd).Redacted)
}

// Record records a command that is not decided again, with its recorded
// text (RecordedText): each run of a prepared statement, so a recording
// shows every run and not only the statement's preparation.
func (s *Session) Record(cmd *protocols.Command, recorded string) error {
	return s.RecordAt(cmd, recorded, time.Time{})
}

// RecordAt is Record for an engine that has read the clock already: at
// (from time.Now) is when the command arrived; zero is now.
func (s *Session) RecordAt(cmd *protocols.Command, recorded string, at time.Time) error {
	var err error
	if s.clocked != nil && !at.IsZero() {
		err = s.clocked.CommandAt(cmd, recorded, at)
	} else {
		err = s.recorder.Command(cmd, recorded)
	}
	if err != nil {
		return s.recordFailed("command", err)
	}
	return s.credentialEnded()
}

// Parameters records the parameter values bound to a prepared statement's
// run (recording.parameters). Text values are masked like rows; a binary
// value of a masked caller is withheld, since masking reads text.
func (s *Session) Parameters(name string, params []protocols.Param) error {
	if m := s.masker(); m != nil {
		for i := range params {
			p := &params[i]
			switch {
			case p.Value == nil:
			case p.Binary:
				p.Withheld, p.Omitted, p.Value = true, len(p.Value), nil
			default:
				p.Value = m.Text(p.Value)
			}
		}
	}
	if err := s.recorder.Parameters(name, params); err != nil {
		return s.recordFailed("parameters", err)
	}
	return nil
}

func ruleList(rules []string) string {
	if len(rules) == 0 {
		return "policy"
	}
	return strings.Join(rules, ", ")
}
