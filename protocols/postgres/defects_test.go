package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// TestRealProcessID: the process id a client is given is its upstream
// session's own, so pg_backend_pid(), pg_stat_activity and
// pg_terminate_backend agree with what the driver reports, while a cancel
// still goes through Airlock with Airlock's own key.
func TestRealProcessID(t *testing.T) {
	h := startHarness(t)
	ctx := context.Background()
	victim := connect(t, h.url("alice", "alice-token", "main", ""))
	var pid uint32
	if err := victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if reported := victim.PgConn().PID(); reported != pid {
		t.Fatalf("the driver reports pid %d, pg_backend_pid() says %d", reported, pid)
	}

	// A cancel reaches the right session by that id.
	done := make(chan error, 1)
	go func() {
		_, err := victim.Exec(ctx, "SELECT pg_sleep(30)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := victim.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if pgCode(err) != codeQueryCanceled {
			t.Fatalf("cancelled sleep: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the cancel did not reach the upstream")
	}

	other := connect(t, h.url("alice", "alice-token", "main", ""))
	var terminated bool
	if err := other.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, terminated, err)
	}
	if _, err := victim.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("the terminated session still runs statements")
	}
}

// gatedClassifier is keywordClassifier, except that a command holding
// /*slow*/ waits in Classify until released, after saying it is there.
type gatedClassifier struct {
	keywordClassifier
	inside  chan struct{}
	release chan struct{}
}

func (c gatedClassifier) Classify(cmd *protocols.Command) *protocols.Classification {
	if strings.Contains(cmd.Text, "/*slow*/") {
		c.inside <- struct{}{}
		<-c.release
	}
	return c.keywordClassifier.Classify(cmd)
}

// hijacked connects as alice and takes the connection over, to send
// messages pgconn would not (pipelined simple queries).
func hijacked(t *testing.T, h *harness) *pgconn.HijackedConn {
	t.Helper()
	c, err := pgconn.Connect(context.Background(), h.url("alice", "alice-token", "main", ""))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := c.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return hc
}

// sendCancel sends a CancelRequest and waits until Airlock has handled it
// (it closes the connection then).
func sendCancel(t *testing.T, addr string, pid uint32, key []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := binary.BigEndian.AppendUint32(nil, 16)
	msg = binary.BigEndian.AppendUint32(msg, cancelRequestCode)
	msg = binary.BigEndian.AppendUint32(msg, pid)
	msg = append(msg, key...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("cancel connection: %v", err)
	}
}

// TestCancelWhileCheckingReachesUpstream: a CancelRequest that arrives
// while Airlock is still deciding the next pipelined command (not holding
// it) goes to the upstream, which is running the command before it.
func TestCancelWhileCheckingReachesUpstream(t *testing.T) {
	cl := gatedClassifier{inside: make(chan struct{}, 1), release: make(chan struct{})}
	h := startHarness(t, func(o *Options) { o.Pipeline.Classifier = cl })
	hc := hijacked(t, h)
	for _, q := range []string{"SELECT pg_sleep(30)", "SELECT 1 /*slow*/"} {
		hc.Frontend.Send(&pgproto3.Query{String: q})
		if err := hc.Frontend.Flush(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the first reaches the upstream alone
	}
	select {
	case <-cl.inside:
	case <-time.After(10 * time.Second):
		t.Fatal("the second query was never checked")
	}
	sendCancel(t, h.addr, hc.PID, hc.SecretKey)
	close(cl.release)
	_ = hc.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var codes []string
	for ready := 0; ready < 2; {
		msg, err := hc.Frontend.Receive()
		if err != nil {
			t.Fatalf("after %q: %v", codes, err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			codes = append(codes, m.Code)
		case *pgproto3.ReadyForQuery:
			ready++
		}
	}
	if len(codes) != 1 || codes[0] != codeQueryCanceled {
		t.Fatalf("errors %q, want the sleep cancelled (%s) and the second query run", codes, codeQueryCanceled)
	}
}

// notifyingApprover holds each review, as approvals' hold mode does: it
// notifies the client, then waits until its context ends, and reports why.
type notifyingApprover struct{ ended chan error }

func (a notifyingApprover) Review(ctx context.Context, req protocols.ReviewRequest, notify func(string)) (protocols.Decision, error) {
	notify("approval required: request test-1")
	<-ctx.Done()
	a.ended <- context.Cause(ctx)
	return req.Decision, ctx.Err()
}

// TestHangUpNoticedBehindPipelinedBytes: a client that hangs up while its
// command is held is noticed at once, even when it had pipelined more
// messages behind the held one (which the watch reads past without taking).
func TestHangUpNoticedBehindPipelinedBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		behind []pgproto3.FrontendMessage
	}{
		{"queries behind", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Query{String: "SELECT 2"}}},
		{"terminate behind", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Terminate{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := notifyingApprover{ended: make(chan error, 1)}
			h := startHarness(t, func(o *Options) { o.Pipeline.Approver = ap })
			hc := hijacked(t, h)
			hc.Frontend.Send(&pgproto3.Query{String: "DELETE FROM t /*review*/"})
			for _, m := range tc.behind {
				hc.Frontend.Send(m)
			}
			if err := hc.Frontend.Flush(); err != nil {
				t.Fatal(err)
			}
			_ = hc.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				msg, err := hc.Frontend.Receive()
				if err != nil {
					t.Fatalf("no notice of the hold: %v", err)
				}
				if _, ok := msg.(*pgproto3.NoticeResponse); ok {
					break
				}
			}
			time.Sleep(50 * time.Millisecond) // the watch reads what was pipelined
			hc.Conn.Close()
			select {
			case cause := <-ap.ended:
				if !errors.Is(cause, session.ErrClientGone) {
					t.Fatalf("the hold ended because %v, want the client gone", cause)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the hold went on after the client hung up")
			}
		})
	}
}
