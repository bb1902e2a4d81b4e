package protocols

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Session is one authenticated client session on a connection, shared by the
// engine and the Pipeline.
type Session struct {
	Info SessionInfo
	Conn *Connection
	// Recorder is never nil while the session runs; NopRecorder when
	// recording is off.
	Recorder Recorder
	// Masker is nil when nothing is masked for this caller.
	Masker Masker
	Log    *slog.Logger

	// Metric children resolved once per session: label lookups hash every
	// value, which is measurable at tens of thousands of commands a second.
	commands [3][RiskCritical + 1]prometheus.Counter
	duration prometheus.Observer
	classify prometheus.Observer // a session's commands share one protocol

	// approvedPrepares holds the SQL-level prepared statements (PREPARE)
	// that an approval let through, by name.
	// Check is called from one goroutine per session, so it needs no lock.
	approvedPrepares map[string]approvedPrepare
}

// approvedPrepare is a prepared statement an approval let through.
type approvedPrepare struct {
	spent bool // its one run is done
	// body is the redacted text of the approved PREPARE, shown to the
	// reviewer of a later EXECUTE (empty for engine-guarded names).
	body string
}

// maxPreparedBody bounds the PREPARE text added to a review request.
const maxPreparedBody = 4 << 10

// repeatsApproved returns a prepared statement cls runs whose approved run
// is spent, if any: running it again needs its own approval.
func (s *Session) repeatsApproved(cls *Classification) (string, approvedPrepare, bool) {
	for _, name := range cls.Executes {
		if a := s.approvedPrepares[name]; a.spent {
			return name, a, true
		}
	}
	return "", approvedPrepare{}, false
}

// forReview is cls as a reviewer of a repeated EXECUTE reads it: with the
// approved PREPARE's text, since "EXECUTE wipe" alone says nothing of what
// it runs. The text is redacted like the command's own.
func forReview(cls *Classification, name string, a approvedPrepare) *Classification {
	if a.body == "" {
		return cls
	}
	body := a.body
	if len(body) > maxPreparedBody {
		body = body[:maxPreparedBody] + "…"
	}
	c := *cls
	c.Redacted = fmt.Sprintf("%s\n-- %s: an approval let this through earlier:\n-- %s", cls.Redacted, name,
		strings.ReplaceAll(body, "\n", "\n-- "))
	return &c
}

// GuardPrepared makes every run through SQL (EXECUTE name) of the prepared
// statement name need an approval of its own. Engines call it for a
// statement they keep for an approval under a private name, which a client
// can read in pg_prepared_statements.
func (s *Session) GuardPrepared(name string) {
	s.notePrepared(name, approvedPrepare{spent: true})
}

func (s *Session) notePrepared(name string, a approvedPrepare) {
	if s.approvedPrepares == nil {
		s.approvedPrepares = map[string]approvedPrepare{}
	}
	s.approvedPrepares[name] = a
}

// notePrepares updates approvedPrepares after cls was allowed. A name is
// never forgotten, not even after DEALLOCATE: a PREPARE that reuses it may
// fail, and the approved statement would then be the one EXECUTE runs.
func (s *Session) notePrepares(cls *Classification, approved bool) {
	for _, name := range cls.Executes {
		if a, ok := s.approvedPrepares[name]; ok {
			a.spent = true
			s.approvedPrepares[name] = a
		}
	}
	if !approved {
		return
	}
	for _, name := range cls.Prepares {
		s.notePrepared(name, approvedPrepare{spent: slices.Contains(cls.Executes, name), body: cls.Redacted})
	}
}

// Pipeline is the one fixed sequence every command passes through:
// classify, decide, review, record, count. It is safe for concurrent use.
type Pipeline struct {
	// Classifier may be nil only in the "relay" benchmark mode: every command
	// is then allowed with risk none and recorded verbatim.
	Classifier Classifier
	// Approver resolves review decisions; nil refuses them (fail closed).
	Approver Approver
	Metrics  *Metrics
}

// Check decides what happens to cmd. An engine calls it for one session
// from one goroutine at a time (the one reading the client). notify delivers an out-of-band message
// to the client (a Postgres NoticeResponse) while a command is held for
// review. A non-nil error means the session must end: the recording failed,
// or ctx ended while the command was held.
func (p *Pipeline) Check(ctx context.Context, s *Session, cmd *Command, notify func(string)) (Decision, error) {
	var cls *Classification
	if p.Classifier != nil {
		start := time.Now()
		cls = p.Classifier.Classify(cmd)
		p.Metrics.observeClassify(s, cmd.Protocol, time.Since(start))
	} else {
		cls = &Classification{Redacted: cmd.Text}
	}
	var dec Decision
	if s.Conn.Policy != nil {
		dec = s.Conn.Policy.Decide(s.Info.Identity, cls)
	} else {
		dec = Decision{Action: Allow, Risk: cls.Risk, Rules: cls.Rules}
	}
	review := cls
	if name, a, ok := s.repeatsApproved(cls); ok && dec.Action == Allow {
		// An approval covers one run: the approved PREPARE's statement
		// runs again only with an approval of its own.
		dec.Action = Review
		dec.Reason = fmt.Sprintf("runs prepared statement %q again; its approval covered one run", name)
		review = forReview(cls, name, a)
	}
	if err := s.Recorder.Command(cmd, s.recordedText(cls.Redacted)); err != nil {
		return Decision{}, fmt.Errorf("record command: %w", err)
	}
	if dec.Action == Review {
		if p.Approver == nil {
			dec.Action = Deny
			dec.Reason = "approval required (" + ruleList(dec.Rules) + ") and no approval channel is configured"
		} else {
			final, err := p.Approver.Review(ctx, ReviewRequest{Session: s.Info, Command: cmd, Classification: review, Decision: dec}, notify)
			if err != nil {
				// The held command never runs; record why before ending.
				_ = s.Recorder.Decision(Decision{Action: Deny, Risk: dec.Risk, Rules: dec.Rules, Reason: "review abandoned: " + err.Error(), ApprovalID: final.ApprovalID})
				p.Metrics.countCommand(s, Deny, dec.Risk)
				return Decision{}, err
			}
			dec = final
		}
	}
	if err := s.Recorder.Decision(dec); err != nil {
		return Decision{}, fmt.Errorf("record decision: %w", err)
	}
	p.Metrics.countCommand(s, dec.Action, dec.Risk)
	if dec.Action == Allow && (len(cls.Prepares) > 0 || len(cls.Executes) > 0) {
		s.notePrepares(cls, dec.ApprovalID != "")
	}
	if dec.Action != Allow {
		s.Log.Info("command refused", "decision", dec)
	}
	return dec, nil
}

// recordedText is the command text as the recording keeps it: redacted of
// secret literals and, for a caller whose results are masked, masked too,
// so values the caller typed (an email in a WHERE clause) are kept from
// the recording as they are kept from results.
func (s *Session) recordedText(redacted string) string {
	if !s.Records() || s.Masker == nil || redacted == "" {
		// Without a recording, nobody reads the masked text.
		return redacted
	}
	in := []byte(redacted)
	out := s.Masker.Text(in)
	if len(out) == len(in) && &out[0] == &in[0] {
		return redacted
	}
	return string(out)
}

func ruleList(rules []string) string {
	if len(rules) == 0 {
		return "policy"
	}
	out := rules[0]
	for _, r := range rules[1:] {
		out += ", " + r
	}
	return out
}

// Records reports whether the session is recorded (its Recorder is not a
// NopRecorder).
func (s *Session) Records() bool {
	_, nop := s.Recorder.(NopRecorder)
	return !nop
}

// NopRecorder records nothing. It is used when recording is disabled.
type NopRecorder struct{}

// Command implements Recorder.
func (NopRecorder) Command(*Command, string) error { return nil }

// Decision implements Recorder.
func (NopRecorder) Decision(Decision) error { return nil }

// Columns implements Recorder.
func (NopRecorder) Columns([]Column) error { return nil }

// Row implements Recorder.
func (NopRecorder) Row([][]byte) error { return nil }

// Result implements Recorder.
func (NopRecorder) Result(Result) error { return nil }

// Close implements Recorder.
func (NopRecorder) Close(string) error { return nil }

// Parameters implements Recorder.
func (NopRecorder) Parameters(string, []Param) error { return nil }

var _ Recorder = NopRecorder{}

// RecordedText is the text Check records for cmd: redacted by the
// classifier (a cache hit for a command Check saw) and masked for a caller
// whose results are masked.
func (p *Pipeline) RecordedText(s *Session, cmd *Command) string {
	if p.Classifier == nil {
		return cmd.Text
	}
	return s.recordedText(p.Classifier.Classify(cmd).Redacted)
}
