package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// The Redis tests' databases on the shared server: testDB holds keys with
// a random prefix, deleted at the end; flushDB is emptied by the FLUSHDB
// test, and nothing else uses it.
const (
	testDB  = 11
	flushDB = 12
)

// redisPolicy is the policy the quickstart gives Redis connections:
// commands that watch or list other clients are denied outright.
const redisPolicy = `
    policy:
      rules:
        admin.monitor: deny
        admin.inspect: deny
        admin.kill: deny
        admin.shutdown: deny
        admin.debug: deny
`

// redisConfig is a configuration with a Redis listener and the given
// connections (YAML list entries); every session is recorded.
func redisConfig(extra, conns string) string {
	return fmt.Sprintf(`
listen:
  redis: 127.0.0.1:0
  admin: 127.0.0.1:0
log:
  level: debug
  format: text
identities:
  - name: dev
    groups: [developers]
    token_sha256: %s
  - name: agent
    groups: [agents]
    token_sha256: %s
policy:
  rules:
    reach.*: deny
%s
connections:
%s
`, devTokenHash, identity.HashToken("agent-token"), extra, conns)
}

// redisConn is a raw client connection, for what client libraries hide:
// inline commands, malformed input, replies as they are on the wire.
type redisConn struct {
	t    *testing.T
	conn net.Conn
	dec  *resp.ReplyDecoder
}

func dialRaw(t *testing.T, addr string) *redisConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A deadline only so that a missing reply fails the test instead of
	// hanging it.
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	return &redisConn{t: t, conn: conn, dec: resp.NewReplyDecoder(bufio.NewReaderSize(conn, 64<<10), resp.ReplyOptions{})}
}

func (c *redisConn) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *redisConn) send(args ...string) {
	c.t.Helper()
	c.write(string(resp.AppendCommand(nil, args...)))
}

// read reads one reply and describes it compactly: +OK, -ERR …, :1, $v,
// $nil, _ (null), #t, ,1.5, =txt:…, and aggregates as *[a b] %{k v} ~[…]
// >[…], with their elements described the same way.
func (c *redisConn) read() string {
	c.t.Helper()
	s, err := c.readErr()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return s
}

func (c *redisConn) readErr() (string, error) {
	var b strings.Builder
	var open []int64 // elements left per open aggregate
	for {
		t, err := c.dec.Next()
		if err != nil {
			return b.String(), err
		}
		if t.Attr {
			continue
		}
		if len(open) > 0 && t.Part != resp.PartChunk && t.Part != resp.PartEnd {
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "[") && !strings.HasSuffix(b.String(), "{") {
				b.WriteByte(' ')
			}
		}
		switch {
		case t.Part == resp.PartBegin:
			b.WriteString("$")
		case t.Part == resp.PartChunk:
			b.Write(t.Payload)
		case t.Part == resp.PartEnd:
		case t.Kind.Aggregate() && t.Len > 0:
			open = append(open, t.Len*map[bool]int64{true: 2, false: 1}[t.Kind == resp.Map])
			b.WriteString(map[resp.Kind]string{resp.Array: "*[", resp.Map: "%{", resp.Set: "~[", resp.Push: ">["}[t.Kind])
			continue
		case t.IsNull():
			b.WriteString(map[bool]string{true: "_", false: "$nil"}[t.Kind == resp.Null])
		case t.Kind.Aggregate():
			b.WriteString(string(t.Kind) + "[]")
		case t.Kind == resp.BulkString:
			b.WriteString("$" + string(t.Payload))
		case t.Kind == resp.Verbatim:
			b.WriteString("=" + string(t.Format) + ":" + string(t.Payload))
		default:
			b.WriteString(string(t.Kind) + string(t.Payload))
		}
		if t.Part == resp.PartBegin || t.Part == resp.PartChunk {
			continue
		}
		for len(open) > 0 {
			open[len(open)-1]--
			if open[len(open)-1] > 0 {
				break
			}
			open = open[:len(open)-1]
			b.WriteString(map[bool]string{true: "}", false: "]"}[strings.LastIndexAny(b.String(), "{[") >= 0 && b.String()[strings.LastIndexAny(b.String(), "{[")] == '{'])
		}
		if t.Complete {
			return b.String(), nil
		}
	}
}

func (c *redisConn) do(args ...string) string {
	c.t.Helper()
	c.send(args...)
	return c.read()
}

// expectClosed reads until the connection ends and fails when it does not.
func (c *redisConn) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.conn.Read(buf); err != nil {
			if isTimeoutErr(err) {
				c.t.Fatal("connection still open")
			}
			return
		}
	}
}

// keys returns key names with a random prefix of the test's own and
// deletes them from testDB when the test ends.
func redisKeys(t *testing.T, names ...string) []string {
	t.Helper()
	prefix := testenv.Unique("airlock_e2e")
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + ":" + n
	}
	t.Cleanup(func() {
		c := directRedis(t, testDB)
		if err := c.Del(context.Background(), out...).Err(); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	})
	return out
}

// directRedis is a go-redis client straight to the local Redis, database
// db, for setting up and checking what went through Airlock.
func directRedis(t *testing.T, db int) *redis.Client {
	t.Helper()
	testenv.Need(t, "Redis", testenv.RedisAddr)
	c := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr, DB: db, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// throughAirlock is a go-redis client through Airlock.
func throughAirlock(t *testing.T, addr, user, token string, proto int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: token, Protocol: proto,
		DisableIdentity: true, MaxRetries: -1, ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// redisCLI runs the real redis-cli through Airlock.
func redisCLI(t *testing.T, addr, stdin string, args ...string) (string, error) {
	t.Helper()
	needTool(t, "redis-cli")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port, "--no-auth-warning"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// needTool skips a test without a command-line tool, and fails it under CI.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s is not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// heldRedis is a command a go-redis client sent that Airlock holds.
type heldRedis struct {
	done chan error
}

func startHeldRedis(f func() error) *heldRedis {
	h := &heldRedis{done: make(chan error, 1)}
	go func() { h.done <- f() }()
	return h
}

func (h *heldRedis) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the held command did not return")
		return nil
	}
}

// pendingRequest waits for a pending approval request of command on
// connection and returns its id.
func pendingRequest(t *testing.T, in *instance, connection, command string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(approvalsCLI(t, in, "list"), "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[1] == "pending" && f[3] == connection && strings.EqualFold(f[len(f)-1], command) {
				return f[0]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no pending approval request")
	return ""
}
