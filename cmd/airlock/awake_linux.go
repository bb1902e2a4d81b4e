package main

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// awake keeps the Go scheduler's monitor thread (sysmon) out of its deep
// sleep while client sessions are open.
//
// sysmon sleeps on a futex whenever every P is idle, and the next goroutine
// that enters a system call wakes it. A gateway at low concurrency is idle
// between every two messages, so each transaction paid for two such wakes: a
// futex call, a context switch into sysmon, its 20 µs polling, and often a
// spinning thread that it starts. On a 2-vCPU VM that doubled the gateway's
// CPU per transaction at one client (pgbench -S -c 1 through the relay:
// 113 to 147 µs without the keeper and about 70 µs with it). The Go runtime has no
// setting for this apart from GODEBUG=schedtrace, which also prints to stderr.
//
// While it runs, the keeper holds one P busy in a raw nanosleep: RawSyscall
// does not tell the scheduler that it blocks, so the P never counts as idle,
// and sysmon never hands it to another thread (which, for a P in an ordinary
// system call, it does every few microseconds once the other Ps are busy;
// that cost 40% more CPU per transaction at 16 clients). GOMAXPROCS is
// raised by one while the keeper runs, so the work keeps its Ps. A
// stop-the-world, or the collector scanning the keeper's stack, preempts it
// with a signal, which interrupts nanosleep; the keeper then stops at its next
// preemption check (the select on its stop channel). It must not call
// runtime.Gosched there: a yielded goroutine is runnable, is picked up again
// at once, and the collector, which waits for it to stop, spun for up to a
// whole sleep each time (a fifth of Airlock's CPU when clients connected per
// transaction). The keeper wakes once per keeperSleep, which costs about 1% of
// a core on that VM, so it runs only while a session is open and for
// keeperLinger after the last one ends. The linger also spares
// connect-per-request clients a GOMAXPROCS change (a stop-the-world) per
// connection.
//
// There is one per process (scheduler), shared by every server in it, so
// that GOMAXPROCS is raised once however many servers hold it.
type awake struct {
	mu      sync.Mutex
	holders int
	run     *keeperRun // nil when stopped
	linger  *time.Timer
}

var scheduler awake

const keeperSleep = 5 * time.Millisecond

// keeperLinger is a variable for the tests.
var keeperLinger = 2 * time.Second

type keeperRun struct {
	stop, done chan struct{}
	prev       int // GOMAXPROCS before the keeper raised it
}

// hold keeps the scheduler awake until the returned function is called.
func (a *awake) hold() (release func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holders++
	if a.linger != nil {
		a.linger.Stop()
		a.linger = nil
	}
	if a.run == nil {
		a.run = startKeeper()
	}
	var once sync.Once
	return func() { once.Do(a.release) }
}

func (a *awake) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holders--
	if a.holders > 0 || a.run == nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(keeperLinger, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.linger == t && a.holders == 0 {
			a.linger = nil
			a.stopKeeper()
		}
	})
	a.linger = t
}

// stopKeeper stops a running keeper; a.mu is held.
func (a *awake) stopKeeper() {
	if a.run == nil {
		return
	}
	close(a.run.stop)
	<-a.run.done
	if os.Getenv("GOMAXPROCS") == "" {
		// Back to the default, which follows CPU and cgroup limits again
		// (any call of GOMAXPROCS turns that off).
		runtime.SetDefaultGOMAXPROCS()
	} else {
		runtime.GOMAXPROCS(a.run.prev)
	}
	a.run = nil
}

func startKeeper() *keeperRun {
	r := &keeperRun{stop: make(chan struct{}), done: make(chan struct{}), prev: runtime.GOMAXPROCS(0)}
	runtime.GOMAXPROCS(r.prev + 1)
	go r.keep()
	return r
}

func (r *keeperRun) keep() {
	defer close(r.done)
	ts := syscall.NsecToTimespec(int64(keeperSleep))
	for {
		// The select is also where a preemption stops the keeper.
		select {
		case <-r.stop:
			return
		default:
		}
		// Hand-written: every wrapper (time.Sleep, syscall.Nanosleep)
		// tells the scheduler that it blocks, which is what the keeper
		// must not do.
		_, _, _ = syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
	}
}
