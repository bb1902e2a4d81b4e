package engine

import (
	"log/slog"
	"sync"
	"time"
)

// Draining is one open session as a shutdown sees it. An engine's Serve
// drains its sessions with Drain once its listener is closed.
type Draining interface {
	// Idle reports, from any goroutine, whether nothing of the session
	// runs upstream (no response owed). It may be stale by the time it
	// returns: the session itself makes the final decision when woken.
	Idle() bool
	// Wake asks the session to end if it is idle and outside a
	// transaction, which it decides on its own goroutine (the one that
	// forwards its commands, so that none is forwarded as it ends). It
	// must not block.
	Wake()
	// Cancel asks the upstream to cancel what it runs for the session:
	// the upstream's answer (a cancelled statement's error) reaches the
	// client and the recording, and the session then ends when woken. It
	// may block for a round trip to the upstream.
	Cancel()
	// Stop ends the session now with the protocol's shutdown error.
	Stop()
}

// DrainOptions bound a drain.
type DrainOptions struct {
	// Timeout is how long commands in flight (and open transactions) may
	// take to finish; then they are cancelled upstream.
	Timeout time.Duration
	// CancelTimeout is how long the upstream may take to answer the
	// cancels before the sessions left are stopped.
	CancelTimeout time.Duration
	Log           *slog.Logger
}

// DrainReport counts how a drain's sessions ended.
type DrainReport struct {
	// Open were the sessions when the drain began; Finished ended within
	// the drain period, Cancelled after their upstream command was
	// cancelled, Stopped at the end of it all.
	Open, Finished, Cancelled, Stopped int
	Took                               time.Duration
}

// drainPoll is how often a drain looks at its sessions: an idle session
// ends within one poll of becoming idle.
const drainPoll = 20 * time.Millisecond

// Drain ends an engine's sessions for a shutdown, each when nothing of it
// runs upstream: a client is never told its session ended while its
// command goes on. Sessions that are idle end at once; the others finish
// their commands (and their transactions) for up to o.Timeout, are then
// cancelled upstream, and whatever remains after o.CancelTimeout is
// stopped. sessions returns the sessions still open; sessions that open
// during the drain are drained too.
func Drain(o DrainOptions, sessions func() []Draining) DrainReport {
	start := time.Now()
	rep := DrainReport{Open: len(sessions())}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := func(d time.Duration) int {
		end := time.Now().Add(d)
		for {
			open := sessions()
			if len(open) == 0 {
				return 0
			}
			for _, s := range open {
				if s.Idle() {
					s.Wake()
				}
			}
			if !time.Now().Before(end) {
				return len(open)
			}
			time.Sleep(min(drainPoll, max(time.Until(end), time.Millisecond)))
		}
	}
	left := wait(o.Timeout)
	rep.Finished = max(rep.Open-left, 0)
	if left > 0 {
		log.Warn("drain period over: cancelling the commands still running upstream", "sessions", left, "drain_timeout", o.Timeout)
		var wg sync.WaitGroup
		for _, s := range sessions() {
			wg.Go(s.Cancel)
		}
		wg.Wait()
		stopped := wait(o.CancelTimeout)
		rep.Cancelled = left - stopped
		if stopped > 0 {
			log.Warn("upstream did not answer the cancels in time: stopping the sessions left", "sessions", stopped)
			for _, s := range sessions() {
				s.Stop()
			}
		}
		rep.Stopped = stopped
	}
	rep.Took = time.Since(start)
	if rep.Open > 0 || left > 0 {
		log.Info("sessions drained", "open", rep.Open, "finished", rep.Finished, "cancelled", rep.Cancelled,
			"stopped", rep.Stopped, "took", rep.Took.Round(time.Millisecond))
	}
	return rep
}
