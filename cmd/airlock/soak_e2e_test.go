package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// Tolerances after a soak, against the baseline taken before it: every
// session's goroutines and sockets are gone (pooled PostgreSQL and MySQL upstreams
// included: the soak's pool idles out in 3s), the live heap after a
// collection is back within a few MiB, and RSS within a margin, since
// the Go runtime returns freed memory to the system gradually (not
// checked under the race detector, whose shadow memory stays).
const (
	soakGoroutineSlack = 10
	soakFDSlack        = 5
	soakHeapSlackKiB   = 8 << 10
	soakRSSSlackKiB    = 64 << 10
)

// TestSoak drives many concurrent sessions on every engine (PostgreSQL,
// MySQL, Redis and the HTTP agent API) through one Airlock: reads, writes,
// refusals and commands held for a reviewer who approves or denies them.
// Afterwards the goroutines, open files and RSS are back near the
// baseline, no session is left active in the index and every recording
// verifies. It prints p50/p99 per engine and the memory per idle and per
// active session. Short by default; `make soak` runs the full form
// (SOAK_SESSIONS, SOAK_DURATION, SOAK_THINK).
func TestSoak(t *testing.T) {
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	p := soakParamsFromEnv(t)
	plan := planSoak(p.sessions)
	pgDB := testenv.PostgresDB(t)
	myDB := mariadbDatabase(t)
	prefix := testenv.Unique("airlock_soak")
	t.Cleanup(func() { deleteRedisPrefix(t, prefix) })
	createSoakTables(t, pgDB, myDB)

	in := startAirlock(t, soakConfig(pgDB, myDB))
	s := &soak{t: t, in: in, prefix: prefix, think: p.think}
	s.warm()
	base := s.settledSample()

	s.connect(plan)
	time.Sleep(2 * time.Second)
	idle := sample(t, in)
	opened := plan.postgres + plan.mysql + plan.redis + plan.idle

	peak := s.run(p.duration)
	s.closeAll()
	after := s.settle(base)

	s.checkIndex()
	n := verifyRecordings(t, in)
	kib := func(d int, per int) float64 { return float64(d) / float64(max(per, 1)) }
	report := fmt.Sprintf(`soak: %d sessions (%s) for %v, think %v
  commands: %d reads, %d writes, %d refused, %d held (%d approved, %d denied), %d unexpected errors
  latency (held commands excluded):
%s  baseline: %s
  idle:     %s  (%d sessions open)
  peak RSS during load: %.1f MiB
  after:    %s
  memory per idle session:   %.1f KiB (RSS delta / %d), %.1f KiB of live heap
  memory per active session: %.1f KiB (peak RSS delta / %d)
  recordings verified: %d
`, p.sessions, plan, p.duration, p.think,
		s.reads.Load(), s.writes.Load(), s.refused.Load(), s.held.Load(), s.approved.Load(), s.denied.Load(), s.unexpected.Load(),
		s.lat.report(), base, idle, opened, float64(peak)/1024, after,
		kib(idle.rssKiB-base.rssKiB, opened), opened, kib(idle.heapKiB-base.heapKiB, opened),
		kib(peak-base.rssKiB, p.sessions), p.sessions, n)
	t.Log("\n" + report)
	if s.unexpected.Load() > 0 {
		t.Errorf("%d unexpected errors, the first ones:\n%s", s.unexpected.Load(), strings.Join(s.firstErrors(), "\n"))
	}
	if s.held.Load() == 0 || s.approved.Load() == 0 || s.denied.Load() == 0 || s.refused.Load() == 0 {
		t.Errorf("the load lacked a kind of command: %d held, %d approved, %d denied, %d refused",
			s.held.Load(), s.approved.Load(), s.denied.Load(), s.refused.Load())
	}
}

// soak is one soak run's clients and tallies.
type soak struct {
	t      *testing.T
	in     *instance
	prefix string
	think  time.Duration
	lat    latencies

	reads, writes, refused, held, approved, denied, unexpected atomic.Int64
	decisions                                                  atomic.Int64

	mu      sync.Mutex
	errs    []string
	clients []soakClient
}

// soakClient is one session's client: it runs command i and closes.
type soakClient interface {
	step(ctx context.Context, s *soak, i int)
	close()
}

func (s *soak) fail(engine, what string, err error) {
	s.unexpected.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf("%s %s: %v", engine, what, err))
	}
}

func (s *soak) firstErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// timed runs fn and records its duration under engine.
func (s *soak) timed(engine string, fn func()) {
	start := time.Now()
	fn()
	s.lat.add(engine, time.Since(start))
}

// warm runs a few commands on every engine and closes the sessions, so
// that the baseline includes what the first session of each kind sets up
// for good (pools, caches, the classifier's tables).
func (s *soak) warm() {
	s.connect(soakPlan{postgres: 1, mysql: 1, agent: 1, redis: 1, idle: 1})
	ctx := context.Background()
	for _, c := range s.clients {
		for i := range 5 {
			c.step(ctx, s, i)
		}
	}
	s.closeAll()
	s.lat = latencies{}
	for _, c := range []*atomic.Int64{&s.reads, &s.writes, &s.refused, &s.held, &s.approved, &s.denied} {
		c.Store(0)
	}
}

// settledSample samples the process once it has been quiet for a moment.
func (s *soak) settledSample() procSample {
	time.Sleep(2 * time.Second)
	return sample(s.t, s.in)
}

// connect opens plan's sessions, a few dozen at a time.
func (s *soak) connect(plan soakPlan) {
	t := s.t
	kinds := []struct {
		n    int
		open func(i int) (soakClient, error)
	}{
		{plan.postgres, s.openPostgres}, {plan.mysql, s.openMySQL}, {plan.agent, s.openAgent},
		{plan.redis, s.openRedis(false)}, {plan.idle, s.openRedis(true)},
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, k := range kinds {
		for i := range k.n {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				c, err := k.open(i)
				if err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("open a session: %v", err)
					}
					return
				}
				s.mu.Lock()
				s.clients = append(s.clients, c)
				s.mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d sessions did not open", failed.Load())
	}
}

// run has every client step through commands for d while a reviewer
// decides the held ones; it returns the highest RSS seen, in KiB.
func (s *soak) run(d time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range s.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				c.step(ctx, s, i)
				select {
				case <-ctx.Done():
				case <-time.After(s.think):
				}
			}
		}()
	}
	// The reviewer keeps deciding until the last held command has its
	// answer, after the load stops.
	reviewing, stopReview := context.WithCancel(context.Background())
	reviewed := make(chan struct{})
	go func() { defer close(reviewed); s.review(reviewing) }()
	peak := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-tick.C:
			peak = max(peak, statusKiB(s.t, s.in.cmd.Process.Pid, "VmRSS:"))
		case <-done:
			stopReview()
			<-reviewed
			return max(peak, statusKiB(s.t, s.in.cmd.Process.Pid, "VmRSS:"))
		}
	}
}

// review approves and denies, in turn, every pending request, as a
// reviewer on the admin API would.
func (s *soak) review(ctx context.Context) {
	client := &http.Client{Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		var list struct {
			Approvals []struct {
				ID string `json:"id"`
			} `json:"approvals"`
		}
		if err := s.admin(client, "GET", "/api/approvals?status=pending&limit=1000", &list); err != nil {
			s.fail("reviewer", "list", err)
		}
		for _, a := range list.Approvals {
			verb := "approve"
			if s.decisions.Add(1)%2 == 0 {
				verb = "deny"
			}
			if err := s.admin(client, "POST", "/api/approvals/"+a.ID+"/"+verb, nil); err != nil &&
				!strings.Contains(err.Error(), "409") {
				s.fail("reviewer", verb, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// admin calls the admin API as the reviewer dev and decodes the answer
// into v when v is not nil.
func (s *soak) admin(c *http.Client, method, path string, v any) error {
	body := strings.NewReader("")
	if method == "POST" {
		body = strings.NewReader(`{"reason":"soak"}`)
	}
	req, err := http.NewRequest(method, "http://"+s.in.admin+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+devToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if v != nil {
		return json.NewDecoder(resp.Body).Decode(v)
	}
	return nil
}

func (s *soak) closeAll() {
	for _, c := range s.clients {
		c.close()
	}
	s.clients = nil
}

// settle waits until the goroutines and open files are back within their
// slack of base, and checks RSS; it returns the last sample.
func (s *soak) settle(base procSample) procSample {
	t := s.t
	var last procSample
	deadline := time.Now().Add(30 * time.Second)
	for {
		last = sample(t, s.in)
		back := last.goroutines <= base.goroutines+soakGoroutineSlack && last.fds <= base.fds+soakFDSlack &&
			last.heapKiB <= base.heapKiB+soakHeapSlackKiB && (raceBuild() || last.rssKiB <= base.rssKiB+soakRSSSlackKiB)
		if back || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if last.goroutines > base.goroutines+soakGoroutineSlack {
		t.Errorf("goroutines: %d after the soak, %d before (slack %d)\n%s", last.goroutines, base.goroutines,
			soakGoroutineSlack, goroutineDump(s.in))
	}
	if last.fds > base.fds+soakFDSlack {
		out, _ := exec.Command("ss", "-tanp").CombinedOutput()
		t.Errorf("open files: %d after the soak, %d before (slack %d):\n%s\nsockets:\n%s", last.fds, base.fds, soakFDSlack,
			openFiles(s.in), grepLines(string(out), fmt.Sprintf("pid=%d,", s.in.cmd.Process.Pid)))
	}
	if last.heapKiB > base.heapKiB+soakHeapSlackKiB {
		t.Errorf("live heap: %d KiB after the soak, %d KiB before (slack %d KiB); profile: %s", last.heapKiB,
			base.heapKiB, soakHeapSlackKiB, saveHeapProfile(s.in))
	}
	if !raceBuild() && last.rssKiB > base.rssKiB+soakRSSSlackKiB {
		t.Errorf("RSS: %d KiB after the soak, %d KiB before (slack %d KiB)", last.rssKiB, base.rssKiB, soakRSSSlackKiB)
	}
	return last
}

// checkIndex: no session is left active in the session index.
func (s *soak) checkIndex() {
	t := s.t
	out, code := airlockCmd(t, s.in, "sessions", "list", "--active", "--json", "--limit", "100")
	if code != 0 {
		t.Fatalf("airlock sessions list: exit %d\n%s", code, out)
	}
	var active []json.RawMessage
	if err := json.Unmarshal([]byte(out), &active); err != nil {
		t.Fatalf("sessions list: %v\n%s", err, out)
	}
	if len(active) > 0 {
		t.Errorf("%d sessions still active in the index after every client left:\n%s", len(active), out)
	}
}

// openPostgres opens a pgx session as agent.
func (s *soak) openPostgres(i int) (soakClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.in.url("agent", agentToken, "pg", "connect_timeout=20"))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &pgSoak{conn: c, worker: i}, nil
}

// openMySQL opens one go-sql-driver connection as agent.
func (s *soak) openMySQL(i int) (soakClient, error) {
	cfg := driver.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", s.in.addr("mysql"), "agent", agentToken, "my"
	cfg.Timeout, cfg.InterpolateParams = 20*time.Second, true
	connector, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connector.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	return &mySoak{conn: conn, worker: i}, nil
}

// openRedis opens one go-redis connection as agent; an idle one only
// pings.
func (s *soak) openRedis(idle bool) func(i int) (soakClient, error) {
	return func(i int) (soakClient, error) {
		c := redis.NewClient(&redis.Options{Addr: s.in.addr("redis"), Username: "agent", Password: agentToken,
			Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1, DialTimeout: 20 * time.Second})
		conn := c.Conn()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Ping(ctx).Err(); err != nil {
			conn.Close()
			c.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		return &rdSoak{client: c, conn: conn, idle: idle, key: fmt.Sprintf("%s:w%d", s.prefix, i)}, nil
	}
}

// openAgent is an agent API caller on one kept-alive HTTP connection.
func (s *soak) openAgent(i int) (soakClient, error) {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	return &agentSoak{base: "http://" + s.in.addr("http"), client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		key: fmt.Sprintf("%s:a%d", s.prefix, i)}, nil
}
