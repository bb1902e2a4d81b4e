package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestRedisBadInput sends what a broken or hostile client might: each gets
// Redis's own error and the connection closes, or the connection closes
// cleanly, and Airlock goes on serving.
func TestRedisBadInput(t *testing.T) {
	_, addr := startRedisMain(t)
	for _, tc := range []struct {
		name, input, want string
		authed            bool
	}{
		{"array shorter than its count", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'", true},
		{"negative bulk length", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length", true},
		{"bulk over redis.max_bulk", "*2\r\n$3\r\nGET\r\n$2000000\r\n", "-ERR Protocol error: invalid bulk length", true},
		{"huge multibulk count", "*99999999\r\n", "-ERR Protocol error: invalid multibulk length", true},
		{"bulk without its CRLF", "*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after bulk argument", true},
		{"large bulk before AUTH", "*2\r\n$4\r\nAUTH\r\n$20000\r\n", "-ERR Protocol error: unauthenticated bulk length", false},
		{"many arguments before AUTH", "*20\r\n", "-ERR Protocol error: unauthenticated multibulk length", false},
		{"unbalanced quotes inline", "GET \"k\r\n", "-ERR Protocol error: unbalanced quotes in request", true},
		{"half a command, then the client leaves", "*2\r\n$3\r\nGET\r\n$1", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if tc.authed {
				c.do("AUTH", "dev@plain", devToken)
			}
			c.write(tc.input)
			if tc.want == "" {
				_ = c.conn.(interface{ CloseWrite() error }).CloseWrite()
				c.expectClosed()
				return
			}
			if got, _ := c.readErr(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			c.expectClosed()
		})
	}
	// Airlock still serves.
	c := authed(t, addr, "dev@plain", devToken)
	if got := c.do("PING"); got != "+PONG" {
		t.Fatalf("after bad input: %s", got)
	}
}

// TestRedisLargeReplies streams a 100 MB value and a million-element list
// through Airlock with bounded memory; a caller whose replies are masked
// gets an error in place of the value too large to mask.
func TestRedisLargeReplies(t *testing.T) {
	in, addr := startRedisMain(t)
	ctx := context.Background()
	k := redisKeys(t, "big", "list")
	direct := directRedis(t, testDB)
	const size = 100 << 20
	if err := direct.Set(ctx, k[0], strings.Repeat("0123456789abcdef", size/16), 0).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 1000000
	for i := 0; i < n; i += 50000 {
		vals := make([]any, 50000)
		for j := range vals {
			vals[j] = i + j
		}
		if err := direct.RPush(ctx, k[1], vals...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	before := in.peakRSS(t)

	c := authed(t, addr, "dev@plain", devToken)
	c.send("GET", k[0])
	got, err := readLong(c)
	if err != nil || got != size {
		t.Fatalf("GET of 100 MB: %d bytes, %v", got, err)
	}
	c.send("LRANGE", k[1], "0", "-1")
	count, sum, err := readIntList(c)
	if err != nil || count != n || sum != int64(n)*(n-1)/2 {
		t.Fatalf("LRANGE: %d elements, sum %d, %v", count, sum, err)
	}
	after := in.peakRSS(t)
	t.Logf("airlock peak RSS %d KiB before, %d KiB after streaming ~108 MB", before, after)
	if after-before > 48*1024 {
		t.Fatalf("peak RSS grew by %d KiB while streaming: replies are being buffered", after-before)
	}

	m := authed(t, addr, "dev@cache", devToken)
	if got := m.do("GET", k[0]); got != fmt.Sprintf("-ERR Airlock withheld a value of %d bytes: values this large cannot be masked (redis.max_masked_value)", size) {
		t.Fatalf("masked caller, value too large to mask: %.200s", got)
	}
	if got := m.do("STRLEN", k[0]); got != ":"+strconv.Itoa(size) {
		t.Fatalf("after the withheld value: %s", got)
	}
}

// readLong reads a bulk string reply of any size and returns its length.
func readLong(c *redisConn) (int64, error) {
	var total int64
	for {
		t, err := c.dec.Next()
		if err != nil {
			return total, err
		}
		if t.Kind == resp.SimpleError {
			return total, fmt.Errorf("%s", t.Payload)
		}
		total += int64(len(t.Payload))
		if t.Complete {
			return total, nil
		}
	}
}

// readIntList reads an array of integers as bulk strings.
func readIntList(c *redisConn) (count, sum int64, err error) {
	for {
		t, err := c.dec.Next()
		if err != nil {
			return count, sum, err
		}
		if t.Kind == resp.BulkString {
			v, _ := strconv.ParseInt(string(t.Payload), 10, 64)
			count, sum = count+1, sum+v
		}
		if t.Complete {
			return count, sum, nil
		}
	}
}

// TestRedisTrackingAndPushes follows CLIENT TRACKING's invalidation pushes
// and RESP3 pub/sub pushes on a raw connection, between ordinary replies.
func TestRedisTrackingAndPushes(t *testing.T) {
	_, addr := startRedisMain(t)
	ctx := context.Background()
	k := redisKeys(t, "tracked", "ch")
	direct := directRedis(t, testDB)
	direct.Set(ctx, k[0], "v1", 0)
	c := dialRaw(t, addr)
	if got := c.do("HELLO", "3", "AUTH", "dev@cache", devToken); !strings.Contains(got, "$proto :3") {
		t.Fatalf("HELLO: %s", got)
	}
	if got := c.do("CLIENT", "TRACKING", "ON"); got != "+OK" {
		t.Fatalf("CLIENT TRACKING: %s", got)
	}
	if got := c.do("GET", k[0]); got != "$v1" {
		t.Fatalf("GET: %s", got)
	}
	direct.Set(ctx, k[0], "v2", 0)
	if got := c.read(); got != ">[$invalidate *[$"+k[0]+"]]" {
		t.Fatalf("invalidation: %s", got)
	}
	c.send("SUBSCRIBE", k[1])
	if got := c.read(); got != ">[$subscribe $"+k[1]+" :1]" {
		t.Fatalf("subscribe: %s", got)
	}
	// Commands run while subscribed in RESP3; messages arrive between.
	if got := c.do("GET", k[0]); got != "$v2" {
		t.Fatalf("GET while subscribed: %s", got)
	}
	direct.Publish(ctx, k[1], "call lea@example.com")
	if got := c.read(); got != ">[$message $"+k[1]+" $call l***@example.com]" {
		t.Fatalf("message: %s", got)
	}
	if got := c.do("PING"); got != "+PONG" {
		t.Fatalf("PING: %s", got)
	}
	c.send("QUIT")
	if got := c.read(); got != "+OK" {
		t.Fatalf("QUIT: %s", got)
	}
	if _, err := c.dec.Next(); err != io.EOF {
		t.Fatalf("after QUIT: %v", err)
	}
}

// TestRedisUpstreamACLUser has Airlock log in upstream as an ACL user with
// a password only Airlock holds, again after RESET, and refuse the caller
// when the upstream refuses Airlock.
func TestRedisUpstreamACLUser(t *testing.T) {
	testenv.Need(t, "Redis", testenv.RedisAddr)
	ctx := context.Background()
	admin := directRedis(t, testDB)
	user, password := testenv.Unique("airlock_acl"), testenv.Unique("pw")
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">"+password, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.Do(ctx, "ACL", "DELUSER", user) })
	conn := func(name, pw string) string {
		return fmt.Sprintf(`
  - name: %s
    protocol: redis
    upstream: {address: %s, database: %d, user: %s, password: %q}
    allow: [dev]
`, name, testenv.RedisAddr, testDB, user, pw)
	}
	in := startAirlock(t, redisConfig("", conn("acl", password)+conn("badpw", "wrong")))
	addr := in.addr("redis")
	k := redisKeys(t, "acl")
	c := authed(t, addr, "dev@acl", devToken)
	if got := c.do("ACL", "WHOAMI"); got != "$"+user {
		t.Fatalf("upstream user: %s", got)
	}
	c.do("SET", k[0], "v")
	if got := c.do("RESET"); got != "+RESET" {
		t.Fatalf("RESET: %s", got)
	}
	if got := c.do("GET", k[0]); got != "$v" {
		t.Fatalf("GET after RESET: %s", got)
	}
	if strings.Contains(in.Logs(), password) {
		t.Fatal("the upstream password reached the log")
	}
	b := dialRaw(t, addr)
	if got := b.do("AUTH", "dev@badpw", devToken); got != `-ERR the upstream of connection "badpw" refused Airlock's login; the connection's credentials in Airlock's configuration need fixing` {
		t.Fatalf("upstream refusing Airlock: %s", got)
	}
	b.expectClosed()
}

// TestRedisTLSClient connects with TLS to the same listener.
func TestRedisTLSClient(t *testing.T) {
	_, addr := startRedisMain(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Username: "dev@plain", Password: devToken, Protocol: 3,
		DisableIdentity: true, TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	defer rdb.Close()
	if got, err := rdb.Ping(context.Background()).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING over TLS: %q %v", got, err)
	}
}

// TestRedisRecording replays a Redis session's recording: commands with
// their secrets redacted, decisions, and replies masked as the caller saw
// them.
func TestRedisRecording(t *testing.T) {
	testenv.Need(t, "Redis", testenv.RedisAddr)
	in := startAirlock(t, redisMain)
	k := redisKeys(t, "rec")
	c := authed(t, in.addr("redis"), "dev@cache", devToken)
	c.do("SET", k[0], "reach zoe@example.com")
	c.do("GET", k[0])
	c.do("AUTH", "dev@cache", devToken)
	c.do("FLUSHALL")
	c.do("QUIT")
	c.expectClosed()
	in.stop() // close every recording
	files := recordings(t, in)
	if len(files) != 1 {
		t.Fatalf("want one recording, got %v", files)
	}
	id := strings.TrimSuffix(filepath.Base(files[0]), filepath.Ext(files[0]))
	replay, code := airlockCmd(t, in, "replay", id)
	if code != 0 {
		t.Fatalf("replay exit %d:\n%s", code, replay)
	}
	for _, want := range []string{"AUTH dev@cache ***", "z***@example.com", "admin.flush", "GET " + k[0]} {
		if !strings.Contains(replay, want) {
			t.Errorf("replay lacks %q:\n%s", want, replay)
		}
	}
	for _, leak := range []string{devToken, "zoe@example.com"} {
		if strings.Contains(replay, leak) {
			t.Errorf("the recording holds %q:\n%s", leak, replay)
		}
	}
	if v, code := airlockCmd(t, in, "verify", files[0]); code != 0 || !strings.Contains(v, "intact") {
		t.Fatalf("verify (%d): %s", code, v)
	}
}
