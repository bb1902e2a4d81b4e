package main

import (
	"net"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// serveURing serves every session's both directions from one OS thread
// over io_uring: one receive outstanding per socket, a send submitted for
// each completed receive and the next receive when the send is done, and
// everything that became ready in one pass submitted with a single
// io_uring_enter that also waits for the next completions. Accepting and
// dialling stay on goroutines.
func serveURing(ln *net.TCPListener, upstream string) error {
	h, err := newHandoff()
	if err != nil {
		return err
	}
	ready := make(chan error, 1)
	go runURing(h, *sqpoll, ready)
	if err := <-ready; err != nil {
		return err
	}
	return acceptInto(ln, upstream, h)
}

// Operations, in the low byte of a submission's user data; the session's
// slot is in the high 32 bits. Direction d is what side d sends to side
// 1-d (side 0 the client, side 1 the upstream).
const (
	uringRecv = 0 // + d: receive from side d
	uringSend = 2 // + d: send direction d to side 1-d

	wakeUserData = ^uint64(0) // the handoff's eventfd read
)

// uringLoop owns the ring and every session; only its goroutine, locked
// to its thread, touches them.
type uringLoop struct {
	ring     *ring
	handoff  *handoff
	wake     [8]byte // the eventfd read's buffer
	sessions []*uringSession
	free     []int // slots of ended sessions
}

// uringSession is one client and its upstream. A session ends only when
// no operation of it is in flight, since the kernel still holds its
// buffers until then.
type uringSession struct {
	slot     int
	fds      [2]int
	carried  [2]direction
	inflight int
	closing  bool
}

func runURing(h *handoff, sqpoll bool, ready chan<- error) {
	// SINGLE_ISSUER ties the ring to the thread that set it up, and the
	// experiment is one thread doing all the work: lock it for good.
	runtime.LockOSThread()
	r, err := newRing(4096, sqpoll)
	if err != nil {
		ready <- err
		return
	}
	r.rawWait = *rawWait
	l := &uringLoop{ring: r, handoff: h}
	if err := l.armWake(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for {
		if err := r.enter(1); err != nil {
			panic(err)
		}
		r.reap(l.complete)
	}
}

func (l *uringLoop) armWake() error {
	return l.ring.queue(submission{opcode: ioringOpRead, fd: int32(l.handoff.eventFD),
		addr: uint64(uintptr(unsafe.Pointer(&l.wake[0]))), len: 8, userData: wakeUserData})
}

func (l *uringLoop) complete(c completion) {
	if c.userData == wakeUserData {
		l.admit()
		if err := l.armWake(); err != nil {
			panic(err)
		}
		return
	}
	s := l.sessions[c.userData>>32]
	s.inflight--
	op := int(c.userData & 0xff)
	switch {
	case s.closing:
	case c.res == -int32(unix.EAGAIN) || c.res == -int32(unix.EINTR):
		l.retry(s, op)
	case op < uringSend:
		l.received(s, op, c.res)
	default:
		l.sent(s, op-uringSend, c.res)
	}
	if s.closing && s.inflight == 0 {
		l.release(s)
	}
}

// admit starts the sessions the accepting goroutine handed over. io_uring
// waits on the sockets itself, so they are made blocking: on a
// nonblocking file some kernels hand EAGAIN back instead of waiting.
func (l *uringLoop) admit() {
	for _, p := range l.handoff.take() {
		s := &uringSession{fds: [2]int{p.client, p.server}}
		for d := range s.carried {
			_ = unix.SetNonblock(s.fds[d], false)
			s.carried[d].buf = make([]byte, 32<<10)
		}
		if n := len(l.free); n > 0 {
			s.slot = l.free[n-1]
			l.free = l.free[:n-1]
			l.sessions[s.slot] = s
		} else {
			s.slot = len(l.sessions)
			l.sessions = append(l.sessions, s)
		}
		l.recv(s, 0)
		l.recv(s, 1)
	}
}

func (l *uringLoop) received(s *uringSession, d int, res int32) {
	if res <= 0 {
		l.end(s) // 0 is the peer's end, below 0 an error
		return
	}
	s.carried[d].start, s.carried[d].end = 0, int(res)
	l.send(s, d)
}

// sent continues a short send, or receives again once all went.
func (l *uringLoop) sent(s *uringSession, d int, res int32) {
	if res < 0 {
		l.end(s)
		return
	}
	s.carried[d].start += int(res)
	if s.carried[d].pending() {
		l.send(s, d)
		return
	}
	l.recv(s, d)
}

func (l *uringLoop) retry(s *uringSession, op int) {
	if op < uringSend {
		l.recv(s, op)
	} else {
		l.send(s, op-uringSend)
	}
}

func (l *uringLoop) recv(s *uringSession, d int) {
	buf := s.carried[d].buf
	l.submit(s, submission{opcode: ioringOpRecv, fd: int32(s.fds[d]),
		addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), len: uint32(len(buf)),
		userData: uint64(s.slot)<<32 | uint64(uringRecv+d)})
}

func (l *uringLoop) send(s *uringSession, d int) {
	dir := &s.carried[d]
	l.submit(s, submission{opcode: ioringOpSend, fd: int32(s.fds[1-d]),
		addr: uint64(uintptr(unsafe.Pointer(&dir.buf[dir.start]))), len: uint32(dir.end - dir.start),
		opFlags: unix.MSG_NOSIGNAL, userData: uint64(s.slot)<<32 | uint64(uringSend+d)})
}

func (l *uringLoop) submit(s *uringSession, sub submission) {
	if err := l.ring.queue(sub); err != nil {
		l.end(s)
		return
	}
	s.inflight++
}

// end shuts both sockets down, which completes the receives still in
// flight; the session is released when the last one is back.
func (l *uringLoop) end(s *uringSession) {
	if s.closing {
		return
	}
	s.closing = true
	for _, fd := range s.fds {
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	if s.inflight == 0 {
		l.release(s)
	}
}

func (l *uringLoop) release(s *uringSession) {
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	l.sessions[s.slot] = nil
	l.free = append(l.free, s.slot)
	s.inflight = -1 // never released twice
}
