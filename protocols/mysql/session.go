package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// upstreamBuffer is the size of the upstream reader's buffer: result rows
// are the bulk of what a session reads.
const upstreamBuffer = 64 << 10

// relay is one client session relayed to one upstream session.
type relay struct {
	engine *Engine
	conn   net.Conn // the client's
	up     *wire.Upstream
	flow   *session.Session
	log    *slog.Logger
	// results is the flow's result path (upstream reader only).
	results *session.Results
	// id is the connection id the client was given; caps the flags both
	// sessions negotiated.
	id   uint32
	caps uint32

	clientR  *transport.Reader // client reader only
	clientIn *wire.PacketReader
	clientMu sync.Mutex // guards clientOut and outSeq
	// clientOut is nil once the session has ended.
	clientOut *transport.Writer
	// outSeq is the sequence id after the last packet written to the
	// client, for an error Airlock sends when it ends the session.
	outSeq uint8
	// status is the server status of the upstream's last OK or EOF, for
	// Airlock's own OK packets (upstream reader writes, client reader
	// reads).
	status atomic.Uint32
	// quitting says the client sent COM_QUIT, relayed upstream, which
	// answers it by closing the connection.
	quitting atomic.Bool

	upMu  sync.Mutex // guards upOut: the client reader writes commands, the upstream reader refuses file requests
	upOut *transport.Writer
	upR   *transport.Reader  // upstream reader only
	upIn  *wire.PacketReader // upstream reader only

	pending *pendingQueue
	stmts   statements
	// file is set while the client sends a file the upstream asked for.
	file fileState

	cl  clientState // client reader only
	res resultState // upstream reader only

	// progress counts upstream packets when a query timeout is set.
	progress atomic.Uint64

	// poolKey is set when the upstream session may be kept for another
	// client after a clean COM_QUIT (pool.go); keepUp says the session
	// ended that way.
	poolKey string
	keepUp  bool
	// killMu guards kills, the KILLs of this session's upstream thread in
	// flight, and released, set once the upstream session is handed on:
	// a KILL sent then would reach the next client's command.
	killMu   sync.Mutex
	kills    int
	released bool

	ended     chan struct{}
	endOnce   sync.Once
	endReason string
}

// clientState is what the client reader keeps between commands.
type clientState struct {
	// lastRefused says the last COM_STMT_PREPARE was refused by Airlock:
	// the statement lastStatement names never reached the upstream.
	lastRefused bool
}

// fileState hands the client reader a LOAD DATA LOCAL exchange the upstream
// reader let through: the client's next packets are the file, up to an
// empty one.
type fileState struct {
	mu     sync.Mutex
	active bool
}

func (f *fileState) set(active bool) {
	f.mu.Lock()
	f.active = active
	f.mu.Unlock()
}

func (f *fileState) get() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func newRelay(e *Engine, conn net.Conn, up *wire.Upstream, flow *session.Session, id, caps uint32) *relay {
	s := &relay{
		engine: e, conn: conn, up: up, flow: flow, log: flow.Log, id: id, caps: caps,
		clientOut: transport.NewWriter(conn),
		upOut:     transport.NewWriter(up.Conn),
		pending:   newPendingQueue(),
		ended:     make(chan struct{}),
	}
	limit := int(e.set.MaxPacketSize)
	s.clientR = transport.NewReader(conn, 0)
	s.clientIn = wire.NewPacketReader(s.clientR, limit)
	s.upR = transport.NewReaderSize(up.Conn, upstreamBuffer, 0)
	s.upIn = wire.NewPacketReader(s.upR, limit)
	s.results = flow.Results(s)
	flow.SetHold(session.Hold{Watch: s.watchClient})
	return s
}

// run relays until either side ends.
func (s *relay) run(ctx context.Context) {
	// Deferred first, so it runs after unregister: no KILL finds the
	// session once its upstream may serve another client.
	defer func() {
		if s.keepUp {
			s.releaseUpstream()
		}
	}()
	defer s.engine.unregister(s)
	stop := context.AfterFunc(ctx, func() { s.terminate(shutdownError(), "airlock shutdown") })
	defer stop()
	upstream, client := s.upstreamLoop, func() { s.clientLoop(ctx) }
	if s.engine.relayOnly {
		upstream = func() { s.pipe(s.conn, s.up.Conn, "upstream closed") }
		client = func() { s.pipe(s.up.Conn, s.conn, "client disconnected") }
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		protocols.GrowStack()
		s.guard(upstream)
	}()
	s.guard(client)
	s.flow.Interrupt()
	<-upDone
	s.clientR.Release()
	s.clientMu.Lock()
	s.clientOut.Release()
	s.clientOut = nil // a late writer (a shutdown, a KILL) finds the session ended
	s.clientMu.Unlock()
	s.upMu.Lock()
	s.upOut.Release()
	s.upOut = nil
	s.upMu.Unlock()
	s.flow.Close(s.endReason)
}

// guard runs one of the session's loops; a panic (a bug some input
// reached) ends this session alone, with its stack logged, and its sockets
// closed so that the other loop returns too.
func (s *relay) guard(loop func()) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session ended by an internal error", "panic", r, "stack", string(debug.Stack()))
			s.terminate(myError(wire.CodeGateway, "Airlock ended the session after an internal error"), "internal error")
		}
	}()
	loop()
}

// terminate ends the session once: it sends e (if any) to the client, then
// closes both sockets so both goroutines return. The session is marked
// ended first: a loop whose read fails on a socket closed here then knows
// the session is over, and takes the failure for neither a lost upstream
// nor a client gone.
func (s *relay) terminate(e *mysql.MyError, reason string) { s.endSession(e, reason, false) }

// detach ends the session after the client's COM_QUIT without closing the
// upstream session, which run then resets for reuse: the upstream reader
// is woken by a past read deadline and returns. It reports false when the
// session had already ended another way.
func (s *relay) detach(reason string) bool { return s.endSession(nil, reason, true) }

// endSession ends the session once, as terminate or detach; it reports
// whether this call was the one that ended it.
func (s *relay) endSession(e *mysql.MyError, reason string, keepUpstream bool) bool {
	ended := false
	s.endOnce.Do(func() {
		ended = true
		s.endReason = reason
		if keepUpstream {
			// Written only by detach's one caller, the client reader on
			// run's goroutine, which reads it once both loops are done;
			// terminate, called from any goroutine, leaves it alone.
			s.keepUp = true
		}
		close(s.ended)
		if e != nil {
			s.sendFinal(e, s.pending.busy(), 0)
		}
		s.flow.Interrupt()
		if keepUpstream {
			_ = s.up.Conn.SetReadDeadline(time.Unix(1, 0))
		} else {
			_ = s.up.Conn.Close()
		}
		_ = s.conn.Close()
		s.pending.wake()
	})
	return ended
}

// sendFinal writes the error that ends the session. A client waiting for
// an answer (busy) reads it in its place; an idle one reads it (at
// sequence id idleSeq) as the answer to the command it sends, then sees
// the connection end.
func (s *relay) sendFinal(e *mysql.MyError, busy bool, idleSeq uint8) {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.clientOut == nil {
		return
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	seq := idleSeq
	if busy {
		seq = max(s.outSeq, 1)
	}
	_, _ = s.clientOut.Write(errPacket(seq, e))
	_ = s.clientOut.Flush()
}

// lingerOnError ends the session after a packet it refused to read: the
// error is sent, then what the client is still sending is read and dropped
// for a moment, so that the client reads the error rather than a reset
// connection.
func (s *relay) lingerOnError(e *mysql.MyError, reason string) {
	s.sendFinal(e, s.pending.busy(), 1)
	_ = s.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.CopyN(io.Discard, s.conn, 1<<30)
	s.terminate(nil, reason)
}

func (s *relay) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

var errSessionEnded = errors.New("session ended")

// writeClient writes framed packets to the client under the writer lock.
func (s *relay) writeClient(b []byte, flush bool) error {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.clientOut == nil {
		return errSessionEnded
	}
	if _, err := s.clientOut.Write(b); err != nil {
		return err
	}
	s.outSeq = seqAfter(b, s.outSeq)
	if flush {
		return s.clientOut.Flush()
	}
	return nil
}

// seqAfter returns the sequence id after the last of the framed packets in
// b (prev when b holds none).
func seqAfter(b []byte, prev uint8) uint8 {
	for off := 0; off+4 <= len(b); {
		prev = b[off+3] + 1
		off += 4 + (int(b[off]) | int(b[off+1])<<8 | int(b[off+2])<<16)
	}
	return prev
}

// writeClientNow writes an answer of Airlock's own and flushes it.
func (s *relay) writeClientNow(b []byte) error { return s.writeClient(b, true) }

func (s *relay) flushClient() error {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.clientOut == nil {
		return errSessionEnded
	}
	return s.clientOut.Flush()
}

// writeUpstream writes framed packets to the upstream under its lock,
// flushing when flush says so.
func (s *relay) writeUpstream(b []byte, flush bool) error {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if s.upOut == nil {
		return errSessionEnded
	}
	if _, err := s.upOut.Write(b); err != nil {
		return err
	}
	if flush {
		return s.upOut.Flush()
	}
	return nil
}

func (s *relay) flushUpstream() error {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if s.upOut == nil {
		return errSessionEnded
	}
	return s.upOut.Flush()
}

// killUpstream asks the upstream to stop what the session runs (query) or
// to end the session, over a login of its own, as a client's KILL does.
func (s *relay) killUpstream(query bool) error {
	what := "CONNECTION"
	if query {
		what = "QUERY"
	}
	if !s.killing() {
		return nil // the session has ended and its upstream serves another client
	}
	defer s.killed()
	e := s.engine
	ctx, cancel := context.WithTimeout(context.Background(), e.set.ConnectTimeout)
	defer cancel()
	up, err := wire.Dial(ctx, dialConfig(s.flow.Conn, 0, 0, map[string]string{"_client_name": "airlock", "airlock_kill": "1"}))
	if err != nil {
		return err
	}
	defer quit(up.Conn)
	_ = up.Conn.SetDeadline(time.Now().Add(e.set.ConnectTimeout))
	text := fmt.Sprintf("KILL %s %d", what, s.up.ConnectionID)
	if _, err := wire.WritePacket(up.Conn, 0, wire.AppendQuery(nil, up.Capabilities, []byte(text))); err != nil {
		return err
	}
	p, err := wire.ReadPacket(up.Conn, 1<<16)
	if err != nil {
		return err
	}
	if wire.IsERR(p.Payload) {
		if me, perr := wire.ParseERR(p.Payload); perr == nil && me.Code != codeNoThread {
			return me
		}
	}
	return nil
}

// killInBackground kills what the session runs upstream without holding up
// the caller; the engine waits for it at shutdown.
func (s *relay) killInBackground(query bool) {
	e := s.engine
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := s.killUpstream(query); err != nil {
			s.log.Warn("killing the upstream's command failed", "err", err)
		}
	}()
}

// pipeBuffer is the size of each direction's buffer in mode relay.
const pipeBuffer = 32 << 10

// pipe copies bytes from src to dst untouched until either side ends, then
// ends the session with reason (mode relay: nothing is decoded after the
// login, so a drain ends the session at once).
func (s *relay) pipe(dst io.Writer, src io.Reader, reason string) {
	buf := make([]byte, pipeBuffer)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				s.terminate(nil, reason)
				return
			}
		}
		if err != nil {
			if isTimeout(err) && s.engine.draining.Load() {
				reason = "airlock shutdown"
			}
			s.terminate(nil, reason)
			return
		}
	}
}
