package mysql

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// resetError is what reading a connection whose peer reset it returns.
func resetError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	_ = client.(*net.TCPConn).SetLinger(0) // Close sends a reset
	client.Close()
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = server.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("read from a reset connection succeeded")
	}
	return err
}

func TestIsClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"end of input", io.EOF, true},
		{"end mid-packet", fmt.Errorf("read packet: %w", io.ErrUnexpectedEOF), true},
		{"closed here", net.ErrClosed, true},
		{"reset by the peer", resetError(t), true},
		{"dropped while authenticating", errDropped, true},
		{"timeout", &net.OpError{Op: "read", Err: timeoutError{}}, false},
		{"malformed", errors.New("malformed packet"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isClosed(tc.err); got != tc.want {
				t.Fatalf("isClosed(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
