package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The minimum of io_uring this relay needs, written against the kernel's
// ABI (include/uapi/linux/io_uring.h) with raw syscalls: the Go io_uring
// libraries are either unmaintained or not served by the module proxy
// here, and a relay needs only setup, the rings, RECV, SEND, READ and
// io_uring_enter.
const (
	ioringOffSQRing = 0
	ioringOffCQRing = 0x8000000
	ioringOffSQEs   = 0x10000000

	ioringFeatSingleMmap = 1 << 0

	ioringSetupSQPoll       = 1 << 1
	ioringSetupCoopTaskrun  = 1 << 8
	ioringSetupSingleIssuer = 1 << 12
	ioringSetupDeferTaskrun = 1 << 13

	ioringEnterGetEvents = 1 << 0
	ioringEnterSQWakeup  = 1 << 1
	ioringSQNeedWakeup   = 1 << 0

	ioringOpRead = 22
	ioringOpSend = 26
	ioringOpRecv = 27
)

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

// submission is struct io_uring_sqe (64 bytes).
type submission struct {
	opcode, flags      uint8
	ioprio             uint16
	fd                 int32
	off, addr          uint64
	len, opFlags       uint32
	userData           uint64
	bufIndex, personal uint16
	spliceFDIn         int32
	addr3, padding     uint64
}

// completion is struct io_uring_cqe (16 bytes, no CQE32).
type completion struct {
	userData uint64
	res      int32
	flags    uint32
}

// ring is one io_uring instance, used by a single thread.
type ring struct {
	fd                      int
	sqHead, sqTail, sqFlags *uint32
	sqMask, sqEntries       uint32
	sqArray                 []uint32
	sqes                    []submission
	cqHead, cqTail          *uint32
	cqMask                  uint32
	cqes                    []completion
	tail                    uint32 // our copy of the SQ tail
	unsubmitted             uint32 // queued since the last enter
	sqpoll                  bool
	rawWait                 bool     // see syscallEnter
	mapped                  [][]byte // the mappings, for close
}

// newRing sets up a ring of entries submissions. Call it on the thread
// that will use the ring: with SINGLE_ISSUER the kernel holds it to that.
func newRing(entries uint32, sqpoll bool) (*ring, error) {
	if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil && strings.TrimSpace(string(b)) == "2" {
		return nil, fmt.Errorf("io_uring is disabled (kernel.io_uring_disabled=2): %w", errUnsupported)
	}
	var p uringParams
	fd, err := setupRing(entries, &p, sqpoll)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("io_uring_setup: %v: %w", err, errUnsupported)
		}
		return nil, fmt.Errorf("io_uring_setup: %w", err)
	}
	r := &ring{fd: fd, sqpoll: sqpoll}
	if err := r.mapRings(&p); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return r, nil
}

// setupRing asks for the flags that spare a single-threaded user work
// (completions run only when it waits for them, no interrupting
// task_work) and falls back to none on kernels that lack them.
func setupRing(entries uint32, p *uringParams, sqpoll bool) (int, error) {
	tries := []uint32{ioringSetupSingleIssuer | ioringSetupDeferTaskrun | ioringSetupCoopTaskrun, ioringSetupCoopTaskrun, 0}
	if sqpoll {
		tries = []uint32{ioringSetupSQPoll | ioringSetupSingleIssuer, ioringSetupSQPoll}
	}
	var err error
	for _, flags := range tries {
		*p = uringParams{flags: flags, sqThreadIdle: 1000}
		fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
		if e == 0 {
			return int(fd), nil
		}
		err = e
		if e != unix.EINVAL {
			break
		}
	}
	return -1, err
}

func (r *ring) mapRings(p *uringParams) error {
	sqSize := uintptr(p.sqOff.array) + uintptr(p.sqEntries)*4
	cqSize := uintptr(p.cqOff.cqes) + uintptr(p.cqEntries)*unsafe.Sizeof(completion{})
	if p.features&ioringFeatSingleMmap != 0 {
		sqSize = max(sqSize, cqSize)
	}
	sq, err := unix.Mmap(r.fd, ioringOffSQRing, int(sqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap submission ring: %w", err)
	}
	cq := sq
	if p.features&ioringFeatSingleMmap == 0 {
		if cq, err = unix.Mmap(r.fd, ioringOffCQRing, int(cqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
			return fmt.Errorf("mmap completion ring: %w", err)
		}
	}
	sqeBytes, err := unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(submission{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap submissions: %w", err)
	}
	r.mapped = [][]byte{sq, sqeBytes}
	if p.features&ioringFeatSingleMmap == 0 {
		r.mapped = append(r.mapped, cq)
	}
	at := func(b []byte, off uint32) unsafe.Pointer { return unsafe.Pointer(&b[off]) }
	r.sqHead, r.sqTail, r.sqFlags = (*uint32)(at(sq, p.sqOff.head)), (*uint32)(at(sq, p.sqOff.tail)), (*uint32)(at(sq, p.sqOff.flags))
	r.sqMask, r.sqEntries = *(*uint32)(at(sq, p.sqOff.ringMask)), p.sqEntries
	r.sqArray = unsafe.Slice((*uint32)(at(sq, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*submission)(unsafe.Pointer(&sqeBytes[0])), p.sqEntries)
	r.cqHead, r.cqTail = (*uint32)(at(cq, p.cqOff.head)), (*uint32)(at(cq, p.cqOff.tail))
	r.cqMask = *(*uint32)(at(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*completion)(at(cq, p.cqOff.cqes)), p.cqEntries)
	r.tail = atomic.LoadUint32(r.sqTail)
	return nil
}

// close unmaps the rings and closes the ring; nothing may be in flight.
func (r *ring) close() {
	for _, m := range r.mapped {
		_ = unix.Munmap(m)
	}
	unix.Close(r.fd)
}

// queue adds a submission, submitting what is queued first when the ring
// is full. The caller's buffer must stay reachable until its completion.
func (r *ring) queue(s submission) error {
	for r.tail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		if err := r.enter(0); err != nil {
			return err
		}
	}
	i := r.tail & r.sqMask
	r.sqes[i] = s
	r.sqArray[i] = i
	r.tail++
	r.unsubmitted++
	// The store releases the submission to the kernel (and to the
	// polling thread, with SQPOLL).
	atomic.StoreUint32(r.sqTail, r.tail)
	return nil
}

// enter submits what is queued, all sessions' at once, and waits until
// at least minComplete completions are there.
func (r *ring) enter(minComplete uint32) error {
	flags := uintptr(0)
	if minComplete > 0 {
		flags |= ioringEnterGetEvents
	}
	if r.sqpoll && atomic.LoadUint32(r.sqFlags)&ioringSQNeedWakeup != 0 {
		flags |= ioringEnterSQWakeup
	}
	if r.sqpoll && flags == 0 {
		r.unsubmitted = 0
		return nil // the kernel thread is awake and takes them
	}
	for {
		n, e := r.syscallEnter(uintptr(minComplete), flags)
		switch e {
		case 0:
			if !r.sqpoll {
				r.unsubmitted -= min(uint32(n), r.unsubmitted)
			} else {
				r.unsubmitted = 0
			}
			return nil
		case unix.EINTR:
			continue
		case unix.EBUSY, unix.EAGAIN:
			return nil // completions to reap first; the caller does
		default:
			return fmt.Errorf("io_uring_enter: %w", e)
		}
	}
}

// syscallEnter is io_uring_enter through the ordinary Syscall, which lets
// the runtime run other goroutines on this P while it blocks; with
// rawWait it is a RawSyscall instead, and the loop keeps its P (the
// runtime's monitor then interrupts a long wait with a preemption signal
// every 10 ms, which comes back as EINTR).
func (r *ring) syscallEnter(minComplete, flags uintptr) (uintptr, unix.Errno) {
	if r.rawWait {
		n, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.unsubmitted), minComplete, flags, 0, 0)
		return n, e
	}
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.unsubmitted), minComplete, flags, 0, 0)
	return n, e
}

// reap calls done for each completion there is and frees their slots.
func (r *ring) reap(done func(c completion)) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail; head++ {
		c := r.cqes[head&r.cqMask]
		atomic.StoreUint32(r.cqHead, head+1)
		done(c)
		n++
	}
	return n
}
