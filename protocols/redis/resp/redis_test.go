package resp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// redisConn is a raw connection to the local Redis whose replies are read
// with a ReplyDecoder. It records the bytes received and the tokens' raw
// bytes, and checks at the end that they are the same.
type redisConn struct {
	t        *testing.T
	conn     net.Conn
	reader   *bufio.Reader
	dec      *ReplyDecoder
	received bytes.Buffer
	raws     []byte
}

func dialRedis(t *testing.T, opts ReplyOptions) *redisConn {
	t.Helper()
	testenv.Need(t, "Redis", testenv.RedisAddr)
	conn, err := net.DialTimeout("tcp", testenv.RedisAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A deadline only so that a missing reply fails the test instead of
	// hanging it; no assertion depends on time.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &redisConn{t: t, conn: conn}
	c.reader = bufio.NewReaderSize(io.TeeReader(conn, &c.received), 4096)
	c.dec = NewReplyDecoder(c.reader, opts)
	t.Cleanup(func() {
		conn.Close()
		got := c.received.Bytes()[:c.received.Len()-c.reader.Buffered()]
		if !bytes.Equal(got, c.raws) {
			t.Errorf("the tokens' raw bytes (%d) differ from the bytes received (%d)", len(c.raws), len(got))
		}
	})
	return c
}

func (c *redisConn) send(args ...string) {
	c.t.Helper()
	if _, err := c.conn.Write(AppendCommand(nil, args...)); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one top-level value.
func (c *redisConn) read() *node {
	c.t.Helper()
	n, err := readValue(&recordingDecoder{c})
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return n
}

func (c *redisConn) do(args ...string) *node {
	c.t.Helper()
	c.send(args...)
	return c.read()
}

// recordingDecoder wraps the decoder so every token's raw bytes are kept.
type recordingDecoder struct{ c *redisConn }

func (r *recordingDecoder) Next() (Token, error) {
	t, err := r.c.dec.Next()
	r.c.raws = append(r.c.raws, t.Raw...)
	return t, err
}

func (r *recordingDecoder) Depth() int { return r.c.dec.Depth() }

func expect(t *testing.T, what string, n *node, kind Kind, str string) {
	t.Helper()
	if n.kind != kind || n.str != str {
		t.Fatalf("%s: got %v %q, want %v %q", what, n.kind, n.str, kind, str)
	}
}

// testKeys returns unique key names and deletes them when the test ends.
func testKeys(t *testing.T, names ...string) []string {
	prefix := testenv.Unique("airlock_resp")
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = prefix + ":" + n
	}
	t.Cleanup(func() {
		conn, err := net.DialTimeout("tcp", testenv.RedisAddr, 5*time.Second)
		if err != nil {
			t.Errorf("delete test keys: %v", err)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write(AppendCommand(nil, append([]string{"DEL"}, keys...)...))
		if err == nil {
			_, err = NewReplyDecoder(bufio.NewReader(conn), ReplyOptions{}).Next()
		}
		if err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	})
	return keys
}

func TestRedisRESP2(t *testing.T) {
	c := dialRedis(t, ReplyOptions{})
	k := testKeys(t, "str", "hash", "set", "zset", "big")
	expect(t, "PING", c.do("PING"), SimpleString, "PONG")
	expect(t, "SET", c.do("SET", k[0], "v\r\n1"), SimpleString, "OK")
	expect(t, "GET", c.do("GET", k[0]), BulkString, "v\r\n1")
	if n := c.do("GET", k[0]+":missing"); n.kind != BulkString || n.n != -1 {
		t.Fatalf("GET missing: %v %d", n.kind, n.n)
	}
	if n := c.do("BLPOP", k[0]+":missing", "0.01"); n.kind != Array || n.n != -1 {
		t.Fatalf("BLPOP timeout: %v %d", n.kind, n.n)
	}
	expect(t, "HSET", c.do("HSET", k[1], "f1", "v1", "f2", "v2"), Integer, "2")
	if n := c.do("HGETALL", k[1]); n.kind != Array || mapOf(t, n)["f2"].str != "v2" {
		t.Fatalf("HGETALL: %v %d elements", n.kind, len(n.elems))
	}
	c.do("SADD", k[2], "a", "b", "c")
	if n := c.do("SMEMBERS", k[2]); n.kind != Array || len(n.elems) != 3 {
		t.Fatalf("SMEMBERS: %v %d", n.kind, len(n.elems))
	}
	if n := c.do("CONFIG", "GET", "maxmemory-policy"); n.kind != Array || len(n.elems) != 2 {
		t.Fatalf("CONFIG GET: %v %d", n.kind, len(n.elems))
	}
	c.do("ZADD", k[3], "1.5", "m")
	expect(t, "ZSCORE", c.do("ZSCORE", k[3], "m"), BulkString, "1.5")
	expect(t, "Lua double", c.do("EVAL", "return {double=1.5}", "0"), BulkString, "1.5")
	if n := c.do("INFO", "server"); n.kind != BulkString || !strings.Contains(n.str, "redis_version:") {
		t.Fatalf("INFO: %v", n.kind)
	}
	if n := c.do("NOSUCHCOMMAND"); n.kind != SimpleError || !strings.HasPrefix(n.str, "ERR unknown command") {
		t.Fatalf("unknown command: %v %q", n.kind, n.str)
	}
	c.send("MULTI")
	c.send("INCR", k[0]+":n")
	c.send("EXEC")
	expect(t, "MULTI", c.read(), SimpleString, "OK")
	expect(t, "QUEUED", c.read(), SimpleString, "QUEUED")
	if n := c.read(); n.kind != Array || len(n.elems) != 1 || n.elems[0].str != "1" {
		t.Fatalf("EXEC: %v %d", n.kind, len(n.elems))
	}
	c.do("DEL", k[0]+":n")
	big := strings.Repeat("0123456789abcdef", 20000) // 320 kB, streamed
	c.do("SET", k[4], big)
	expect(t, "GET big", c.do("GET", k[4]), BulkString, big)
}

func TestRedisRESP3(t *testing.T) {
	c := dialRedis(t, ReplyOptions{ChunkSize: 1024}) // INFO comes in chunks
	k := testKeys(t, "str", "hash", "set", "zset")
	hello := c.do("HELLO", "3")
	m := mapOf(t, hello)
	if hello.kind != Map || m["server"].str != "redis" || m["proto"].str != "3" || m["modules"].kind != Array {
		t.Fatalf("HELLO 3: %v %v", hello.kind, m)
	}
	for _, field := range []string{"version", "id", "mode", "role"} {
		if m[field] == nil {
			t.Fatalf("HELLO 3 without %s", field)
		}
	}
	if n := c.do("CONFIG", "GET", "maxmemory-policy"); n.kind != Map || len(n.elems) != 2 {
		t.Fatalf("CONFIG GET: %v %d", n.kind, len(n.elems))
	}
	c.do("HSET", k[1], "f1", "v1", "f2", "v2")
	if n := c.do("HGETALL", k[1]); n.kind != Map || mapOf(t, n)["f1"].str != "v1" {
		t.Fatalf("HGETALL: %v", n.kind)
	}
	c.do("SADD", k[2], "a", "b", "c")
	if n := c.do("SMEMBERS", k[2]); n.kind != Set || len(n.elems) != 3 {
		t.Fatalf("SMEMBERS: %v %d", n.kind, len(n.elems))
	}
	expect(t, "GET missing", c.do("GET", k[0]), Null, "")
	expect(t, "BLPOP timeout", c.do("BLPOP", k[0], "0.01"), Null, "")
	c.do("ZADD", k[3], "1.5", "m")
	expect(t, "ZSCORE", c.do("ZSCORE", k[3], "m"), Double, "1.5")
	expect(t, "Lua double", c.do("EVAL", "return {double=1.5}", "0"), Double, "1.5")
	expect(t, "Lua inf", c.do("EVAL", "return {double=1/0}", "0"), Double, "inf")
	expect(t, "Lua -inf", c.do("EVAL", "return {double=-1/0}", "0"), Double, "-inf")
	if n := c.do("EVAL", "return {double=0/0}", "0"); n.kind != Double || !strings.HasSuffix(n.str, "nan") {
		t.Fatalf("Lua nan: %v %q", n.kind, n.str) // Redis 7.0 sends -nan
	}
	expect(t, "Lua true", c.do("EVAL", "redis.setresp(3); return true", "0"), Boolean, "t")
	expect(t, "Lua false", c.do("EVAL", "redis.setresp(3); return false", "0"), Boolean, "f")
	expect(t, "Lua big number", c.do("EVAL", "return {big_number='123456789012345678901234567890'}", "0"),
		BigNumber, "123456789012345678901234567890")
	v := c.do("EVAL", "return {verbatim_string={format='mkd', string='# hi'}}", "0")
	if v.kind != Verbatim || v.format != "mkd" || v.str != "# hi" {
		t.Fatalf("Lua verbatim: %v %q %q", v.kind, v.format, v.str)
	}
	info := c.do("INFO")
	if info.kind != Verbatim || info.format != "txt" || !strings.Contains(info.str, "redis_version:") || len(info.str) < 1024 {
		t.Fatalf("INFO: %v %q, %d bytes", info.kind, info.format, len(info.str))
	}
	hgetall := c.do("EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", k[1])
	if hgetall.kind != Map || len(hgetall.elems) != 4 {
		t.Fatalf("Lua HGETALL in RESP3: %v %d", hgetall.kind, len(hgetall.elems))
	}
}

func TestRedisPushMessages(t *testing.T) {
	sub := dialRedis(t, ReplyOptions{})
	pub := dialRedis(t, ReplyOptions{})
	channel := testenv.Unique("airlock_resp_chan")
	sub.do("HELLO", "3")
	if n := sub.do("SUBSCRIBE", channel); n.kind != Push || !n.push || n.elems[0].str != "subscribe" {
		t.Fatalf("SUBSCRIBE: %v push=%v", n.kind, n.push)
	}
	// A subscribed RESP3 client still gets ordinary replies, told apart from
	// push messages by the Push flag alone.
	if n := sub.do("PING"); n.kind != SimpleString || n.push || n.str != "PONG" {
		t.Fatalf("PING while subscribed: %v push=%v %q", n.kind, n.push, n.str)
	}
	expect(t, "PUBLISH", pub.do("PUBLISH", channel, "hello"), Integer, "1")
	msg := sub.read()
	if msg.kind != Push || !msg.push || len(msg.elems) != 3 || msg.elems[0].str != "message" || msg.elems[2].str != "hello" {
		t.Fatalf("message: %v push=%v %d elements", msg.kind, msg.push, len(msg.elems))
	}
	for _, e := range msg.elems {
		if !e.push {
			t.Fatal("an element of a push message lacks the Push flag")
		}
	}
	if n := sub.do("UNSUBSCRIBE", channel); n.kind != Push || n.elems[0].str != "unsubscribe" {
		t.Fatalf("UNSUBSCRIBE: %v", n.kind)
	}
}

func TestRedisTrackingInvalidation(t *testing.T) {
	c := dialRedis(t, ReplyOptions{})
	key := testKeys(t, "tracked")[0]
	c.do("HELLO", "3")
	expect(t, "CLIENT TRACKING", c.do("CLIENT", "TRACKING", "ON"), SimpleString, "OK")
	c.do("SET", key, "1")
	c.do("GET", key)
	// Changing a key this client read sends it an invalidation push, around
	// the reply to the SET itself; which comes first is the server's choice.
	c.send("SET", key, "2")
	var sawReply, sawPush bool
	for i := 0; i < 2; i++ {
		n := c.read()
		switch {
		case n.push && n.kind == Push && n.elems[0].str == "invalidate" && n.elems[1].elems[0].str == key:
			sawPush = true
		case !n.push && n.kind == SimpleString && n.str == "OK":
			sawReply = true
		default:
			t.Fatalf("unexpected %v push=%v %q", n.kind, n.push, n.str)
		}
	}
	if !sawReply || !sawPush {
		t.Fatalf("reply %v, invalidation %v", sawReply, sawPush)
	}
}

// TestInlineSplitMatchesRedis sends each split case to the real Redis as an
// inline RPUSH and checks the server stored the arguments the splitter
// found, or refused the line as unbalanced.
func TestInlineSplitMatchesRedis(t *testing.T) {
	c := dialRedis(t, ReplyOptions{})
	key := testKeys(t, "split")[0]
	for _, tc := range splitCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ok && len(tc.want) == 0 {
				return
			}
			conn := c
			if !tc.ok { // Redis closes the connection after a protocol error
				conn = dialRedis(t, ReplyOptions{})
			}
			if _, err := conn.conn.Write([]byte("RPUSH " + key + " " + tc.line + "\r\n")); err != nil {
				t.Fatal(err)
			}
			n := conn.read()
			if !tc.ok {
				expect(t, "unbalanced", n, SimpleError, "ERR Protocol error: unbalanced quotes in request")
				return
			}
			lr := c.do("LRANGE", key, "0", "-1")
			c.do("DEL", key)
			var got []string
			for _, e := range lr.elems {
				got = append(got, e.str)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("Redis stored %q, the splitter found %q", got, tc.want)
			}
		})
	}
}

// TestRedisProtocolErrors sends malformed commands to the real Redis and
// checks it answers with the texts the request decoder uses.
func TestRedisProtocolErrors(t *testing.T) {
	cases := []string{
		// Not "*1048577": Redis 7 takes counts up to 2^31-1 and waits for
		// the arguments, where the gateway stops at 1024*1024.
		"*01\r\n", "*-0\r\n", "*1\r\n:4\r\n", "*1\r\n\r\n", "*1\r\n$-1\r\n",
		"*1\r\n$536870913\r\n", "ECHO \"a\r\n", "ECHO 'a'b\r\n",
	}
	for _, in := range cases {
		t.Run(strings.TrimSpace(in), func(t *testing.T) {
			_, ours := decodeCommands(in, RequestLimits{}, false, 4096, false)
			var want string
			if pe, ok := ours.(*ProtocolError); ok {
				want = "ERR " + pe.Msg
			}
			c := dialRedis(t, ReplyOptions{})
			if _, err := c.conn.Write([]byte(in)); err != nil {
				t.Fatal(err)
			}
			n := c.read()
			if n.kind != SimpleError || n.str != want {
				t.Fatalf("Redis replied %v %q, the decoder says %q", n.kind, n.str, want)
			}
		})
	}
}
