package postgres

import (
	"bytes"
	"errors"
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
