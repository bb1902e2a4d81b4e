package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// serveEpoll serves every session's both directions from one OS thread
// running a level-triggered epoll loop of its own over nonblocking
// sockets, taken out of Go's netpoller. It is hand-written on
// golang.org/x/sys/unix because the question it answers is what Go costs
// without its scheduler and netpoller in the data path, which no library
// that wraps them can show. Accepting and dialling stay on goroutines.
func serveEpoll(ln *net.TCPListener, upstream string) error {
	h, err := newHandoff()
	if err != nil {
		return err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	l := &epollLoop{epfd: epfd, handoff: h, raw: *rawSyscalls, rawWait: *rawWait}
	if err := l.ctl(unix.EPOLL_CTL_ADD, h.eventFD, unix.EPOLLIN); err != nil {
		return err
	}
	go l.run()
	return acceptInto(ln, upstream, h)
}

// epollLoop owns the epoll descriptor and every session it serves; only
// its own goroutine, locked to its thread, touches them.
type epollLoop struct {
	epfd     int
	handoff  *handoff
	raw      bool            // nonblocking calls as RawSyscall
	rawWait  bool            // the blocking wait as RawSyscall too
	sessions []*epollSession // by descriptor
}

// epollSession is one client and its upstream. Side 0 is the client, side
// 1 the upstream; direction d carries what side d reads to side 1-d.
type epollSession struct {
	fds      [2]int
	carried  [2]direction
	interest [2]uint32 // the events each side is registered for
}

// direction is the bytes read from one side and not yet written to the
// other. While some are pending the loop stops reading that side, so a
// slow reader holds its writer back instead of growing a buffer.
type direction struct {
	buf        []byte
	start, end int
}

func (d *direction) pending() bool { return d.start < d.end }

func (l *epollLoop) run() {
	// One thread owns the loop for good: the point is to make no use of
	// the scheduler between a socket becoming readable and its bytes
	// being written on.
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := l.wait(events)
		if err != nil {
			panic(fmt.Sprintf("epoll_wait: %v", err))
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == l.handoff.eventFD {
				l.admit()
				continue
			}
			l.handle(int(ev.Fd), ev.Events)
		}
	}
}

// wait polls without blocking first and blocks only when nothing is ready.
// The poll and the socket reads and writes are RawSyscalls when l.raw is
// set: they cannot block, so telling the runtime we are entering a
// syscall (entersyscall/exitsyscall, and the P hand-off it allows) buys
// nothing. The blocking wait goes through the ordinary Syscall so the
// runtime may run other goroutines on our P while this thread sleeps,
// unless l.rawWait asks to keep the P (see ring.syscallEnter).
func (l *epollLoop) wait(events []unix.EpollEvent) (int, error) {
	if l.raw {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if e == 0 && r > 0 {
			return int(r), nil
		}
	}
	for {
		if l.rawWait {
			r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd),
				uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), ^uintptr(0), 0, 0)
			if e == unix.EINTR {
				continue
			}
			if e != 0 {
				return 0, e
			}
			return int(r), nil
		}
		n, err := unix.EpollWait(l.epfd, events, -1)
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

func (l *epollLoop) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// admit registers the sessions the accepting goroutine handed over.
func (l *epollLoop) admit() {
	var counter [8]byte
	_, _ = unix.Read(l.handoff.eventFD, counter[:])
	for _, p := range l.handoff.take() {
		s := &epollSession{fds: [2]int{p.client, p.server}}
		s.carried[0].buf = make([]byte, 32<<10)
		s.carried[1].buf = make([]byte, 32<<10)
		for side, fd := range s.fds {
			for fd >= len(l.sessions) {
				l.sessions = append(l.sessions, nil)
			}
			l.sessions[fd] = s
			s.interest[side] = unix.EPOLLIN
			if err := l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
				l.close(s)
				break
			}
		}
	}
}

// handle serves one ready descriptor: it finishes writing what waits for
// it, then reads what it has and writes that to the other side.
func (l *epollLoop) handle(fd int, events uint32) {
	s := l.sessions[fd]
	if s == nil {
		return // closed earlier in this batch
	}
	side := 0
	if s.fds[1] == fd {
		side = 1
	}
	if events&unix.EPOLLOUT != 0 {
		if !l.flush(s, 1-side) {
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !s.carried[side].pending() {
		if !l.carry(s, side) {
			return
		}
	}
	l.updateInterest(s)
}

// carry reads once from side d and writes it to the other side; it says
// false when the session ended. Level-triggered epoll reports the side
// again if more is waiting, so one read per event is enough.
func (l *epollLoop) carry(s *epollSession, d int) bool {
	dir := &s.carried[d]
	n, err := l.read(s.fds[d], dir.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil || n == 0 {
		l.close(s)
		return false
	}
	dir.start, dir.end = 0, n
	return l.flush(s, d)
}

// flush writes direction d's pending bytes to side 1-d until they are gone
// or the socket is full; it says false when the session ended.
func (l *epollLoop) flush(s *epollSession, d int) bool {
	dir := &s.carried[d]
	for dir.pending() {
		n, err := l.write(s.fds[1-d], dir.buf[dir.start:dir.end])
		if err == unix.EAGAIN {
			return true
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.close(s)
			return false
		}
		dir.start += n
	}
	return true
}

// updateInterest registers each side for reading unless what it sent is
// still pending, and for writing while bytes wait for it.
func (l *epollLoop) updateInterest(s *epollSession) {
	for side := range s.fds {
		var want uint32
		if !s.carried[side].pending() {
			want |= unix.EPOLLIN
		}
		if s.carried[1-side].pending() {
			want |= unix.EPOLLOUT
		}
		if want != s.interest[side] {
			s.interest[side] = want
			if err := l.ctl(unix.EPOLL_CTL_MOD, s.fds[side], want); err != nil {
				l.close(s)
				return
			}
		}
	}
}

// close ends both sides; closing a descriptor also removes it from epoll.
func (l *epollLoop) close(s *epollSession) {
	for _, fd := range s.fds {
		if l.sessions[fd] == s {
			l.sessions[fd] = nil
		}
		unix.Close(fd)
	}
}

func (l *epollLoop) read(fd int, p []byte) (int, error) {
	if !l.raw {
		return unix.Read(fd, p)
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func (l *epollLoop) write(fd int, p []byte) (int, error) {
	if !l.raw {
		return unix.Write(fd, p)
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
