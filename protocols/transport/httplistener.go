package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"
)

// HTTPListener is a net.Listener for an http.Server that takes its
// connections through the shared accept loop (Server): temporary accept
// errors back off instead of ending the listener, connections that have not
// sent a byte yet are capped and timed out like any engine's unauthenticated
// ones, and a connection whose first byte starts a TLS handshake (0x16) is
// served TLS on the same port, as the other listeners offer TLS without
// requiring it. After its first byte a connection is the http.Server's: its
// header and idle timeouts apply.
type HTTPListener struct {
	addr   net.Addr
	config *tls.Config
	srv    *Server
	conns  chan net.Conn
	cancel context.CancelFunc
	served chan error
	once   sync.Once
}

// HTTPOptions are an HTTPListener's settings beyond its TLS configuration.
type HTTPOptions struct {
	// HandshakeTimeout bounds the wait for a connection's first byte.
	HandshakeTimeout time.Duration
	// MaxUnauthenticated caps connections that have not sent a byte
	// (0: DefaultMax).
	MaxUnauthenticated int
	// OnDrop is called when the oldest silent connection is dropped.
	OnDrop func()
	Log    *slog.Logger
}

// NewHTTPListener starts accepting on ln; Close stops it and closes ln.
func NewHTTPListener(ln net.Listener, config *tls.Config, o HTTPOptions) *HTTPListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &HTTPListener{addr: ln.Addr(), config: config, conns: make(chan net.Conn), cancel: cancel, served: make(chan error, 1)}
	l.srv = &Server{Handler: l.handle, HandshakeTimeout: o.HandshakeTimeout, MaxUnauthenticated: o.MaxUnauthenticated,
		OnDrop: o.OnDrop, Log: o.Log}
	go func() { l.served <- l.srv.Serve(ctx, ln) }()
	return l
}

// handle waits for a connection's first byte, hands it to Accept and waits
// until the http.Server has closed it: the accept loop closes a connection
// once its handler returns, and must not cut a request in flight.
func (l *HTTPListener) handle(ctx context.Context, c net.Conn, a *Admission) {
	br := bufio.NewReaderSize(c, 1024)
	first, err := br.Peek(1)
	if err != nil || !a.Authenticated() {
		return
	}
	hc := &handedConn{Conn: &peekedConn{Conn: c, r: br}, closed: make(chan struct{})}
	var out net.Conn = hc
	if first[0] == 0x16 && l.config != nil {
		out = tls.Server(hc, l.config)
	}
	select {
	case l.conns <- out:
	case <-ctx.Done():
		return
	}
	// The http.Server closes it, also at its Shutdown, which lets the
	// requests in flight finish first.
	<-hc.closed
}

// Accept implements net.Listener.
func (l *HTTPListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.served:
		l.served <- err // later calls see it too
		if err == nil {
			err = net.ErrClosed
		}
		return nil, err
	}
}

// Close implements net.Listener: it stops accepting and closes the
// connections that have not spoken; the http.Server closes its own.
func (l *HTTPListener) Close() error {
	l.once.Do(l.cancel)
	return nil
}

// Wait returns once every connection handed out has been closed.
func (l *HTTPListener) Wait() { l.srv.Wait() }

// Addr implements net.Listener.
func (l *HTTPListener) Addr() net.Addr { return l.addr }

// peekedConn reads through the reader that peeked its first byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// handedConn tells its handler when the http.Server has closed it.
type handedConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *handedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}
