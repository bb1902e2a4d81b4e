package mysql

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// watchClient notices a client that goes away while its command is held
// (the client loop is blocked in the check meanwhile). It reads ahead
// without consuming: what the client sent behind the held command is left
// for the loop, and a COM_QUIT among it, or the end of input, calls gone.
// A client that fills the buffer is noticed at the hold's end.
func (s *relay) watchClient(gone func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := s.clientR
		seen := 0 // bytes already looked at: whole packets
		for {
			b, err := r.Peek(r.Buffered() + 1)
			for len(b)-seen >= 4 {
				n := int(b[seen]) | int(b[seen+1])<<8 | int(b[seen+2])<<16
				if seen+4+n > len(b) {
					break
				}
				if n == 1 && b[seen+3] == 0 && b[seen+4] == mysql.COM_QUIT {
					gone()
					return
				}
				seen += 4 + n
			}
			var ne net.Error
			switch {
			case err == nil:
			case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, bufio.ErrBufferFull):
				return
			default:
				gone()
				return
			}
		}
	}()
	return func() {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = s.conn.SetReadDeadline(time.Time{})
	}
}
