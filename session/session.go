package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// Session is one admitted caller on one connection. Its methods split
// between the engine's two sides, as the engine's own goroutines do:
// Check, Record and the grant methods are called by the side that reads
// the client, one call at a time; Results by the side that reads the
// upstream; Cancel, Interrupt and Text from anywhere.
type Session struct {
	g    *Gateway
	Info protocols.SessionInfo
	Conn *protocols.Connection
	// Log carries the session's id, identity and connection.
	Log *slog.Logger

	recorder protocols.Recorder
	// clocked is recorder when it takes times from the engine, else nil.
	clocked protocols.ClockedRecorder
	// maskRef holds the caller's masker (see masker): a reload may replace
	// it while the upstream reader masks.
	maskRef atomic.Pointer[maskerRef]
	results Results
	hold    Hold
	grants  map[string]*Grant
	done    func() // from Options.Active
	// audit is set when the policy is not enforced for this caller
	// (enforce: false): commands are decided, recorded and counted, and run.
	audit  bool
	access accessCache

	holdMu     sync.Mutex
	holdCancel context.CancelCauseFunc // set while a command is held
	ended      bool                    // Interrupt was called

	started   bool
	closeOnce sync.Once

	// lease is the credential's check from a Leaser; nil never ends.
	lease func() error
	// release gives back the session's slot of the limits (Release).
	release func()

	// Client reader only: the reload generation last seen, the connection
	// as that reload left it (its policy and masking), and, once a reload
	// took the caller's access away, why its commands are refused.
	gen     uint64
	current *protocols.Connection
	revoked string
	// token is the SHA-256 of the static token the caller signed in with
	// (hasToken), for a reload to check it again.
	token    tokenSum
	hasToken bool

	// Metric children resolved once per session: label lookups hash every
	// value, which is measurable at tens of thousands of commands a second.
	commands    [3][protocols.RiskCritical + 1]prometheus.Counter
	duration    prometheus.Observer
	classifyObs prometheus.Observer
}

// Hold is how an engine takes part in holding a command for approval.
type Hold struct {
	// Notify tells the client that its command waits, where the protocol
	// has a way to (a PostgreSQL NoticeResponse). nil holds silently.
	Notify func(msg string)
	// Watch starts watching for the client going away while a command is
	// held: it calls gone when it does, and stop ends the watch (returning
	// once the watch has). nil: a hold ends only by a decision, a timeout,
	// Cancel or Interrupt.
	Watch func(gone func()) (stop func())
}

// SetHold sets the engine's part in holds; call it before the first Check.
func (s *Session) SetHold(h Hold) { s.hold = h }

// Start opens the session's recording (an error refuses the session:
// nothing runs unrecorded) and its masker, and counts it. The engine calls
// it once its upstream is ready; after it, Close must follow.
func (s *Session) Start() error {
	g, m := s.g, s.g.opt.Metrics
	s.Info.Start = time.Now().UTC()
	s.Info.ID = newID(s.Info.Start)
	s.Log = protocols.LazyWith(g.log, "session", s.Info.ID, "identity", s.Info.Identity.Name, "connection", s.Conn.Name)
	if g.opt.Recorders != nil {
		rec, err := g.opt.Recorders.Open(s.Info)
		if err != nil {
			s.Log.Error("recording unavailable, session refused", "err", err)
			s.Release()
			m.Connection(s.Info.Protocol, s.Conn.Name, "error")
			return &AdmitError{Err: ErrRecordingUnavailable, Identity: s.Info.Identity.Name, Connection: s.Conn.Name}
		}
		s.recorder = rec
		s.clocked, _ = rec.(protocols.ClockedRecorder)
	}
	if s.current == nil {
		s.current = s.Conn
	}
	if s.current.Masking != nil && g.Inspects() {
		s.setMasker(s.current.Masking.For(s.Info.Identity))
	}
	if e, ok := s.current.Policy.(protocols.Enforcer); ok && g.Inspects() && !e.Enforces(s.Info.Identity) {
		s.audit = true
		s.Log.Info("audit mode: the policy's refusals and holds are recorded and counted, not enforced")
	}
	s.results.s = s
	s.started = true
	m.Connection(s.Info.Protocol, s.Conn.Name, "accepted")
	m.SessionOpened(s.Info.Protocol, s.Conn.Name)
	if g.opt.Active != nil {
		s.done = g.opt.Active()
	}
	return nil
}

// Abort ends an admitted session whose upstream could not be reached,
// before Start. err is logged, never shown to the client: it may name
// the upstream.
func (s *Session) Abort(err error) {
	s.Release()
	m := s.g.opt.Metrics
	m.UpstreamError(s.Info.Protocol, s.Conn.Name)
	m.Connection(s.Info.Protocol, s.Conn.Name, "error")
	s.g.log.Info("upstream unreachable", "protocol", string(s.Info.Protocol), "connection", s.Conn.Name,
		"identity", s.Info.Identity.Name, "client", s.Info.ClientAddr, "err", err)
}

// UpstreamError counts a failure to talk to the session's upstream.
func (s *Session) UpstreamError() { s.g.opt.Metrics.UpstreamError(s.Info.Protocol, s.Conn.Name) }

// Close ends a started session: a held command is abandoned, the
// recording is closed with reason and the session is no longer counted.
// It is called once both of the engine's sides have stopped; later calls
// do nothing.
func (s *Session) Close(reason string) {
	s.closeOnce.Do(func() {
		s.Interrupt()
		s.Release()
		if !s.started {
			return
		}
		if err := s.recorder.Close(reason); err != nil {
			s.Log.Error("closing recording failed", "err", err)
		}
		s.g.opt.Metrics.SessionClosed(s.Info.Protocol, s.Conn.Name)
		if s.done != nil {
			s.done()
		}
		s.Log.Info("session ended", "reason", reason)
	})
}

// Interrupt abandons a command held for approval because the session is
// ending: its Check returns ErrSessionEnded. Later holds end at once.
func (s *Session) Interrupt() {
	s.holdMu.Lock()
	s.ended = true
	if s.holdCancel != nil {
		s.holdCancel(ErrSessionEnded)
	}
	s.holdMu.Unlock()
}

// Cancel withdraws the command held for approval, if one is: its Check
// returns ErrCanceled and the session goes on. It reports false when no
// command is held, and the engine then forwards the cancel to the
// upstream, which may be running an earlier command.
func (s *Session) Cancel() bool {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	if s.holdCancel == nil {
		return false
	}
	s.holdCancel(ErrCanceled)
	return true
}

// Errors of Check.
var (
	// ErrCanceled: the client withdrew its held command (Cancel). The
	// command did not run; the session goes on.
	ErrCanceled = errors.New("the command was withdrawn while it waited for approval")
	// ErrClientGone: the client went away while its command was held.
	ErrClientGone = errors.New("client disconnected while its command was held")
	// ErrSessionEnded: the session ended while a command was held.
	ErrSessionEnded = errors.New("session ended")
	// ErrRecordingFailed: the recording failed; the session must end so
	// that nothing runs unrecorded.
	ErrRecordingFailed = errors.New("session recording failed")
)

// recordFailed wraps a recorder error so that errors.Is(err,
// ErrRecordingFailed) holds, and logs it once.
func (s *Session) recordFailed(what string, err error) error {
	s.Log.Error("recording failed; ending session", "what", what, "err", err)
	return fmt.Errorf("%w: %s: %w", ErrRecordingFailed, what, err)
}

// Masker is the caller's masker, nil when nothing is masked for them.
func (s *Session) Masker() protocols.Masker { return s.masker() }

// Records reports whether the session is recorded.
func (s *Session) Records() bool {
	_, nop := s.recorder.(NopRecorder)
	return !nop
}

// Text masks free text (an error message, a notice, a notification
// payload) for the caller. It returns b itself when nothing changed.
func (s *Session) Text(b []byte) []byte {
	m := s.masker()
	if m == nil || len(b) == 0 {
		return b
	}
	return m.Text(b)
}

// NopRecorder records nothing. It is used when recording is disabled.
type NopRecorder struct{}

// Command implements protocols.Recorder.
func (NopRecorder) Command(*protocols.Command, string) error { return nil }

// Decision implements protocols.Recorder.
func (NopRecorder) Decision(protocols.Decision) error { return nil }

// Columns implements protocols.Recorder.
func (NopRecorder) Columns([]protocols.Column) error { return nil }

// Row implements protocols.Recorder.
func (NopRecorder) Row([][]byte) error { return nil }

// Result implements protocols.Recorder.
func (NopRecorder) Result(protocols.Result) error { return nil }

// Parameters implements protocols.Recorder.
func (NopRecorder) Parameters(string, []protocols.Param) error { return nil }

// Reply implements protocols.Recorder.
func (NopRecorder) Reply(protocols.Reply) error { return nil }

// Exchange implements protocols.Recorder.
func (NopRecorder) Exchange(protocols.Exchange) error { return nil }

// Close implements protocols.Recorder.
func (NopRecorder) Close(string) error { return nil }

var _ protocols.Recorder = NopRecorder{}
