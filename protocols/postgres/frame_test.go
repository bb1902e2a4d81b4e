package postgres

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

// TestClientReaderRecycled checks that a recycled client reader keeps
// nothing of its previous session: not its unread bytes, not a torn
// stream, and not its message limit.
func TestClientReaderRecycled(t *testing.T) {
	msg := func(typ byte, body string) []byte {
		n := len(body) + 4
		return append([]byte{typ, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
	}
	// The first session leaves a whole message buffered and unread, then
	// stops inside a message.
	first := clientReader(bytes.NewReader(append(append(msg('Q', "one\x00"), msg('Q', "left\x00")...), 'Q', 0, 0, 0, 40, 'x')), 8)
	if typ, _, body, err := first.next(); err != nil || typ != 'Q' || string(body) != "one\x00" {
		t.Fatalf("first session's message: %q %q %v", typ, body, err)
	}
	if first.atBoundary() {
		t.Fatal("bytes are buffered, but the reader says it is at a boundary")
	}
	putClientReader(first)

	second := clientReader(bytes.NewReader(msg('Q', "a longer statement\x00")), 0)
	if !second.atBoundary() {
		t.Fatal("a recycled reader starts with bytes of its previous session")
	}
	typ, _, body, err := second.next()
	if err != nil || typ != 'Q' || string(body) != "a longer statement\x00" {
		t.Fatalf("second session read %q %q %v, want its own statement (no limit)", typ, body, err)
	}
	putClientReader(second)

	third := clientReader(bytes.NewReader(msg('Q', "too long for the limit\x00")), 4)
	if _, _, _, err := third.next(); !errors.Is(err, errTooLarge) {
		t.Fatalf("limit of the third session not applied: %v", err)
	}
}

// TestEndedSessionWrites checks that once a session has given its client
// writer back, a late writer (a shutdown's or an admin's terminate, a
// review's notice) finds the session ended instead of writing through a
// writer another session may be using.
func TestEndedSessionWrites(t *testing.T) {
	client, peer := net.Pipe()
	defer peer.Close()
	up, upPeer := net.Pipe()
	defer upPeer.Close()
	_, flow := testFlow(t)
	s := &relay{conn: client, up: &upstream{conn: up}, flow: flow, clientOut: clientWriter(client), ended: make(chan struct{})}
	putClientWriter(s.clientOut)
	s.clientOut = nil
	if err := s.writeClient([]byte("x"), true); !errors.Is(err, errSessionEnded) {
		t.Errorf("write after the end: %v, want %v", err, errSessionEnded)
	}
	if err := s.flushClient(); !errors.Is(err, errSessionEnded) {
		t.Errorf("flush after the end: %v, want %v", err, errSessionEnded)
	}
	s.terminate(fatal(codeAdminShutdown, "terminating connection because Airlock is shutting down"), "airlock shutdown")
	if s.endReason != "airlock shutdown" {
		t.Errorf("end reason %q", s.endReason)
	}
}
