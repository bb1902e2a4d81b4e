package transport

import (
	"errors"
	"net"
	"syscall"
)

// IdleAndOpen reports whether an idle connection is still open with
// nothing unread: a server that ended the session (idle timeout, restart,
// a kill) has sent an error or closed the socket. The engines' upstream
// pools ask it before handing a kept session on. It peeks without
// blocking; Go's deadlines cannot express "poll once".
func IdleAndOpen(c net.Conn) bool {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn() // TLS: the question is about the socket
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true
	})
	return err == nil && open
}
