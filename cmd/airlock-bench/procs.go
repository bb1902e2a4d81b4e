package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// service is a long-running child process (Airlock, pgbouncer) in its own
// process group, so that the terminal's Ctrl-C reaches only the harness,
// which then stops its children in order.
type service struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// supervisor owns every service the harness starts and stops them all.
type supervisor struct {
	mu       sync.Mutex
	services []*service
}

// start launches cmd as a service whose stdout and stderr go to logPath.
func (sv *supervisor) start(name string, cmd *exec.Cmd, logPath string) (*service, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &service{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	sv.mu.Lock()
	sv.services = append(sv.services, s)
	sv.mu.Unlock()
	return s, nil
}

// detach puts cmd in its own process group and asks the kernel to kill it
// if the harness dies without cleaning up (SIGKILL cannot be caught).
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// pid returns the service's process id.
func (s *service) pid() int { return s.cmd.Process.Pid }

// exited reports whether the process has ended.
func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the service's process group, waits up to grace for
// it to end, then kills the group.
func (s *service) stop(grace time.Duration) {
	if s.exited() {
		return
	}
	_ = syscall.Kill(-s.pid(), syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
		<-s.done
	}
}

// logTail returns the last n bytes of the service's log, for error reports.
func (s *service) logTail(n int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if off := st.Size() - n; off > 0 {
		_, _ = f.Seek(off, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// stopAll stops every service still running, newest first.
func (sv *supervisor) stopAll() {
	sv.mu.Lock()
	list := append([]*service(nil), sv.services...)
	sv.services = nil
	sv.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(5 * time.Second)
	}
}

// remove stops s and forgets it.
func (sv *supervisor) remove(s *service) {
	s.stop(5 * time.Second)
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for i, x := range sv.services {
		if x == s {
			sv.services = append(sv.services[:i], sv.services[i+1:]...)
			break
		}
	}
}

// runCmd runs a short command to completion in its own process group,
// killing the group when ctx ends, and returns its combined output.
func runCmd(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &out
	}
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return out.Bytes(), ctx.Err()
	}
}

// cpuTicks returns utime+stime of pid from /proc/<pid>/stat, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime (field 14) and stime (field 15) from a
// /proc/<pid>/stat line. The command name (field 2) is parenthesised and
// may hold spaces or parentheses, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("parse /proc stat: no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return u + s, nil
}

// rssKiB returns VmRSS and VmHWM of pid, in KiB, from /proc/<pid>/status.
func rssKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatusRSS(b)
}

func parseStatusRSS(b []byte) (rss, hwm int64, err error) {
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc status %s: %w", k, err)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("parse /proc status: VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// clockTicks returns the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), read from
// the AT_CLKTCK entry of the harness's own auxiliary vector; Go has no
// sysconf without cgo. It falls back to 100, the value on every mainstream
// Linux architecture.
func clockTicks() uint64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k := binary.NativeEndian.Uint64(b[i:])
		v := binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return v
		}
		if k == 0 {
			break
		}
	}
	return 100
}

// ctxSwitches sums the voluntary and involuntary context switches of every
// thread of pid, from /proc/<pid>/task/*/status. A thread that ended is no
// longer listed, so its switches since the last reading are lost; a thread
// that ended between two readings makes the difference too small.
func ctxSwitches(pid int) (voluntary, involuntary uint64, err error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended since the listing
		}
		v, n, err := parseStatusSwitches(b)
		if err != nil {
			return 0, 0, err
		}
		voluntary += v
		involuntary += n
	}
	return voluntary, involuntary, nil
}

// parseStatusSwitches reads voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches from a /proc status file.
func parseStatusSwitches(b []byte) (voluntary, involuntary uint64, err error) {
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc status %s: %w", k, err)
		}
		if k == "voluntary_ctxt_switches" {
			voluntary = n
		} else {
			involuntary = n
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("parse /proc status: context switch counts missing")
	}
	return voluntary, involuntary, nil
}
