package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// DefaultHandshakeTimeout bounds how long a connection may stay
// unauthenticated when Server.HandshakeTimeout is zero.
const DefaultHandshakeTimeout = 10 * time.Second

// Accept retries back off from minBackoff, doubling up to maxBackoff, as
// net/http's Server does: short enough that a brief shortage of file
// descriptors costs little, long enough that a lasting one does not spin.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// Server accepts connections and runs Handler for each. Set its fields
// before Serve; it must not be copied after.
type Server struct {
	// Handler serves one connection on its own goroutine and calls
	// a.Authenticated once the client has proved who it is. The conn is
	// closed after Handler returns. A conn dropped for room or at shutdown
	// is closed under the handler, which then sees its reads fail.
	Handler func(ctx context.Context, conn net.Conn, a *Admission)
	// OnStart, if set, is called first on each handler's goroutine (an
	// engine grows the goroutine's stack there, see protocols.GrowStack).
	OnStart func()
	// OnDrop, if set, is called each time the oldest unauthenticated
	// connection is closed to make room for a new one.
	OnDrop func()
	// MaxUnauthenticated caps connections that have not authenticated yet;
	// 0 takes a quarter of the process's open-file limit (DefaultMax).
	MaxUnauthenticated int
	// HandshakeTimeout is how long a connection may take to authenticate
	// (0: DefaultHandshakeTimeout). It is a deadline on the conn, cleared by
	// Authenticated; a handler must not extend it before then.
	HandshakeTimeout time.Duration
	// Log receives accept errors and drops, at most once a second each.
	Log *slog.Logger

	// sleep and now are replaced by tests, to follow the backoff without
	// waiting it out.
	sleep func(ctx context.Context, d time.Duration)
	now   func() time.Time

	handlers sync.WaitGroup
	mu       sync.Mutex
	waiting  queue // unauthenticated connections, oldest first
}

// Serve accepts connections on ln until ctx ends, then closes ln and the
// connections still unauthenticated, and returns nil. Temporary accept
// errors are retried; any other error is returned, after the same closing.
// Serve does not wait for handlers: the caller ends its sessions, then
// calls Wait.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.check(); err != nil {
		return err
	}
	limit := s.MaxUnauthenticated
	if limit == 0 {
		limit = DefaultMax()
	}
	timeout := cmp.Or(s.HandshakeTimeout, DefaultHandshakeTimeout)
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sleep, now := s.sleep, s.now
	if sleep == nil {
		sleep, now = sleepContext, time.Now
	}

	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer s.dropAll()
	defer ln.Close()

	var delay time.Duration
	var errLog, dropLog throttle
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			delay = min(max(2*delay, minBackoff), maxBackoff)
			if n, ok := errLog.allow(now()); ok {
				log.Warn("accept failed, retrying", "err", err, "retry_in", delay, "errors", n)
			}
			sleep(ctx, delay)
			continue
		}
		delay = 0
		a, dropped := s.admit(conn, limit, timeout)
		if dropped {
			if n, ok := dropLog.allow(now()); ok {
				log.Warn("too many unauthenticated connections, closing the oldest", "limit", limit, "dropped", n)
			}
		}
		s.handlers.Go(func() { s.run(ctx, conn, a) })
	}
}

func (s *Server) check() error {
	var errs []error
	if s.Handler == nil {
		errs = append(errs, errors.New("transport server: Handler: missing"))
	}
	if s.MaxUnauthenticated < 0 {
		errs = append(errs, fmt.Errorf("transport server: MaxUnauthenticated: %d is negative; 0 takes the default", s.MaxUnauthenticated))
	}
	if s.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("transport server: HandshakeTimeout: %s is negative; 0 takes the default", s.HandshakeTimeout))
	}
	return errors.Join(errs...)
}

// run is the goroutine of one connection.
func (s *Server) run(ctx context.Context, conn net.Conn, a *Admission) {
	if s.OnStart != nil {
		s.OnStart()
	}
	defer conn.Close()
	defer a.leave()
	s.Handler(ctx, conn, a)
}

// Wait returns once every handler has returned. Call it after Serve has.
func (s *Server) Wait() { s.handlers.Wait() }

// Unauthenticated returns how many connections have not authenticated yet,
// for a gauge.
func (s *Server) Unauthenticated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting.n
}

// temporary reports whether an accept error may clear by itself: a full
// file table (EMFILE, ENFILE) or kernel memory, a connection reset before it
// was accepted, an interrupted call, a timeout. net/http retries the same.
func temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// throttle lets a repeating log line through at most once a second, and
// counts the occurrences since the last one it let through.
type throttle struct {
	last  time.Time
	count int
}

func (t *throttle) allow(now time.Time) (count int, ok bool) {
	t.count++
	if !t.last.IsZero() && now.Sub(t.last) < time.Second {
		return 0, false
	}
	count, t.count, t.last = t.count, 0, now
	return count, true
}
