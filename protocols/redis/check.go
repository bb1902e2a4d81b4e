package redis

import (
	"bufio"
	"context"
	"errors"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// errStop ends the client loop quietly: the session is ending already.
var errStop = errors.New("stop")

// errRecording ends the client loop after telling the client.
var errRecording = errors.New("recording failed")

// check runs the session flow's check. A nil error with a refusal text
// means the command is refused and the session goes on.
func (s *relay) check(ctx context.Context, cmd *protocols.Command) (refusal string, err error) {
	dec, err := s.flow.Check(ctx, cmd)
	switch {
	case err == nil && dec.Action == protocols.Allow:
		return "", nil
	case err == nil:
		return refusalText(dec), nil
	case errors.Is(err, session.ErrCanceled):
		return "ERR the command was withdrawn while it waited for approval; it did not run", nil
	case errors.Is(err, session.ErrRecordingFailed):
		s.log.Error("command could not be recorded; ending session", "err", err)
		return "", errRecording
	default:
		s.shuttingDown(err)
		return "", errStop
	}
}

// watchClient notices a client that goes away while its command is held
// (the client loop is blocked in the check meanwhile). It reads ahead
// without consuming, so what the client pipelined behind the held command
// stays for the loop; the end of input calls gone. A client that fills the
// buffer is noticed at the hold's end.
func (s *relay) watchClient(gone func()) (stop func()) {
	done := make(chan struct{})
	r := s.in
	go func() {
		defer close(done)
		for {
			_, err := r.Peek(r.Buffered() + 1)
			switch {
			case err == nil:
			case isTimeout(err) || errors.Is(err, bufio.ErrBufferFull):
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
