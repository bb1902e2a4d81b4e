package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// serveLockstep serves each session with a single goroutine that owns both
// sockets and follows PostgreSQL's request/response rhythm: read what the
// client sent, write it upstream, then read upstream until every Sync and
// simple Query sent so far has been answered with its ReadyForQuery,
// passing each read to the client as it arrives. One goroutine per session
// instead of two saves the second goroutine's park and wake-up on every
// message.
//
// It is an experiment for pgbench-like clients only: COPY (the server
// waits for the client's data, which this loop only reads after a
// ReadyForQuery), asynchronous notifications and notices that arrive
// while the session is idle (delivered only with the next answer), Flush
// without a Sync, and replication are not supported. It answers SSL and
// GSS encryption requests with 'N' itself, since it reads the protocol in
// the clear.
func serveLockstep(ln *net.TCPListener, upstream string) error {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_ = c.SetNoDelay(true)
			_ = lockstepSession(c, upstream)
		}()
	}
}

// Startup request codes, from the protocol's message formats.
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
)

func lockstepSession(client *net.TCPConn, upstream string) error {
	startup, err := readStartup(client)
	if err != nil {
		return err
	}
	conn, err := net.Dial("tcp", upstream)
	if err != nil {
		return fmt.Errorf("dial upstream %s: %w", upstream, err)
	}
	server := conn.(*net.TCPConn)
	defer server.Close()
	if _, err := server.Write(startup); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(startup[4:8]) == codeCancelRequest {
		return nil
	}
	if err := relayAuthentication(client, server); err != nil {
		return err
	}
	return lockstepLoop(client, server)
}

// readStartup reads the client's startup message, answering encryption
// requests with 'N' until the real one comes.
func readStartup(client *net.TCPConn) ([]byte, error) {
	for {
		var head [8]byte
		if _, err := io.ReadFull(client, head[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(head[:4])
		if n < 8 || n > 10000 {
			return nil, fmt.Errorf("startup message length %d out of range", n)
		}
		msg := make([]byte, n)
		copy(msg, head[:])
		if _, err := io.ReadFull(client, msg[8:]); err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint32(head[4:8]) {
		case codeSSLRequest, codeGSSENCRequest:
			if _, err := client.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		default:
			return msg, nil
		}
	}
}

// relayAuthentication passes the server's messages to the client one by
// one until ReadyForQuery, and the client's answer whenever an
// authentication request needs one (password, SASL).
func relayAuthentication(client, server *net.TCPConn) error {
	in := bufio.NewReaderSize(server, 8<<10)
	out := bufio.NewWriterSize(client, 8<<10)
	for {
		msg, err := readMessage(in)
		if err != nil {
			return err
		}
		if _, err := out.Write(msg); err != nil {
			return err
		}
		switch msg[0] {
		case 'Z':
			if in.Buffered() > 0 {
				return errors.New("server sent data after ReadyForQuery during startup")
			}
			return out.Flush()
		case 'E':
			_ = out.Flush()
			return errors.New("server refused the session")
		case 'R':
			if !needsAnswer(msg) {
				continue
			}
			if err := out.Flush(); err != nil {
				return err
			}
			answer, err := readMessage(client)
			if err != nil {
				return err
			}
			if _, err := server.Write(answer); err != nil {
				return err
			}
		}
	}
}

// needsAnswer says whether an Authentication message waits for the
// client: everything but AuthenticationOk (0) and SASLFinal (12).
func needsAnswer(msg []byte) bool {
	if len(msg) < 9 {
		return false
	}
	code := binary.BigEndian.Uint32(msg[5:9])
	return code != 0 && code != 12
}

// readMessage reads one whole typed message.
func readMessage(r io.Reader) ([]byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 4 || n > 1<<20 {
		return nil, fmt.Errorf("message %q length %d out of range", head[0], n)
	}
	msg := make([]byte, 1+n)
	copy(msg, head[:])
	_, err := io.ReadFull(r, msg[5:])
	return msg, err
}

// lockstepLoop is the session after startup. pending counts the answers
// (ReadyForQuery) still owed for the Syncs and Queries the client sent, so
// that a client pipelining several is served too.
func lockstepLoop(client, server *net.TCPConn) error {
	buf := make([]byte, 32<<10)
	var fromClient, fromServer messageScanner
	pending := 0
	for {
		n, err := client.Read(buf)
		if n > 0 {
			fromClient.scan(buf[:n], func(typ byte) {
				if typ == 'S' || typ == 'Q' {
					pending++
				}
			})
			if _, werr := server.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
		for pending > 0 || !fromServer.atBoundary() {
			n, err := server.Read(buf)
			if n > 0 {
				fromServer.scan(buf[:n], func(typ byte) {
					if typ == 'Z' {
						pending--
					}
				})
				if _, werr := client.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
		}
	}
}

// messageScanner follows message boundaries across reads of a stream of
// typed messages (a type byte and a big-endian int32 length that counts
// itself), so that a 'Z' inside a row is never taken for ReadyForQuery.
type messageScanner struct {
	header    [5]byte
	headerLen int    // bytes of the current header seen so far
	remaining uint32 // bytes of the current body still to come
}

// scan consumes data, calling found with each message's type once the
// whole message has passed: a Query is owed its answer only when the
// server has all of it.
func (s *messageScanner) scan(data []byte, found func(typ byte)) {
	for len(data) > 0 {
		if s.remaining > 0 {
			skip := min(uint32(len(data)), s.remaining)
			s.remaining -= skip
			data = data[skip:]
			if s.remaining == 0 {
				found(s.header[0])
			}
			continue
		}
		k := copy(s.header[s.headerLen:], data)
		s.headerLen += k
		data = data[k:]
		if s.headerLen < len(s.header) {
			return
		}
		s.headerLen = 0
		// A length below 4 is a broken stream; treating it as 4 keeps the
		// scanner moving rather than looping.
		s.remaining = max(binary.BigEndian.Uint32(s.header[1:]), 4) - 4
		if s.remaining == 0 {
			found(s.header[0])
		}
	}
}

// atBoundary says whether the bytes seen so far end on a whole message.
func (s *messageScanner) atBoundary() bool {
	return s.headerLen == 0 && s.remaining == 0
}
