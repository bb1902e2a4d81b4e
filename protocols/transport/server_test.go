package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// accepted is one result of fakeListener.Accept.
type accepted struct {
	conn net.Conn
	err  error
}

// fakeListener hands out what the test sends it, and net.ErrClosed once
// closed.
type fakeListener struct {
	next      chan accepted
	closed    chan struct{}
	closeOnce sync.Once
}

func newFakeListener() *fakeListener {
	return &fakeListener{next: make(chan accepted, 16), closed: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	case a := <-l.next:
		return a.conn, a.err
	}
}

func (l *fakeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// pipe returns a server side to hand to the listener and the client's.
func pipe(t *testing.T) (server, client net.Conn) {
	server, client = net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// fakeClock follows Serve's backoff without waiting it out: each sleep
// moves the clock on by its duration.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	delays []time.Duration
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delays = append(c.delays, d)
	c.t = c.t.Add(d)
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// recordingHandler keeps the count attribute of each log record, by message.
type recordingHandler struct {
	mu     sync.Mutex
	counts map[string][]int64
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "errors" || a.Key == "dropped" {
			h.counts[r.Message] = append(h.counts[r.Message], a.Value.Int64())
		}
		return true
	})
	return nil
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// TestServeRetries checks that temporary accept errors, a full file table
// among them, are retried with a backoff from 5 ms doubling to 1 s, logged
// at most once a second, and that the loop then accepts.
func TestServeRetries(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"too many open files", acceptErr(syscall.EMFILE)},
		{"file table full", acceptErr(syscall.ENFILE)},
		{"connection aborted", acceptErr(syscall.ECONNABORTED)},
		{"timeout", &net.OpError{Op: "accept", Net: "tcp", Err: os.ErrDeadlineExceeded}},
	}
	wantDelays := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range wantDelays {
		wantDelays[i] *= time.Millisecond
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := newFakeListener()
			for range wantDelays {
				ln.next <- accepted{err: tc.err}
			}
			server, client := pipe(t)
			ln.next <- accepted{conn: server}
			clock := &fakeClock{t: time.Unix(1e9, 0)}
			logs := &recordingHandler{counts: map[string][]int64{}}
			s := &Server{
				Handler: func(_ context.Context, c net.Conn, _ *Admission) { _, _ = c.Write([]byte("hi")) },
				Log:     slog.New(logs), sleep: clock.sleep, now: clock.now,
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx, ln) }()

			got := make([]byte, 2)
			if _, err := io.ReadFull(client, got); err != nil || string(got) != "hi" {
				t.Fatalf("client read %q %v after the errors", got, err)
			}
			cancel()
			if err := <-served; err != nil {
				t.Fatalf("Serve: %v", err)
			}
			s.Wait()
			if !slices.Equal(clock.delays, wantDelays) {
				t.Errorf("backoff %v, want %v", clock.delays, wantDelays)
			}
			// Errors at 0, 5, 15, ... 635 ms, 1.275 s and 2.275 s: logged at
			// 0 (1 error), 1.275 s (8 more) and 2.275 s (1 more).
			if got := logs.counts["accept failed, retrying"]; !slices.Equal(got, []int64{1, 8, 1}) {
				t.Errorf("logged error counts %v, want [1 8 1]", got)
			}
		})
	}
}

// TestServePermanentError checks that an accept error that is not
// temporary ends Serve with it, closing the listener and the connections
// still unauthenticated.
func TestServePermanentError(t *testing.T) {
	ln := newFakeListener()
	server, client := pipe(t)
	started := make(chan struct{})
	ln.next <- accepted{conn: server}
	s := &Server{Handler: func(_ context.Context, c net.Conn, _ *Admission) {
		close(started)
		_, _ = c.Read(make([]byte, 1))
	}}
	boom := errors.New("boom")
	go func() { <-started; ln.next <- accepted{err: boom} }()
	err := s.Serve(context.Background(), ln)
	if !errors.Is(err, boom) {
		t.Fatalf("Serve: %v, want %v", err, boom)
	}
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("unauthenticated client read %v, want EOF", err)
	}
	select {
	case <-ln.closed:
	default:
		t.Error("listener left open")
	}
	s.Wait()
}

// TestServeConfig checks that a Server with bad fields names them.
func TestServeConfig(t *testing.T) {
	s := &Server{MaxUnauthenticated: -1, HandshakeTimeout: -time.Second}
	err := s.Serve(context.Background(), newFakeListener())
	for _, field := range []string{"Handler", "MaxUnauthenticated", "HandshakeTimeout"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
}

// TestServeEndsWithContext checks that cancelling ctx ends Serve with nil,
// closes the listener and the unauthenticated connections, and that Wait
// returns after every handler has.
func TestServeEndsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	started := make(chan struct{}, 2)
	s := &Server{
		OnStart: func() { note("start") },
		Handler: func(ctx context.Context, c net.Conn, a *Admission) {
			note("handle")
			r := NewReader(c, 0)
			defer r.Release()
			line, _ := r.ReadSlice('\n')
			if string(line) == "AUTH ok\n" && a.Authenticated() {
				started <- struct{}{}
				<-ctx.Done() // an engine ends its sessions when told to
				note("session ended")
				return
			}
			note("unauthenticated ended")
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	authed, _ := net.Dial("tcp", ln.Addr().String())
	defer authed.Close()
	_, _ = authed.Write([]byte("AUTH ok\n"))
	<-started
	silent, _ := net.Dial("tcp", ln.Addr().String())
	defer silent.Close()
	for s.Unauthenticated() == 0 { // the silent one is queued
		time.Sleep(time.Millisecond)
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	s.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(events)
	want := []string{"handle", "handle", "session ended", "start", "start", "unauthenticated ended"}
	if !slices.Equal(events, want) {
		t.Errorf("events %v, want %v", events, want)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener still accepts")
	}
}

// TestFlood floods a real listener with silent connections under a cap of
// 16, then connects a real client: it gets in, the connections dropped for
// it are the oldest, and no more than 16 are ever unauthenticated.
func TestFlood(t *testing.T) {
	const limit, flood = 16, 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	s := &Server{MaxUnauthenticated: limit}
	sample := func() {
		n := int64(s.Unauthenticated())
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
	}
	drops := make(chan struct{}, flood+1)
	closed := make(chan string, flood+1) // remote addresses of dropped conns
	s.OnDrop = func() { sample(); drops <- struct{}{} }
	s.Handler = func(_ context.Context, c net.Conn, a *Admission) {
		sample()
		r := NewReader(c, 0)
		defer r.Release()
		line, err := r.ReadSlice('\n')
		if err != nil {
			closed <- c.RemoteAddr().String()
			return
		}
		if string(line) != "AUTH ok\n" || !a.Authenticated() {
			return
		}
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			_, _ = c.Write(line)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx, ln) }()

	var dialled []string
	for range flood {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dialled = append(dialled, c.LocalAddr().String())
	}
	for range flood - limit {
		<-drops
	}

	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, _ = client.Write([]byte("AUTH ok\necho me\n"))
	r := NewReader(client, 0)
	defer r.Release()
	if line, err := r.ReadSlice('\n'); err != nil || string(line) != "echo me\n" {
		t.Fatalf("client during the flood read %q %v", line, err)
	}
	<-drops
	client.Close()

	var got []string
	for range flood - limit + 1 {
		got = append(got, <-closed)
	}
	slices.Sort(got)
	want := slices.Clone(dialled[:flood-limit+1])
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dropped %d connections that were not the oldest %d", len(got), len(want))
	}
	if p := peak.Load(); p > limit {
		t.Errorf("%d connections unauthenticated at once, cap %d", p, limit)
	}
	if n := s.Unauthenticated(); n != limit-1 {
		t.Errorf("%d unauthenticated at the end, want the newest %d silent ones", n, limit-1)
	}
	cancel()
	s.Wait()
}

// TestHandshakeTimeout checks that a silent connection is cut at the
// handshake deadline and leaves the unauthenticated ones.
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	s := &Server{
		HandshakeTimeout: 20 * time.Millisecond,
		Handler: func(_ context.Context, c net.Conn, _ *Admission) {
			_, err := c.Read(make([]byte, 1))
			readErr <- err
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer s.Wait()
	defer cancel()
	go func() { _ = s.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("handler's read: %v, want the handshake deadline", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read %v, want EOF", err)
	}
	if n := s.Unauthenticated(); n != 0 {
		t.Errorf("%d unauthenticated after the timeout", n)
	}
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// TestAuthenticated checks that Authenticated takes the connection out of
// the queue, clears every deadline (the handshake's and the engine's own),
// and can be called again.
func TestAuthenticated(t *testing.T) {
	server, _ := pipe(t)
	conn := &deadlineConn{Conn: server}
	ln := newFakeListener()
	ln.next <- accepted{conn: conn}
	engineDeadline := time.Unix(2e9, 0)
	results := make(chan []bool, 1)
	s := &Server{Handler: func(_ context.Context, c net.Conn, a *Admission) {
		_ = c.SetDeadline(engineDeadline)
		results <- []bool{a.Authenticated(), a.Authenticated()}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = s.Serve(ctx, ln) }()
	got := <-results
	cancel()
	s.Wait()
	if !slices.Equal(got, []bool{true, true}) {
		t.Errorf("Authenticated twice: %v", got)
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if len(conn.deadlines) != 3 || conn.deadlines[0].IsZero() || !conn.deadlines[1].Equal(engineDeadline) || !conn.deadlines[2].IsZero() {
		t.Errorf("deadlines %v, want the handshake's, the engine's, then none", conn.deadlines)
	}
}

// TestAuthenticatedAfterDrop checks that a connection dropped for room is
// closed under its handler, and that Authenticated then says so, as often
// as it is asked.
func TestAuthenticatedAfterDrop(t *testing.T) {
	ln := newFakeListener()
	first, firstClient := pipe(t)
	second, _ := pipe(t)
	ln.next <- accepted{conn: first}
	var drops atomic.Int32
	proceed := make(chan struct{})
	results := make(chan []bool, 1)
	s := &Server{
		MaxUnauthenticated: 1,
		OnDrop:             func() { drops.Add(1); close(proceed) },
		Handler: func(_ context.Context, c net.Conn, a *Admission) {
			if c != first {
				return
			}
			ln.next <- accepted{conn: second}
			<-proceed
			results <- []bool{a.Authenticated(), a.Authenticated()}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = s.Serve(ctx, ln) }()
	got := <-results
	cancel()
	s.Wait()
	if !slices.Equal(got, []bool{false, false}) || drops.Load() != 1 {
		t.Errorf("Authenticated after the drop: %v, drops %d", got, drops.Load())
	}
	if _, err := firstClient.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("dropped client read %v, want EOF", err)
	}
}

// TestAdmissionRace races authentications with drops: each connection ends
// up either authenticated or dropped, never both, and never over the cap.
func TestAdmissionRace(t *testing.T) {
	const conns, limit = 200, 4
	ln := newFakeListener()
	var authed, drops atomic.Int32
	var over atomic.Bool
	s := &Server{MaxUnauthenticated: limit}
	s.OnDrop = func() { drops.Add(1) }
	s.Handler = func(_ context.Context, _ net.Conn, a *Admission) {
		if s.Unauthenticated() > limit {
			over.Store(true)
		}
		if a.Authenticated() {
			authed.Add(1)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	for range conns {
		server, _ := pipe(t)
		ln.next <- accepted{conn: server}
	}
	for authed.Load()+drops.Load() < conns {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-served
	s.Wait()
	if a, d := authed.Load(), drops.Load(); a+d != conns || over.Load() {
		t.Errorf("%d authenticated + %d dropped of %d; over the cap: %v", a, d, conns, over.Load())
	}
}

func TestCapFor(t *testing.T) {
	tests := []struct {
		nofile uint64
		want   int
	}{
		{0, 8}, {20, 8}, {64, 16}, {1024, 256}, {20000, 5000}, {1 << 40, 1 << 20}, {^uint64(0), 1 << 20},
	}
	for _, tc := range tests {
		if got := capFor(tc.nofile); got != tc.want {
			t.Errorf("capFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

// TestDefaultMaxFollowsRlimit lowers the process's open-file limit and
// checks that the default cap follows it. The limit is the whole test
// process's, so it is restored at once.
func TestDefaultMaxFollowsRlimit(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("no RLIMIT_NOFILE: %v", err)
	}
	lowered := old
	lowered.Cur = 200
	if old.Cur <= lowered.Cur || syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered) != nil {
		t.Skipf("cannot lower the limit from %d", old.Cur)
	}
	got := DefaultMax()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatalf("restore the open-file limit: %v", err)
	}
	if got != 50 {
		t.Errorf("DefaultMax under a limit of 200: %d, want 50", got)
	}
}

// TestTemporary checks which accept errors Serve retries.
func TestTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{acceptErr(syscall.EMFILE), true},
		{acceptErr(syscall.ENFILE), true},
		{acceptErr(syscall.ENOBUFS), true},
		{acceptErr(syscall.ECONNABORTED), true},
		{acceptErr(syscall.EINTR), true},
		{&net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{acceptErr(syscall.EBADF), false},
		{acceptErr(syscall.EINVAL), false},
		{io.EOF, false},
	}
	for _, tc := range tests {
		if got := temporary(tc.err); got != tc.want {
			t.Errorf("temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
