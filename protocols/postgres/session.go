package postgres

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
)

// session is one client session relayed to one upstream session.
type session struct {
	e    *Engine
	conn net.Conn // client
	up   *upstream
	c    *protocols.Connection
	ps   *protocols.Session
	log  *slog.Logger

	pid    uint32 // handed to the client in BackendKeyData
	secret []byte

	// cr is read by the client reader goroutine only. The upstream side
	// is buffered by up.r (upstream reader goroutine only) and up.w.
	cr *frameReader

	cwMu sync.Mutex // guards cw and cbuf
	cw   *bufio.Writer

	pend  pendingQueue
	nonce string            // makes refusal statements unguessable
	seq   uint64            // client reader only
	names map[string]string // client reader only: interned names
	ct    *clientTrack      // client reader only

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

	holdMu     sync.Mutex
	holdCancel context.CancelCauseFunc // set while a command is checked
	// holdCtx is the context of checks, reused until it is cancelled, and
	// holdStop cancels it (client reader only).
	holdCtx  context.Context
	holdStop context.CancelCauseFunc

	ended     chan struct{}
	endOnce   sync.Once
	endReason string
}

func newSession(e *Engine, conn net.Conn, up *upstream, c *protocols.Connection, id protocols.Identity) *session {
	var n [6]byte
	_, _ = rand.Read(n[:])
	s := &session{
		e: e, conn: conn, up: up, c: c,
		cr:    clientReader(conn, e.opt.MaxMessageSize),
		cw:    clientWriter(conn),
		nonce: hex.EncodeToString(n[:]),
		ended: make(chan struct{}),
		// The upstream's last message was its startup's ReadyForQuery.
		lastUp: 'Z', lastTx: up.txStatus,
	}
	info := protocols.SessionInfo{
		Protocol: protocols.Postgres, Identity: id, Connection: c.Name,
		ClientAddr: conn.RemoteAddr().String(), Start: time.Now().UTC(),
	}
	s.ps = &protocols.Session{Info: info, Conn: c, Recorder: protocols.NopRecorder{}}
	return s
}

// open registers the session, opens its recording and completes the
// client's startup with the upstream's parameters and Airlock's own key.
func (s *session) open(st *startup) error {
	e := s.e
	e.register(s)
	s.ps.Info.ID = sessionID(s.ps.Info.Start)
	s.log = protocols.LazyWith(e.log, "session", s.ps.Info.ID, "identity", s.ps.Info.Identity.Name, "connection", s.c.Name)
	s.ps.Log = s.log
	if e.opt.Recorders != nil && !e.opt.Relay {
		rec, err := e.opt.Recorders.Open(s.ps.Info)
		if err != nil {
			e.unregister(s)
			s.log.Error("recording unavailable, session refused", "err", err)
			return fatal(codeIOError, "session recording is unavailable; Airlock does not run sessions unrecorded")
		}
		s.ps.Recorder = rec
	}
	if s.c.Masking != nil && !e.opt.Relay {
		s.ps.Masker = s.c.Masking.For(s.ps.Info.Identity)
	}
	out, _ := (&pgproto3.AuthenticationOk{}).Encode(nil)
	keys := make([]string, 0, len(s.up.params))
	for k := range s.up.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out, _ = (&pgproto3.ParameterStatus{Name: k, Value: s.up.params[k]}).Encode(out)
	}
	out, _ = (&pgproto3.BackendKeyData{ProcessID: s.pid, SecretKey: s.secret}).Encode(out)
	out = appendReadyForQuery(out, s.up.txStatus)
	if _, err := s.conn.Write(out); err != nil {
		e.unregister(s)
		_ = s.ps.Recorder.Close("client went away during startup")
		return err
	}
	s.log.Info("session started", "tls", st.tls)
	return nil
}

// sessionID is sortable by start time and unique within the process.
func sessionID(t time.Time) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return t.Format("20060102T150405Z") + "-" + hex.EncodeToString(r[:])
}

// run relays until either side ends.
func (s *session) run(ctx context.Context) {
	m := s.e.opt.Metrics
	m.SessionOpened(protocols.Postgres, s.c.Name)
	defer m.SessionClosed(protocols.Postgres, s.c.Name)
	defer s.e.unregister(s)
	if active := s.e.opt.Active; active != nil {
		defer active()()
	}
	stop := context.AfterFunc(ctx, func() {
		s.terminate(fatal(codeAdminShutdown, "terminating connection because Airlock is shutting down"), "airlock shutdown")
	})
	defer stop()

	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		protocols.GrowStack()
		s.upstreamLoop()
	}()
	s.clientLoop(ctx)
	putClientReader(s.cr)
	s.cr = nil
	if s.holdStop != nil {
		s.holdStop(nil)
	}
	<-upDone
	if s.keepUp {
		s.releaseUpstream()
	}
	s.cwMu.Lock()
	putClientWriter(s.cw)
	s.cw = nil // a late writer (a shutdown, a review) finds the session ended
	s.cwMu.Unlock()
	reason := s.endReason
	if err := s.ps.Recorder.Close(reason); err != nil {
		s.log.Error("closing recording failed", "err", err)
	}
	s.log.Info("session ended", "reason", reason)
}

// terminate ends the session once: it sends pe (if any) to the client, then
// closes both sockets so both goroutines return.
func (s *session) terminate(pe *pgError, reason string) { s.end(pe, reason, false) }

// detach ends the session after the client's Terminate without closing
// the upstream session, which run then resets for reuse: the upstream
// reader is woken by a past read deadline and returns, leaving the stream
// at a message boundary. It reports false when the session had already
// ended another way.
func (s *session) detach(reason string) bool { return s.end(nil, reason, true) }

// end ends the session once, as terminate or detach; it reports whether
// this call was the one that ended it.
func (s *session) end(pe *pgError, reason string, keepUpstream bool) bool {
	ended := false
	s.endOnce.Do(func() {
		ended = true
		s.endReason = reason
		s.keepUp = keepUpstream
		if pe != nil {
			s.cwMu.Lock()
			if s.cw != nil {
				_ = s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
				_, _ = s.cw.Write(pe.encode(nil))
				_ = s.cw.Flush()
			}
			s.cwMu.Unlock()
		}
		s.holdMu.Lock()
		if s.holdCancel != nil {
			s.holdCancel(errSessionEnded)
		}
		s.holdMu.Unlock()
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
func (s *session) releaseUpstream() {
	up, e := s.up, s.e
	if s.lastUp != 'Z' || s.lastTx != 'I' || !s.up.r.atBoundary() {
		_ = up.conn.Close()
		return
	}
	key, log := s.poolKey, s.log
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		protocols.GrowStack()
		if err := up.reset(e.opt.ConnectTimeout); err != nil {
			log.Debug("upstream session not kept", "err", err)
			_ = up.conn.Close()
			return
		}
		e.pool.put(key, up)
	}()
}

var (
	errSessionEnded    = errors.New("session ended")
	errCancelRequested = errors.New("cancel requested by the client")
	errClientGone      = errors.New("client disconnected")
)

// cancelRequested serves a client's CancelRequest: a command held for review
// is withdrawn; otherwise the cancel goes to the upstream session.
func (s *session) cancelRequested() {
	s.holdMu.Lock()
	hc := s.holdCancel
	s.holdMu.Unlock()
	if hc != nil {
		hc(errCancelRequested)
		return
	}
	if err := s.up.cancel(s.e.opt.ConnectTimeout); err != nil {
		s.log.Warn("forwarding cancel request failed", "err", err)
	}
}

// writeClient writes frames to the client under the writer lock.
func (s *session) writeClient(b []byte, flush bool) error {
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	if s.cw == nil {
		return errSessionEnded
	}
	if _, err := s.cw.Write(b); err != nil {
		return err
	}
	if flush {
		return s.cw.Flush()
	}
	return nil
}
