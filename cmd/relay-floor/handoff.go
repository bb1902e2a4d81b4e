package main

import (
	"fmt"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// fdPair is one session's sockets, taken out of Go's netpoller for a loop
// of our own: the client's and the upstream's descriptors, nonblocking.
type fdPair struct{ client, server int }

// handoff carries accepted sessions from the accepting goroutine to a
// loop on its own thread, waking it with an eventfd the loop watches. The
// eventfd blocks: the epoll loop reads it only when it is readable, and
// io_uring hands a nonblocking file's EAGAIN back instead of waiting.
type handoff struct {
	mu      sync.Mutex
	queue   []fdPair
	eventFD int
}

func newHandoff() (*handoff, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &handoff{eventFD: fd}, nil
}

// push queues a session and wakes the loop.
func (h *handoff) push(p fdPair) {
	h.mu.Lock()
	h.queue = append(h.queue, p)
	h.mu.Unlock()
	var one [8]byte
	one[0] = 1 // eventfd counts in host order; this machine is little-endian
	_, _ = unix.Write(h.eventFD, one[:])
}

// take returns the queued sessions; the loop calls it when the eventfd is
// readable, after reading the eventfd to clear it.
func (h *handoff) take() []fdPair {
	h.mu.Lock()
	q := h.queue
	h.queue = nil
	h.mu.Unlock()
	return q
}

// acceptInto accepts clients, dials the upstream for each (a blocking
// connect on this goroutine is fine: it is outside the measured data path)
// and hands both descriptors over.
func acceptInto(ln *net.TCPListener, upstream string, h *handoff) error {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return err
		}
		go func() {
			p, err := dialPair(c, upstream)
			if err != nil {
				return
			}
			h.push(p)
		}()
	}
}

// dialPair dials the upstream and detaches both sockets from Go: each is
// duplicated (the duplicate shares the nonblocking file description) and
// Go's copy closed, so the netpoller forgets it.
func dialPair(c *net.TCPConn, upstream string) (fdPair, error) {
	defer c.Close()
	conn, err := net.Dial("tcp", upstream)
	if err != nil {
		return fdPair{}, fmt.Errorf("dial upstream %s: %w", upstream, err)
	}
	u := conn.(*net.TCPConn)
	defer u.Close()
	_ = c.SetNoDelay(true)
	cfd, err := detach(c)
	if err != nil {
		return fdPair{}, err
	}
	sfd, err := detach(u)
	if err != nil {
		unix.Close(cfd)
		return fdPair{}, err
	}
	return fdPair{client: cfd, server: sfd}, nil
}

func detach(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup socket: %w", derr)
	}
	return fd, nil
}
