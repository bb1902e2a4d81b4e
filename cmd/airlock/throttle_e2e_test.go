package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// throttleConfig is a Redis listener whose throttle's delays are short
// enough for a test: 2ms doubling up to 200ms after 3 free failures.
func throttleConfig() string {
	return fmt.Sprintf(`
listen:
  redis: 127.0.0.1:0
  admin: 127.0.0.1:0
log: {level: info, format: text}
debug: {pprof: true}
identities:
  - name: dev
    token_sha256: %s
  - name: agent
    token_sha256: %s
reload: {allow: [dev]}
auth_throttle:
  base_delay: 2ms
  max_delay: 200ms
  log_burst: 5
  log_interval: 1m
connections:
  - name: main
    protocol: redis
    upstream: {address: %s, database: 0}
    allow: [dev, agent]
`, devTokenHash, identity.HashToken("agent-token"), testenv.RedisAddr)
}

// metricValue is the value of the sample named series (with its labels)
// in an exposition, or 0.
func metricValue(exposition, series string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// TestAuthThrottle: a client that tries 10,000 wrong tokens at one
// identity over eight concurrent connections gets far fewer answered in
// the test's window, because each failure past the free ones is answered
// later (with the throttle off, the same flood gets thousands answered);
// meanwhile another identity with its right token logs in promptly; the
// log holds a bounded number of lines for the flood, and the metrics
// count the failures and the throttled answers. The admin API's wrong
// tokens are counted and throttled the same way.
func TestAuthThrottle(t *testing.T) {
	testenv.Need(t, "Redis", testenv.RedisAddr)
	t.Run("disabled", func(t *testing.T) {
		off := startAirlock(t, strings.Replace(throttleConfig(), "auth_throttle:\n", "auth_throttle:\n  disabled: true\n", 1))
		sent, n, _ := flood(t, off.addr("redis"), 5*time.Second)
		t.Logf("throttle off: %d guesses sent, %d answered", sent, n)
		if n < 2000 {
			t.Fatalf("only %d wrong tokens answered without the throttle: the comparison says nothing", n)
		}
		off.stop()
	})
	in := startAirlock(t, throttleConfig())
	addr := in.addr("redis")
	logsBefore := strings.Count(in.Logs(), "\n")
	sent, n, slowest := flood(t, addr, 5*time.Second)
	t.Logf("%d guesses sent, %d answered in 5 s; slowest right login %s", sent, n, slowest)
	// Late answers to one source queue one delay apart whatever the number
	// of connections: about 5 s / max_delay (25) once the delays have
	// grown, plus the free failures and the short early delays.
	if n >= 100 {
		t.Fatalf("%d wrong tokens answered in 5 s over 8 connections: the rate was not held", n)
	}
	if slowest > time.Second {
		t.Fatalf("a right token took %s to log in during the flood", slowest)
	}
	// Delays grew to the cap: one more guess waits about max_delay.
	c := dialRaw(t, addr)
	start := time.Now()
	if got := c.do("AUTH", "agent", "wrong"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Fatalf("wrong AUTH: %s", got)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("a guess after the flood was answered in %s, want about max_delay (200ms)", d)
	}
	time.Sleep(300 * time.Millisecond) // guesses still pending are answered
	m := in.metrics(t)
	failures := metricValue(m, `airlock_auth_failures_total{protocol="redis",reason="token"}`)
	throttled := metricValue(m, `airlock_auth_throttled_total{protocol="redis"}`)
	if failures < float64(n) || throttled < float64(n)-3 {
		t.Fatalf("metrics: %v failures, %v throttled, for %d answered guesses", failures, throttled, n)
	}
	logs := in.Logs()
	if got := strings.Count(logs, `msg="authentication failed"`); got != 5 {
		t.Fatalf("%d failures logged one by one, want log_burst (5)", got)
	}
	if lines := strings.Count(logs, "\n") - logsBefore; lines > 40 {
		t.Fatalf("the flood of %d guesses took %d log lines:\n%s", n, lines, logs)
	}
	if strings.Contains(logs, "wrong-token-") {
		t.Fatal("a guessed token reached the log")
	}
	testAdminThrottle(t, in)
}

// flood sends up to 10,000 wrong tokens for identity agent over eight
// connections for window, while identity dev logs in every half second;
// it returns the guesses sent and answered and the slowest right login.
func flood(t *testing.T, addr string, window time.Duration) (sent, answered int64, slowest time.Duration) {
	const guesses, workers = 10000, 8
	var sentN, answeredN atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guess(t, addr, &sentN, &answeredN, guesses, stop)
		}()
	}
	for range int(window / (500 * time.Millisecond)) {
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		c := dialRaw(t, addr)
		if got := c.do("AUTH", "dev", devToken); got != "+OK" {
			t.Fatalf("AUTH dev during the flood: %s", got)
		}
		if got := c.do("PING"); got != "+PONG" {
			t.Fatalf("PING: %s", got)
		}
		slowest = max(slowest, time.Since(start))
		c.conn.Close()
	}
	close(stop)
	wg.Wait()
	return min(sentN.Load(), guesses), answeredN.Load(), slowest
}

// guess sends wrong tokens for identity agent, three per connection (the
// Redis listener closes a connection after three), until stop or until
// total guesses were sent.
func guess(t *testing.T, addr string, sent, answered *atomic.Int64, total int64, stop <-chan struct{}) {
	for {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		c := &redisConn{t: t, conn: conn, dec: resp.NewReplyDecoder(bufio.NewReader(conn), resp.ReplyOptions{})}
		for range 3 {
			select {
			case <-stop:
				c.conn.Close()
				return
			default:
			}
			i := sent.Add(1)
			if i > total {
				c.conn.Close()
				return
			}
			if _, err := conn.Write(resp.AppendCommand(nil, "AUTH", "agent", fmt.Sprintf("wrong-token-%d", i))); err != nil {
				break
			}
			got, err := c.readErr()
			if err != nil {
				break
			}
			if !strings.HasPrefix(got, "-WRONGPASS") {
				t.Errorf("wrong AUTH: %s", got)
				return
			}
			answered.Add(1)
		}
		c.conn.Close()
	}
}

// testAdminThrottle: wrong tokens on the admin API are answered 401,
// counted, and (the source having failed often) answered late; a right
// token with the right role reloads; /healthz, /readyz and /metrics need
// none; pprof is served on this loopback admin address.
func testAdminThrottle(t *testing.T, in *instance) {
	post := func(token string) (int, time.Duration) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+in.admin+"/admin/reload", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	for range 3 {
		if code, d := post("wrong-admin-token"); code != http.StatusUnauthorized || d < 150*time.Millisecond {
			t.Fatalf("wrong admin token: %d after %s, want 401 after about max_delay", code, d)
		}
	}
	if code, d := post("agent-token"); code != http.StatusForbidden || d > time.Second {
		t.Fatalf("agent (not in reload.allow): %d after %s, want 403 at once", code, d)
	}
	if code, d := post(devToken); code != http.StatusOK || d > 2*time.Second {
		t.Fatalf("dev reload: %d after %s", code, d)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/"} {
		resp, err := http.Get("http://" + in.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s without a token: %d", path, resp.StatusCode)
		}
	}
	m := in.metrics(t)
	if v := metricValue(m, `airlock_auth_failures_total{protocol="admin",reason="token"}`); v != 3 {
		t.Fatalf("admin failures counted %v, want 3", v)
	}
	if v := metricValue(m, `airlock_auth_throttled_total{protocol="admin"}`); v != 3 {
		t.Fatalf("admin failures throttled %v, want 3", v)
	}
	if regexp.MustCompile(`wrong-admin-token`).MatchString(in.Logs()) {
		t.Fatal("an admin token reached the log")
	}
}
