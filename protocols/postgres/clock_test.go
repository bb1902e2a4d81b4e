package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestArrivalClock: the messages of one client read share one clock
// reading, and a check, which may hold its command for review, makes the
// next message read the clock again.
func TestArrivalClock(t *testing.T) {
	s := inspectedSession(t, false)
	cycle := preparedCycle(t, s) // prepares P0_1
	cycle()
	s.clientAt = time.Time{}
	feed(t, encode(t, &pgproto3.Bind{PreparedStatement: "P0_1", Parameters: [][]byte{[]byte("1")}},
		&pgproto3.Execute{}, &pgproto3.Sync{}), func(typ byte, frame, body []byte) error {
		return s.clientMessage(t.Context(), typ, frame, body)
	})
	var starts []time.Time
	for !s.pending.empty() {
		if p, _ := s.pending.pop(); !p.start.IsZero() {
			starts = append(starts, p.start)
		}
	}
	if len(starts) != 2 || starts[0] != starts[1] {
		t.Fatalf("Execute and Sync of one read started at %v, want one reading for both", starts)
	}
	at := s.clientAt
	time.Sleep(time.Millisecond)
	q, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	if err := s.clientMessage(t.Context(), 'Q', q, q[5:]); err != nil {
		t.Fatal(err)
	}
	p, _ := s.pending.pop()
	if !p.start.After(at) {
		t.Fatalf("a Query checked after the read started at %v, the read's reading %v", p.start, at)
	}
}

// TestMonotonicNow: the engine's readings carry a monotonic reading and
// measure durations as time.Now's do.
func TestMonotonicNow(t *testing.T) {
	before := time.Now()
	m := monotonicNow()
	after := time.Now()
	if m.Sub(before) < 0 || after.Sub(m) < 0 {
		t.Fatalf("monotonicNow %v not between %v and %v", m, before, after)
	}
	if d := time.Since(m); d < 0 || d > time.Second {
		t.Fatalf("time since monotonicNow = %v", d)
	}
}
