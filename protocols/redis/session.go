package redis

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// relay is one client session relayed to one upstream connection.
type relay struct {
	engine  *Engine
	conn    net.Conn // the client's
	tls     bool     // the client's connection is encrypted
	up      *upstream
	flow    *session.Session
	results *session.Results // upstream reader only
	log     *slog.Logger

	// Client reader only: the client's input, its decoder and its state.
	in    *transport.Reader
	req   *resp.RequestDecoder
	state clientState
	// argBuf is scratch space for a command's arguments (newCommand).
	argBuf []byte
	names  nameCache

	// outMu guards out, the client's output; the upstream reader holds it
	// for a whole reply. out is nil once the session has ended.
	outMu sync.Mutex
	out   *transport.Writer

	pending pendingQueue
	// quit is set once QUIT was forwarded: the upstream then closes.
	quit atomic.Bool
	// reader is the upstream reader's state.
	reader readerState

	// progress counts upstream reply tokens when a query timeout is set.
	progress atomic.Uint64

	ended     chan struct{}
	endOnce   sync.Once
	endReason string
}

// clientState is what the client reader knows of the client's session.
type clientState struct {
	proto resp.Proto
	// multi is set between MULTI and EXEC or DISCARD; dirty when a
	// command of the transaction was refused, so that EXEC fails as Redis
	// fails it after a queueing error.
	multi, dirty bool
	// queued are the shapes of the transaction's commands, for masking
	// EXEC's reply.
	queued []shape
	// monitor is set once MONITOR was forwarded: the upstream streams
	// other clients' commands and answers nothing else in order.
	monitor bool
}

func newRelay(c *clientConn, up *upstream, flow *session.Session) *relay {
	c.owned = true
	s := &relay{
		engine: c.engine, conn: c.conn, tls: c.tls, up: up, flow: flow, log: flow.Log,
		in: c.in, req: c.req, out: c.out,
		state: clientState{proto: c.proto},
		ended: make(chan struct{}),
	}
	s.req.SetAuthenticated(true)
	s.results = flow.Results(nil)
	s.reader.init(s)
	flow.SetHold(session.Hold{Notify: s.held, Watch: s.watchClient})
	return s
}

// run relays until either side ends.
func (s *relay) run(ctx context.Context) {
	s.engine.register(s)
	defer s.engine.unregister(s)
	stop := context.AfterFunc(ctx, func() { s.end("airlock shutdown") })
	defer stop()
	upstream, client := s.upstreamLoop, func() { s.clientLoop(ctx) }
	if s.engine.relayOnly && s.startPipe() {
		upstream = func() { s.pipe(s.conn, s.up.r, "upstream closed") }
		client = func() { s.pipe(s.up.conn, s.in, "client disconnected") }
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		protocols.GrowStack()
		upstream()
	}()
	client()
	s.flow.Interrupt()
	<-upDone
	s.close(s.endReason)
}

// close releases what the session holds, once both loops have ended (or
// before they started).
func (s *relay) close(reason string) {
	s.end(reason)
	s.outMu.Lock()
	out := s.out
	s.out = nil // a late writer finds the session ended
	s.outMu.Unlock()
	if out != nil {
		out.Release()
	}
	if s.in != nil {
		s.in.Release()
		s.in = nil
	}
	s.flow.Close(s.endReason)
}

// end ends the session once: it closes both sockets so both goroutines
// return.
func (s *relay) end(reason string) {
	s.endOnce.Do(func() {
		s.endReason = reason
		s.flow.Interrupt()
		_ = s.up.conn.Close()
		_ = s.conn.Close()
		close(s.ended)
	})
}

// fail ends the session after telling the client why, when no reply is
// half written.
func (s *relay) fail(msg, reason string) {
	// The upstream reader holds the lock for a whole reply: then the
	// client gets no message, since it would land inside the reply.
	if s.outMu.TryLock() {
		if s.out != nil {
			_ = s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = s.out.Write(resp.AppendError(nil, msg))
			_ = s.out.Flush()
		}
		s.outMu.Unlock()
	}
	s.end(reason)
}

func (s *relay) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// held is the hold's notice: Redis has no way to tell a client that its
// command waits, so nothing is written; what was forwarded before the held
// command is flushed upstream so that it runs meanwhile, and the replies
// already written reach the client.
func (s *relay) held(string) {
	_ = s.up.w.Flush()
	s.outMu.Lock()
	if s.out != nil {
		_ = s.out.Flush()
	}
	s.outMu.Unlock()
}

// answer writes a reply Airlock makes itself (client reader): at once when
// the upstream owes no reply to an earlier command, else queued behind
// those replies for the upstream reader to write.
func (s *relay) answer(b []byte) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.out == nil {
		return errSessionEnded
	}
	if s.pending.pushLocal(b) {
		return nil
	}
	if _, err := s.out.Write(b); err != nil {
		return err
	}
	if s.in.Buffered() == 0 {
		return s.out.Flush()
	}
	return nil
}

func (s *relay) answerError(msg string) error { return s.answer(resp.AppendError(nil, msg)) }

// pipeBuffer is the size of each direction's buffer in mode relay.
const pipeBuffer = 32 << 10

// startPipe flushes what the login left buffered either way before mode
// relay copies bytes untouched; false ends the session.
func (s *relay) startPipe() bool {
	s.outMu.Lock()
	err := s.out.Flush()
	s.outMu.Unlock()
	if err == nil {
		err = s.up.w.Flush()
	}
	if err != nil {
		s.end("client disconnected")
		return false
	}
	return true
}

// pipe copies bytes from src to dst untouched until either side ends, then
// ends the session with reason (mode relay: nothing is decoded after the
// login, so a drain ends the session at once).
func (s *relay) pipe(dst io.Writer, src io.Reader, reason string) {
	buf := make([]byte, pipeBuffer)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				s.end(reason)
				return
			}
		}
		if err != nil {
			if isTimeout(err) && s.engine.draining.Load() {
				reason = "airlock shutdown"
			}
			s.end(reason)
			return
		}
	}
}
