package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// relay is one client session relayed to one upstream session.
type relay struct {
	engine *Engine
	conn   net.Conn // the client's
	up     *upstream
	flow   *session.Session
	// results is the flow's result path (upstream reader only).
	results *session.Results
	log     *slog.Logger

	// pid and secret are the cancel key the client was given.
	pid    uint32
	secret []byte

	// clientIn is read by the client reader goroutine only. The upstream
	// side is buffered by up.r (upstream reader goroutine only) and up.w.
	clientIn *frameReader

	clientMu  sync.Mutex // guards clientOut
	clientOut *transport.Writer

	pending pendingQueue
	nonce   string            // makes refusal statements unguessable
	seq     uint64            // client reader only
	names   map[string]string // client reader only: interned names
	stmts   *clientTrack      // client reader only

	res resultState // upstream reader only
	// lastUp is the type of the last upstream message handled, and lastTx
	// the status of the last ReadyForQuery (upstream reader only; read by
	// run once that reader has returned).
	lastUp, lastTx byte
	// poolKey is set when the upstream session may be reused after a clean
	// end; keepUp when the session ended that way (set under endOnce).
	poolKey string
	keepUp  bool

	// undos restore client reader state for messages PostgreSQL rejected
	// or skipped (see undoLater); undoN says there are some.
	undoMu sync.Mutex
	undos  []func()
	undoN  atomic.Int32

	// ptypes holds statements' parameter types when parameters are
	// recorded (see setParamTypes).
	ptypesMu sync.Mutex
	ptypes   map[string][]uint32

	// txIdle says the upstream session is outside a transaction, and
	// upIdle that its last message was a ReadyForQuery (upstream reader
	// writes, a drain reads).
	txIdle, upIdle atomic.Bool
	// progress counts upstream messages when a query timeout is set.
	progress atomic.Uint64

	// clientAt and upstreamAt are when the client reader's and the
	// upstream reader's current input arrived, zero until a message needs
	// it: the messages of one read share one clock reading (a pipelined
	// Bind, Execute, Sync; the CommandComplete and ReadyForQuery after it).
	clientAt   time.Time // client reader only
	upstreamAt time.Time // upstream reader only

	ended     chan struct{}
	endOnce   sync.Once
	endReason string
}

// clientNow is when the client's current messages arrived.
func (s *relay) clientNow() time.Time {
	if s.clientAt.IsZero() {
		s.clientAt = monotonicNow()
	}
	return s.clientAt
}

// upstreamNow is when the upstream's current messages arrived.
func (s *relay) upstreamNow() time.Time {
	if s.upstreamAt.IsZero() {
		s.upstreamAt = monotonicNow()
	}
	return s.upstreamAt
}

// clockBase anchors monotonicNow.
var clockBase = time.Now()

// monotonicNow is the time now for measuring durations: it reads only the
// monotonic clock, where time.Now reads the wall clock too. Its wall-clock
// part is clockBase's advanced by the monotonic time since, so it is never
// to be shown as the time of day.
func monotonicNow() time.Time { return clockBase.Add(time.Since(clockBase)) }

func newRelay(e *Engine, conn net.Conn, up *upstream, flow *session.Session) *relay {
	var n [6]byte
	_, _ = rand.Read(n[:])
	s := &relay{
		engine: e, conn: conn, up: up, flow: flow,
		clientIn:  clientReader(conn, int(e.set.MaxMessageSize)),
		clientOut: clientWriter(conn),
		nonce:     hex.EncodeToString(n[:]),
		ended:     make(chan struct{}),
		// The upstream's last message was its startup's ReadyForQuery.
		lastUp: 'Z', lastTx: up.txStatus,
		log: e.log,
	}
	s.txIdle.Store(up.txStatus == 'I')
	s.upIdle.Store(true)
	s.results = flow.Results(s)
	flow.SetHold(session.Hold{Notify: s.notifyHeld, Watch: s.watchClient})
	return s
}

// open starts the session (its recording, fail closed), makes it
// reachable by its cancel key and completes the client's startup with the
// upstream's parameters.
func (s *relay) open(st *startup) error {
	if err := s.flow.Start(); err != nil {
		return fatal(codeIOError, "session recording is unavailable; Airlock does not run sessions unrecorded")
	}
	s.log = s.flow.Log
	s.engine.register(s)
	statuses := s.up.parameterStatuses()
	out := make([]byte, 0, 9+len(statuses)+13+6)
	out, _ = (&pgproto3.AuthenticationOk{}).Encode(out)
	out = append(out, statuses...)
	out, _ = (&pgproto3.BackendKeyData{ProcessID: s.pid, SecretKey: s.secret}).Encode(out)
	out = appendReadyForQuery(out, s.up.txStatus)
	if _, err := s.conn.Write(out); err != nil {
		s.engine.unregister(s)
		s.flow.Close("client went away during startup")
		return err
	}
	s.log.Info("session started", "tls", st.tls)
	return nil
}

// run relays until either side ends.
func (s *relay) run(ctx context.Context) {
	defer s.engine.unregister(s)
	// ctx ends when a drain is over (see drain.go): what is left stops.
	stop := context.AfterFunc(ctx, s.Stop)
	defer stop()

	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		protocols.GrowStack()
		s.upstreamLoop()
	}()
	s.clientLoop(ctx)
	putClientReader(s.clientIn)
	s.clientIn = nil
	s.flow.Interrupt()
	<-upDone
	if s.keepUp {
		s.releaseUpstream()
	}
	s.clientMu.Lock()
	putClientWriter(s.clientOut)
	s.clientOut = nil // a late writer (a shutdown, a review) finds the session ended
	s.clientMu.Unlock()
	s.flow.Close(s.endReason)
}

// terminate ends the session once: it sends pe (if any) to the client, then
// closes both sockets so both goroutines return.
func (s *relay) terminate(pe *pgError, reason string) { s.end(pe, reason, false) }

// detach ends the session after the client's Terminate without closing
// the upstream session, which run then resets for reuse: the upstream
// reader is woken by a past read deadline and returns, leaving the stream
// at a message boundary. It reports false when the session had already
// ended another way.
func (s *relay) detach(reason string) bool { return s.end(nil, reason, true) }

// end ends the session once, as terminate or detach; it reports whether
// this call was the one that ended it.
func (s *relay) end(pe *pgError, reason string, keepUpstream bool) bool {
	ended := false
	s.endOnce.Do(func() {
		ended = true
		s.endReason = reason
		s.keepUp = keepUpstream
		if pe != nil {
			s.clientMu.Lock()
			if s.clientOut != nil {
				_ = s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
				_, _ = s.clientOut.Write(pe.encode(nil))
				_ = s.clientOut.Flush()
			}
			s.clientMu.Unlock()
		}
		s.flow.Interrupt()
		if keepUpstream {
			_ = s.up.conn.SetReadDeadline(time.Unix(1, 0))
		} else {
			_ = s.up.conn.Close()
		}
		_ = s.conn.Close()
		close(s.ended)
	})
	return ended
}

// releaseUpstream, once both loops have returned after detach, resets the
// upstream session and returns it to the pool, or closes it when it was
// not left idle at a message boundary or the reset does not answer as an
// idle session does. The reset runs on its own goroutine (the engine waits
// for it at shutdown), so the session's end is not delayed by it.
func (s *relay) releaseUpstream() {
	up, e := s.up, s.engine
	if s.lastUp != 'Z' || s.lastTx != 'I' || !s.up.r.atBoundary() {
		_ = up.conn.Close()
		return
	}
	key, log := s.poolKey, s.log
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		protocols.GrowStack()
		if err := up.reset(e.set.ConnectTimeout); err != nil {
			log.Debug("upstream session not kept", "err", err)
			_ = up.conn.Close()
			return
		}
		e.pool.put(key, up)
	}()
}

var errSessionEnded = errors.New("session ended")

// cancelRequested serves a client's CancelRequest: a command held for review
// is withdrawn; otherwise the cancel goes to the upstream session, which
// may be running an earlier command.
func (s *relay) cancelRequested() {
	if s.flow.Cancel() {
		return
	}
	if err := s.up.cancel(s.engine.set.ConnectTimeout); err != nil {
		s.log.Warn("forwarding cancel request failed", "err", err)
	}
}

// notifyHeld tells the client its command waits for approval (client
// reader, inside Check): what was pipelined before it may run meanwhile.
func (s *relay) notifyHeld(msg string) {
	_ = s.up.w.Flush()
	_ = s.writeClient(appendNotice(nil, msg), true)
}

// writeClient writes frames to the client under the writer lock.
func (s *relay) writeClient(b []byte, flush bool) error {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.clientOut == nil {
		return errSessionEnded
	}
	if _, err := s.clientOut.Write(b); err != nil {
		return err
	}
	if flush {
		return s.clientOut.Flush()
	}
	return nil
}
