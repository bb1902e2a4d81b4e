package main

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
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
// 113 to 147 µs without the keeper and about 80 µs with it). The Go runtime has no
// setting for this apart from GODEBUG=schedtrace, which also prints to stderr.
//
// While it runs, the keeper sleeps in a system call, a few milliseconds at a
// time. A P whose goroutine is in a system call does not count as idle, and
// sysmon leaves it to that goroutine for up to 10 ms while other Ps are idle,
// so sysmon never finds every P idle. When every other P is busy, sysmon hands
// the keeper's P to the waiting work, as for any blocking call. GOMAXPROCS is
// raised by one while the keeper runs, so the work keeps its Ps. The garbage
// collector scans and stops a goroutine in a system call without waiting for
// it. (An earlier keeper slept in a raw system call, which keeps its P busy
// for good; the collector then spun up to a whole sleep to suspend it, about
// a fifth of the CPU when connections came and went.) The keeper wakes once
// per keeperSleep, which costs about 1% of a core on that VM, so it runs only
// while a session is open and for keeperLinger after the last one ends. The
// linger also spares connect-per-request clients a GOMAXPROCS change (a
// stop-the-world) per connection.
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
		select {
		case <-r.stop:
			return
		default:
		}
		// Not time.Sleep: it parks the goroutine and frees its P.
		_ = syscall.Nanosleep(&ts, nil)
	}
}
