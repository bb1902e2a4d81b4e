// Command relay-floor is the smallest TCP relays Go can make, run by
// airlock-bench next to Airlock and pgbouncer to find the floor a Go data
// path sits on: what a gateway that only copies bytes costs per
// transaction on this machine, with each way of serving the sockets.
//
//	relay-floor -mode goroutine -listen 127.0.0.1:7000 -upstream 127.0.0.1:5432
//
// It authenticates nobody and inspects nothing: never expose it. Modes:
//
//	goroutine  one goroutine per direction of each session (what Airlock's
//	           relay does)
//	lockstep   one goroutine per session serving both directions in
//	           PostgreSQL's request/response rhythm (pgbench-like clients
//	           only: see serveLockstep)
//	epoll      one locked OS thread running an epoll loop over every
//	           session's nonblocking sockets
//	uring      one locked OS thread submitting every session's receives
//	           and sends to io_uring, many in one io_uring_enter
//
// It exits with status 3 when this machine cannot run the mode asked for,
// so that the harness can skip it with the reason.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

// errUnsupported marks a mode this machine cannot run.
var errUnsupported = errors.New("unsupported")

// relays are the modes, by name.
var relays = map[string]func(ln *net.TCPListener, upstream string) error{
	"goroutine": serveGoroutines,
	"lockstep":  serveLockstep,
	"epoll":     serveEpoll,
	"uring":     serveURing,
}

// Options of the loop modes, for measuring their variants; the defaults are
// what the harness runs.
var (
	rawSyscalls = flag.Bool("raw", true, "epoll: nonblocking reads, writes and polls as RawSyscall, without the runtime's syscall bookkeeping")
	rawWait     = flag.Bool("rawwait", false, "epoll, uring: block in epoll_wait or io_uring_enter as a RawSyscall too, keeping the loop's P and sparing the runtime's monitor its polling of a P in a syscall")
	sqpoll      = flag.Bool("sqpoll", false, "uring: let a kernel thread poll the submission queue (it spins on a CPU while busy)")
)

func main() {
	mode := flag.String("mode", "goroutine", "how sessions are served")
	listen := flag.String("listen", "127.0.0.1:0", "address to accept clients on")
	upstream := flag.String("upstream", "127.0.0.1:5432", "address to relay each client to")
	flag.Parse()
	serve, ok := relays[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "relay-floor: unknown mode %q\n", *mode)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay-floor:", err)
		os.Exit(1)
	}
	err = serve(ln.(*net.TCPListener), *upstream)
	if errors.Is(err, errUnsupported) {
		fmt.Fprintln(os.Stderr, "relay-floor:", err)
		os.Exit(3)
	}
	fmt.Fprintln(os.Stderr, "relay-floor:", err)
	os.Exit(1)
}

// serveGoroutines relays each session with one goroutine per direction.
func serveGoroutines(ln *net.TCPListener, upstream string) error {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			_ = c.SetNoDelay(true)
			done := make(chan struct{})
			go func() {
				pump(u.(*net.TCPConn), c)
				close(done)
			}()
			pump(c, u.(*net.TCPConn))
			<-done
		}()
	}
}

// pump copies src to dst with a plain read/write loop (io.Copy would
// splice, which costs more per small message), then closes dst's write
// side so the other direction ends too.
func pump(dst *net.TCPConn, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.CloseWrite()
}
