package main

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Target names, in the order each round runs them.
const (
	targetDirect    = "direct"
	targetPgbouncer = "pgbouncer"
	targetRelay     = "airlock-relay"
	targetInspect   = "airlock-decode"
	targetFull      = "airlock-full"
	targetNoMask    = "airlock-full-nomask"
	targetNoRec     = "airlock-full-norec"

	targetQuickstart       = "airlock-quickstart"
	targetQuickstartNoMask = "airlock-quickstart-nomask"
	targetRelayNoAwake     = "airlock-relay-noawake"
	targetRelayGMP1        = "airlock-relay-gmp1"
	targetRelayGMP1Awake   = "airlock-relay-gmp1-awake"
	targetFullNoAwake      = "airlock-full-noawake"

	targetFloorGoroutine     = "floor-goroutine"
	targetFloorGoroutineGMP1 = "floor-goroutine-gmp1"
	targetFloorLockstep      = "floor-lockstep"
	targetFloorEpoll         = "floor-epoll"
	targetFloorUring         = "floor-uring"
	targetFloorUringRawWait  = "floor-uring-rawwait"
)

// allTargets is the run order: direct first, so every other target in a
// round is compared with a direct run made moments before, and the
// ablations right after airlock-full, which they are compared with.
var allTargets = []string{targetDirect, targetPgbouncer, targetRelay, targetInspect, targetFull, targetNoMask, targetNoRec,
	targetQuickstart, targetQuickstartNoMask,
	targetRelayNoAwake, targetRelayGMP1, targetRelayGMP1Awake, targetFullNoAwake,
	targetFloorGoroutine, targetFloorGoroutineGMP1, targetFloorLockstep, targetFloorEpoll, targetFloorUring, targetFloorUringRawWait}

// runtimeWorkloads are the workloads the runtime experiments read: one
// client and sixteen, prepared statements.
var runtimeWorkloads = []string{"select-prepared-c1", "select-prepared-c16"}

// targetWorkloads restricts a target to the workloads it is compared on, so
// that the experiments do not lengthen a full run by running everywhere.
// A target not listed runs on every workload (ablations: see
// Workload.Ablations).
var targetWorkloads = map[string][]string{
	targetQuickstart:         {"select-simple-c1", "select-prepared-c16", "ordinary-c4", "connect-c4"},
	targetQuickstartNoMask:   {"ordinary-c4"},
	targetRelayNoAwake:       runtimeWorkloads,
	targetRelayGMP1:          runtimeWorkloads,
	targetRelayGMP1Awake:     runtimeWorkloads,
	targetFullNoAwake:        runtimeWorkloads,
	targetFloorGoroutine:     runtimeWorkloads,
	targetFloorGoroutineGMP1: runtimeWorkloads,
	targetFloorLockstep:      runtimeWorkloads,
	targetFloorEpoll:         runtimeWorkloads,
	targetFloorUring:         runtimeWorkloads,
	targetFloorUringRawWait:  runtimeWorkloads,
}

// isAblation reports whether target is derived from airlock-full minus one
// feature; those run only on workloads with Ablations set.
func isAblation(target string) bool {
	_, ok := ablationFor(target)
	return ok
}

// benchIdentity and benchConnection are Airlock's caller and route names.
const (
	benchIdentity   = "bench"
	benchConnection = "airlock_bench"
)

// target is one endpoint pgbench runs against.
type target struct {
	name     string
	host     string
	port     int
	user     string
	db       string
	password string   // handed to clients only through PGPASSWORD
	svc      *service // the process measured; nil for direct
	admin    int      // Airlock's admin port (metrics), 0 for others
	work     string   // Airlock's working directory, where relative defaults point
}

// pid is the process whose CPU is charged to the target, 0 for direct.
func (t *target) pid() int {
	if t.svc == nil {
		return 0
	}
	return t.svc.pid()
}

// connConfig returns a pgconn configuration for the target.
func (t *target) connConfig() (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=10",
		t.host, t.port, t.user, t.db))
	if err != nil {
		return nil, fmt.Errorf("connection config for %s: %w", t.name, err)
	}
	cfg.Password = t.password
	return cfg, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the service binds it; the service then fails to start and
// the harness reports that.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// directTarget is PostgreSQL itself.
func (b *bench) directTarget(db string) *target {
	host, port, _ := net.SplitHostPort(b.opt.pgAddr)
	p, _ := strconv.Atoi(port)
	return &target{name: targetDirect, host: host, port: p, user: "postgres", db: db}
}

// buildAirlock compiles the gateway from the checkout into the temp dir.
func (b *bench) buildAirlock(ctx context.Context) error {
	b.airlockBin = filepath.Join(b.tmp, "airlock")
	cmd := exec.Command("go", "build", "-o", b.airlockBin, "./cmd/airlock")
	cmd.Dir = b.repo
	if out, err := runCmd(ctx, cmd); err != nil {
		return fmt.Errorf("go build ./cmd/airlock: %w\n%s", err, out)
	}
	return nil
}

// newToken makes the bench identity's token and its hash through
// `airlock hash-token`, the way an operator would.
func (b *bench) newToken(ctx context.Context) error {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate token: %w", err)
	}
	b.token = hex.EncodeToString(raw)
	cmd := exec.Command(b.airlockBin, "hash-token")
	cmd.Stdin = strings.NewReader(b.token + "\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := runCmd(ctx, cmd)
	if err != nil {
		return fmt.Errorf("airlock hash-token: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	b.tokenHash = strings.TrimSpace(string(out))
	if len(b.tokenHash) != 64 {
		return fmt.Errorf("airlock hash-token printed %d characters, want a 64-digit hash", len(b.tokenHash))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate recording key: %w", err)
	}
	b.recordingKey = hex.EncodeToString(key)
	return nil
}

// airlockEnv is the environment of Airlock processes and check-config.
func (b *bench) airlockEnv() []string {
	return append(os.Environ(), recordingKeyEnv+"="+b.recordingKey)
}

// errInvalidConfig marks a configuration check-config rejected.
var errInvalidConfig = errors.New("configuration rejected")

// checkConfig runs `airlock check-config` on cfg. A rejection returns
// errInvalidConfig wrapped with check-config's own explanation.
func (b *bench) checkConfig(ctx context.Context, cfg airlockConfig) error {
	y, err := cfg.render()
	if err != nil {
		return err
	}
	return b.checkConfigYAML(ctx, y)
}

// checkConfigYAML runs `airlock check-config` on the configuration y.
func (b *bench) checkConfigYAML(ctx context.Context, y []byte) error {
	f, err := os.CreateTemp(b.tmp, "check-*.yaml")
	if err != nil {
		return fmt.Errorf("write config to check: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(y); err != nil {
		f.Close()
		return fmt.Errorf("write config to check: %w", err)
	}
	f.Close()
	cmd := exec.Command(b.airlockBin, "check-config", f.Name())
	cmd.Env = b.airlockEnv()
	out, err := runCmd(ctx, cmd)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		msg := strings.ReplaceAll(strings.TrimSpace(string(out)), f.Name(), "config")
		return fmt.Errorf("%w: %s", errInvalidConfig, msg)
	default:
		return fmt.Errorf("airlock check-config: %w: %s", err, strings.TrimSpace(string(out)))
	}
}

// probeResult is what check-config said about one probed section shape.
type probeResult struct {
	Section  string
	Level    string
	Shape    string // as written, with the temp dir shown as <tmp>
	Accepted bool
	Reason   string // first line of the rejection
}

// probeFull builds the full mode's configuration: the inspect one plus each
// section check-config accepts, added one at a time so that a section that
// only fails in combination is left out too. base.Data fills the shapes for
// check-config; shapes are shown in the report filled with show.
func (b *bench) probeFull(ctx context.Context, base airlockConfig, show probeData) (airlockConfig, []probeResult, error) {
	cur := base
	active := map[string]bool{}
	var results []probeResult
	for _, p := range fullSections {
		if active[p.Name] {
			continue
		}
		for _, shape := range p.Shapes {
			s, err := renderShape(shape, show)
			if err != nil {
				return cur, results, err
			}
			cand := cur.with(section{Name: p.Name, Level: p.Level, Shape: shape})
			err = b.checkConfig(ctx, cand)
			r := probeResult{Section: p.Name, Level: p.Level.String(), Shape: s}
			switch {
			case err == nil:
				r.Accepted = true
				cur = cand
				active[p.Name] = true
			case errors.Is(err, errInvalidConfig):
				r.Reason = rejectionReason(err)
			default:
				return cur, results, err
			}
			results = append(results, r)
			if r.Accepted {
				break
			}
		}
	}
	return cur, results, nil
}

// rejectionReason keeps the most telling line of a check-config rejection:
// the first one that names a configuration path.
func rejectionReason(err error) string {
	lines := strings.Split(strings.TrimPrefix(err.Error(), errInvalidConfig.Error()+": "), "\n")
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasSuffix(l, "invalid configuration:") {
			return l
		}
	}
	return strings.TrimSpace(lines[0])
}

// startAirlock starts one Airlock process for mode with cfg (its ports are
// filled in here) and waits until it is ready.
func (b *bench) startAirlock(ctx context.Context, name string, cfg airlockConfig) (*target, error) {
	var err error
	if cfg.Port, err = freePort(); err != nil {
		return nil, err
	}
	if cfg.AdminPort, err = freePort(); err != nil {
		return nil, err
	}
	// Each process records into its own directory, so that what one
	// target wrote can be told from another's.
	cfg.Data.RecordingDir = b.recordingDir(name)
	cfg.Data.StorePath = b.storePath(name)
	for _, dir := range []string{cfg.Data.RecordingDir, filepath.Dir(cfg.Data.StorePath)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("%s data dir: %w", name, err)
		}
	}
	y, err := cfg.render()
	if err != nil {
		return nil, err
	}
	svc, work, err := b.serveAirlock(ctx, name, y, cfg.AdminPort, cfg.Env...)
	if err != nil {
		return nil, err
	}
	return &target{name: name, host: "127.0.0.1", port: cfg.Port, user: benchIdentity,
		db: cfg.Connection, password: b.token, svc: svc, admin: cfg.AdminPort, work: work}, nil
}

// serveAirlock checks the configuration y, starts Airlock on it as name and
// waits until its admin port says it is ready. env is added to its
// environment.
func (b *bench) serveAirlock(ctx context.Context, name string, y []byte, adminPort int, env ...string) (*service, string, error) {
	if err := b.checkConfigYAML(ctx, y); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	path := filepath.Join(b.tmp, name+".yaml")
	if err := os.WriteFile(path, y, 0o600); err != nil {
		return nil, "", fmt.Errorf("write %s config: %w", name, err)
	}
	// Each process gets its own working directory: defaults such as the
	// embedded approvals store are relative paths, and processes must not
	// share them.
	work := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, "", fmt.Errorf("%s working dir: %w", name, err)
	}
	cmd := exec.Command(b.airlockBin, "serve", "--config", path)
	cmd.Env = append(b.airlockEnv(), env...)
	cmd.Dir = work
	svc, err := b.sv.start(name, cmd, filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort)
	if err := waitReady(ctx, svc, 30*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		b.sv.remove(svc)
		return nil, "", err
	}
	return svc, work, nil
}

// recordingDir is where the Airlock process name records when its
// configuration names a recording directory.
func (b *bench) recordingDir(name string) string {
	return filepath.Join(b.recordingRoot(), name)
}

// recordingRoot holds the run's recording directories: in its temporary
// directory, or in a subdirectory named after it under -recordings.
func (b *bench) recordingRoot() string {
	if b.opt.recordings != "" {
		return filepath.Join(b.opt.recordings, filepath.Base(b.tmp)+"-recordings")
	}
	return filepath.Join(b.tmp, "recordings")
}

// waitReady polls ready until it holds, the service exits or the timeout.
func waitReady(ctx context.Context, svc *service, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if svc.exited() {
			return fmt.Errorf("%s exited during start (%v):\n%s", svc.name, svc.waitErr, svc.logTail(2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s:\n%s", svc.name, timeout, svc.logTail(2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startPgbouncer starts pgbouncer in session mode in front of the local
// PostgreSQL. pgbouncer refuses to run as root, so when the harness is root
// it runs as the postgres system user, with its files owned by that user.
func (b *bench) startPgbouncer(ctx context.Context, name string, maxClients int) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.tmp, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgbouncer dir: %w", err)
	}
	_, pgPort, _ := net.SplitHostPort(b.opt.pgAddr)
	pp, _ := strconv.Atoi(pgPort)
	ini, err := pgbouncerConfig{DB: b.opt.db, PGHost: b.upstreamHost(), PGPort: pp, Port: port, Dir: dir, PoolSize: 32, MaxClients: maxClients}.render()
	if err != nil {
		return nil, err
	}
	// Clients authenticate with a password (md5), as they authenticate to
	// Airlock with a token: one round trip each, so connect-c4 compares
	// like with like. PostgreSQL itself still trusts pgbouncer.
	password := rand.Text()
	sum := md5.Sum([]byte(password + "postgres"))
	userlist := fmt.Sprintf("%q %q\n", "postgres", "md5"+hex.EncodeToString(sum[:]))
	files := map[string][]byte{"pgbouncer.ini": ini, "userlist.txt": []byte(userlist)}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			return nil, fmt.Errorf("write pgbouncer %s: %w", f, err)
		}
	}
	cmd := exec.Command(b.pgbouncerBin, filepath.Join(dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 {
		uid, gid, err := lookupUser("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer will not run as root and %w", err)
		}
		for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "userlist.txt")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, fmt.Errorf("hand pgbouncer files to postgres: %w", err)
			}
		}
		// Set before exec rather than with -u: the kernel clears the
		// parent-death signal when a process changes its own user.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	svc, err := b.sv.start(name, cmd, filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	t := &target{name: name, host: "127.0.0.1", port: port, user: "postgres", db: b.opt.db, svc: svc, password: password}
	if err := waitReady(ctx, svc, 15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}); err != nil {
		b.sv.remove(svc)
		return nil, err
	}
	return t, nil
}

func lookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("no %q user to run it as: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", name, err)
	}
	return uid, gid, nil
}
