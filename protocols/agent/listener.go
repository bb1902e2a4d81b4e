package agent

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// sniffListener serves TLS and plain HTTP on one port, as the other
// listeners offer TLS without requiring it: a connection whose first byte
// starts a TLS handshake (0x16) is wrapped in tls.Server. The first byte
// is read on the connection's own goroutine, so a silent client delays
// nobody; it has the handshake timeout to speak.
type sniffListener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	err     error
}

func newSniffListener(ln net.Listener, config *tls.Config, timeout time.Duration) *sniffListener {
	l := &sniffListener{Listener: ln, config: config, timeout: timeout, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.accept()
	return l
}

func (l *sniffListener) accept() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			_ = l.closeWith(err)
			return
		}
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	br := bufio.NewReaderSize(c, 1024)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == 0x16 && l.config != nil {
		out = tls.Server(out, l.config)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// Accept implements net.Listener.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close implements net.Listener.
func (l *sniffListener) Close() error { return l.closeWith(net.ErrClosed) }

// closeWith closes the listener; Accept returns err from then on.
func (l *sniffListener) closeWith(err error) error {
	var cerr error
	l.once.Do(func() {
		l.err = err
		close(l.done)
		cerr = l.Listener.Close()
	})
	return cerr
}

// peekedConn reads through the reader that peeked its first byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
