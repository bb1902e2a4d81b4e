package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// targetConfigs are the configurations the Airlock targets derive from:
// base (no section), full (the probed full-inspection sections) and quick
// (the repository's airlock.yaml sections; quickWhy, when set, says why
// there is none).
type targetConfigs struct {
	base, full, quick airlockConfig
	quickWhy          string
}

// gmp1 is the environment of the targets run with one P.
const gmp1 = "GOMAXPROCS=1"

// of returns the configuration of the Airlock target name, or why it
// cannot run.
func (c targetConfigs) of(name string) (airlockConfig, string) {
	relay := withMode(c.base, modeRelay)
	named := func(cfg airlockConfig, env ...string) (airlockConfig, string) {
		cfg.Mode, cfg.Env = name, env
		return cfg, ""
	}
	switch name {
	case targetRelay:
		return relay, ""
	case targetInspect:
		return withMode(c.base, modeInspect), ""
	case targetFull:
		return c.full, ""
	case targetRelayNoAwake:
		return named(relay.with(noAwake))
	case targetRelayGMP1:
		return named(relay.with(noAwake), gmp1)
	case targetRelayGMP1Awake:
		return named(relay, gmp1)
	case targetFullNoAwake:
		return named(c.full.with(noAwake))
	case targetQuickstart, targetQuickstartNoMask:
		if c.quickWhy != "" {
			return airlockConfig{}, c.quickWhy
		}
		if name == targetQuickstart {
			return named(c.quick)
		}
		q, _ := c.quick.without("masking")
		return named(q)
	}
	a, ok := ablationFor(name)
	if !ok {
		return airlockConfig{}, fmt.Sprintf("unknown target %q", name)
	}
	cfg, err := a.derive(c.full)
	if err != nil {
		return airlockConfig{}, fmt.Sprintf("airlock-full has no `%s` section (this build does not accept it), so there is nothing to take away", a.Section)
	}
	return cfg, ""
}

// quickstartConfig builds the quickstart targets' configuration from the
// base one in the default mode (inspect): airlock.yaml's sections, with its store and approvals when
// check-config accepts them. It returns why there is none when check-config
// rejects even the sections without store and approvals, and notes in rep
// what was left out.
func (b *bench) quickstartConfig(ctx context.Context, base airlockConfig, rep *Report) (airlockConfig, string, error) {
	data := probeData{RecordingDir: b.recordingDir("probe"), KeyEnv: recordingKeyEnv, StorePath: b.storePath("probe")}
	for _, dir := range []string{data.RecordingDir, filepath.Dir(data.StorePath)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return base, "", fmt.Errorf("quickstart probe dir: %w", err)
		}
	}
	plain, all := quickstartSet(base, data)
	err := b.checkConfig(ctx, all)
	if err == nil {
		rep.Checks = append(rep.Checks, "airlock-quickstart carries airlock.yaml's `store` (SQLite, in the run's temporary directory) and `approvals` sections: check-config accepts them.")
		return all, "", nil
	}
	if !errors.Is(err, errInvalidConfig) {
		return plain, "", err
	}
	why := rejectionReason(err)
	if err := b.checkConfig(ctx, plain); err != nil {
		if !errors.Is(err, errInvalidConfig) {
			return plain, "", err
		}
		return plain, "this build rejects airlock.yaml's sections: " + rejectionReason(err), nil
	}
	rep.Checks = append(rep.Checks, "airlock-quickstart runs without airlock.yaml's `store` and `approvals`: this build rejects them ("+why+").")
	return plain, "", nil
}

// quickstartSet returns the quickstart configuration built on base without
// and with its optional sections (store, approvals).
func quickstartSet(base airlockConfig, data probeData) (plain, all airlockConfig) {
	plain = base
	plain.Mode = targetQuickstart
	plain.PGMode = "" // postgres.mode's default, inspect, as airlock.yaml leaves it
	plain.Data = data
	for _, s := range quickstartSections {
		plain = plain.with(s)
	}
	all = plain
	for _, s := range quickstartOptional {
		all = all.with(s)
	}
	return plain, all
}

// storePath is the SQLite store of the Airlock process name, when its
// configuration has one.
func (b *bench) storePath(name string) string {
	return filepath.Join(b.tmp, "stores", name+".db")
}

// floorTarget is one relay-floor target: its mode, and whether it runs
// with one P.
type floorTarget struct {
	mode string
	gmp1 bool
	args []string // further flags
}

// floorTargets are the relay-floor targets by name.
var floorTargets = map[string]floorTarget{
	targetFloorGoroutine:     {mode: "goroutine"},
	targetFloorGoroutineGMP1: {mode: "goroutine", gmp1: true},
	targetFloorLockstep:      {mode: "lockstep"},
	targetFloorEpoll:         {mode: "epoll"},
	targetFloorUring:         {mode: "uring"},
	targetFloorUringRawWait:  {mode: "uring", args: []string{"-rawwait"}},
}

// isFloor reports whether target is a relay-floor target.
func isFloor(target string) bool {
	_, ok := floorTargets[target]
	return ok
}

// anyFloor reports whether names hold a relay-floor target.
func anyFloor(names []string) bool {
	for _, n := range names {
		if isFloor(n) {
			return true
		}
	}
	return false
}

// buildFloor compiles relay-floor from the checkout into the temp dir.
func (b *bench) buildFloor(ctx context.Context) error {
	b.floorBin = filepath.Join(b.tmp, "relay-floor")
	cmd := exec.Command("go", "build", "-o", b.floorBin, "./cmd/relay-floor")
	cmd.Dir = b.repo
	if out, err := runCmd(ctx, cmd); err != nil {
		return fmt.Errorf("go build ./cmd/relay-floor: %w\n%s", err, out)
	}
	return nil
}

// floorExitUnsupported is relay-floor's exit status for a mode it does not
// know or this machine cannot run.
const floorExitUnsupported = 3

// startFloor starts relay-floor in f's mode in front of PostgreSQL (over
// TCP, whatever -upstream-socket says: the floor is a TCP relay). When
// relay-floor exits saying the mode is unknown or unsupported, the target
// is skipped with its message.
func (b *bench) startFloor(ctx context.Context, name string, f floorTarget) (*target, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(b.floorBin, append([]string{"-mode", f.mode, "-listen", addr, "-upstream", b.opt.pgAddr}, f.args...)...)
	cmd.Env = os.Environ()
	if f.gmp1 {
		cmd.Env = append(cmd.Env, gmp1)
	}
	svc, err := b.sv.start(name, cmd, filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, "", err
	}
	err = waitReady(ctx, svc, 15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if err == nil {
		// An unsupported mode may be found only after the listener is
		// open: give relay-floor a moment to say so.
		select {
		case <-svc.done:
		case <-time.After(300 * time.Millisecond):
		}
	}
	if why, ok := floorUnsupported(svc); ok {
		b.sv.remove(svc)
		return nil, why, nil
	}
	if err == nil && svc.exited() {
		err = fmt.Errorf("%s exited after start (%v):\n%s", name, svc.waitErr, svc.logTail(2000))
	}
	if err != nil {
		b.sv.remove(svc)
		return nil, "", err
	}
	return &target{name: name, host: "127.0.0.1", port: port, user: "postgres", db: b.opt.db, svc: svc}, "", nil
}

// floorUnsupported reports whether relay-floor ended because it cannot run
// its mode (status 3; status 2 with "unknown mode" from builds that
// predate status 3 for it), and its message.
func floorUnsupported(svc *service) (string, bool) {
	if !svc.exited() {
		return "", false
	}
	var ee *exec.ExitError
	if !errors.As(svc.waitErr, &ee) {
		return "", false
	}
	msg := lastLine(svc.logTail(1000))
	switch {
	case ee.ExitCode() == floorExitUnsupported:
	case ee.ExitCode() == 2 && strings.Contains(msg, "unknown mode"):
	default:
		return "", false
	}
	return "relay-floor cannot run it here: " + msg, true
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
