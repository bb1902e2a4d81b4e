package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
	"github.com/jackc/pgx/v5/pgproto3"
)

// verdict is what check found: whether to forward (and whether a
// reviewer's approval allowed it), or the error the client gets.
type verdict struct {
	allowed, approved bool
	refusal           *pgError
}

func verdictOf(dec protocols.Decision) verdict {
	ok := dec.Action == protocols.Allow
	return verdict{allowed: ok, approved: ok && dec.ApprovalID != "", refusal: refusalError(dec)}
}

// check runs the session flow's check. err ends the session.
func (s *relay) check(ctx context.Context, cmd *protocols.Command) (verdict, error) {
	return s.verdict(s.flow.Check(ctx, cmd))
}

// verdict maps what the session flow decided to what the engine does: a
// command the client withdrew while it was held is refused as PostgreSQL
// refuses a cancelled statement, and the session goes on; a recording that
// failed ends the session with an error; a client that went away, or a
// session ending meanwhile, ends it quietly.
func (s *relay) verdict(dec protocols.Decision, err error) (verdict, error) {
	// A check may have held the command for review: what follows it
	// reads the clock again.
	s.clientAt = time.Time{}
	switch {
	case err == nil:
		return verdictOf(dec), nil
	case errors.Is(err, session.ErrCanceled):
		return verdict{refusal: &pgError{Code: codeQueryCanceled, Message: "canceling statement due to user request",
			Detail: "the command was withdrawn while it waited for approval; it did not run"}}, nil
	case errors.Is(err, session.ErrRecordingFailed):
		return verdict{}, s.checkFailed(err)
	default:
		return verdict{}, s.checkEnded(err)
	}
}

func (s *relay) checkFailed(err error) error {
	s.log.Error("command could not be checked; ending session", "err", err)
	return fatal(codeIOError, "Airlock could not record or decide the command; the session is closed so nothing runs unrecorded")
}

// watchClient notices a client that hangs up while its command is held
// (the client loop is blocked in the check meanwhile). It reads ahead
// without consuming: what the client pipelined behind the held command is
// left for the loop, and a Terminate among it, or the end of input, calls
// gone. The watch goes on until stop, however much was pipelined, until
// the buffer is full; a client that fills it is noticed at the hold's end.
func (s *relay) watchClient(gone func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := s.clientIn.r
		seen := 0 // bytes already looked at: whole messages
		for {
			b, err := r.Peek(r.Buffered() + 1)
			for len(b)-seen >= 5 {
				if b[seen] == 'X' {
					gone()
					return
				}
				n := int(int32(binary.BigEndian.Uint32(b[seen+1:])))
				if n < 4 || seen+1+n > len(b) {
					break
				}
				seen += 1 + n
			}
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

// refusalError turns a refusing decision into the client's error.
func refusalError(dec protocols.Decision) *pgError {
	if dec.Action == protocols.Allow {
		return nil
	}
	msg := "Airlock refused the command"
	if dec.Reason != "" {
		msg += ": " + dec.Reason
	}
	detail := "risk " + dec.Risk.String()
	if len(dec.Rules) > 0 {
		detail += "; rules " + strings.Join(dec.Rules, ", ")
	}
	if dec.ApprovalID != "" {
		detail += "; approval request " + dec.ApprovalID
	}
	return &pgError{Code: codeInsufficientPriv, Message: msg, Detail: detail}
}

// refuse replaces a refused Query or Parse upstream with a statement that
// fails to parse; the upstream reader swaps its error for refusal. Using the
// upstream keeps the error in its place within a pipeline and the
// transaction state exactly as PostgreSQL itself would leave it.
func (s *relay) refuse(kind pendKind, stmt string, refusal *pgError) error {
	s.seq++
	tok := "airlock_refused_" + s.nonce + "_" + strconv.FormatUint(s.seq, 10)
	var out []byte
	if kind == pkQuery {
		out, _ = (&pgproto3.Query{String: tok}).Encode(nil)
		s.pending.push(pending{kind: pkQuery, start: s.clientNow(), refusal: refusal})
	} else {
		out, _ = (&pgproto3.Parse{Name: stmt, Query: tok}).Encode(nil)
		s.pending.push(pending{kind: pkParse, name: stmt, refusal: refusal})
	}
	_, err := s.up.w.Write(out)
	return err
}
