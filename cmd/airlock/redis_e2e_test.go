package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// redisMain is the configuration most Redis tests share: two connections to
// the test database, "cache" masked for its callers, "plain" not; commands
// a policy sends to review are refused at once with the request's id.
var redisMain = redisConfig(`
redis:
  max_bulk: 1MiB
  max_masked_value: 64KiB
approvals:
  mode: retry
  timeout: 1m
  reviewers: [dev]
  self_approval: true
`, fmt.Sprintf(`
  - name: cache
    protocol: redis
    upstream: {address: %[1]s, database: %[2]d}
    default_identity: dev
    allow: [dev, agent]
%[3]s
    masking:
      detect:
        - {entity: email, strategy: partial}
      columns:
        - {name: "secret*", strategy: redact}
        - {name: ssn, strategy: "null"}
  - name: plain
    protocol: redis
    upstream: {address: %[1]s, database: %[2]d}
    allow: [dev]
%[3]s
`, testenv.RedisAddr, testDB, redisPolicy))

func startRedisMain(t *testing.T) (*instance, string) {
	t.Helper()
	testenv.Need(t, "Redis", testenv.RedisAddr)
	in := startAirlock(t, redisMain)
	return in, in.addr("redis")
}

// authed is a raw connection logged in as user.
func authed(t *testing.T, addr, user, token string) *redisConn {
	t.Helper()
	c := dialRaw(t, addr)
	if got := c.do("AUTH", user, token); got != "+OK" {
		t.Fatalf("AUTH %s: %s", user, got)
	}
	return c
}

func TestRedisAuthentication(t *testing.T) {
	_, addr := startRedisMain(t)
	t.Run("before AUTH", func(t *testing.T) {
		c := dialRaw(t, addr)
		for _, tc := range []struct{ args, want string }{
			{"GET k", "-NOAUTH Authentication required."},
			{"PING", "+PONG"},
			{"HELLO 3", "-" + "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"},
			{"AUTH dev@cache wrong", "-WRONGPASS invalid username-password pair or user is disabled."},
			{"AUTH dev@nosuch dev-token", `-NOPERM connection "nosuch" does not exist or identity "dev" may not use it`},
		} {
			if got := c.do(strings.Fields(tc.args)...); got != tc.want {
				t.Errorf("%s: got %q, want %q", tc.args, got, tc.want)
			}
		}
	})
	t.Run("forms", func(t *testing.T) {
		for _, tc := range []struct{ args, want string }{
			{"AUTH dev@cache dev-token", "+OK"},
			{"AUTH @cache dev-token", "+OK"},        // the connection's default identity
			{"AUTH default@cache dev-token", "+OK"}, // as clients send AUTH <token>
			{"AUTH agent@cache agent-token", "+OK"},
			{"AUTH agent@plain agent-token", `-NOPERM connection "plain" does not exist or identity "agent" may not use it`},
			{"AUTH dev dev-token", "-ERR Airlock serves several Redis connections: authenticate as <identity>@<connection>"},
		} {
			c := dialRaw(t, addr)
			if got := c.do(strings.Fields(tc.args)...); got != tc.want {
				t.Errorf("%s: got %q, want %q", tc.args, got, tc.want)
			}
		}
	})
	t.Run("HELLO 3 AUTH SETNAME", func(t *testing.T) {
		c := dialRaw(t, addr)
		got := c.do("HELLO", "3", "AUTH", "dev@cache", "dev-token", "SETNAME", "e2e-client")
		if !strings.HasPrefix(got, "%{$server $redis $version $7") || !strings.Contains(got, "$proto :3") || !strings.Contains(got, "$modules *[]") {
			t.Fatalf("HELLO: %s", got)
		}
		if got := c.do("CLIENT", "GETNAME"); got != "$e2e-client" {
			t.Fatalf("CLIENT GETNAME: %s", got)
		}
		// A session proves its identity again, but cannot change it.
		if got := c.do("AUTH", "dev@cache", "dev-token"); got != "+OK" {
			t.Fatalf("AUTH again: %s", got)
		}
		if got := c.do("AUTH", "agent@cache", "agent-token"); !strings.HasPrefix(got, "-ERR Airlock sessions cannot change identity") {
			t.Fatalf("AUTH as another identity: %s", got)
		}
		if got := c.do("HELLO", "2"); !strings.HasPrefix(got, "*[$server $redis") || !strings.Contains(got, "$proto :2") {
			t.Fatalf("HELLO 2: %s", got)
		}
		if got := c.do("HELLO", "4"); got != "-NOPROTO unsupported protocol version" {
			t.Fatalf("HELLO 4: %s", got)
		}
	})
	t.Run("too many wrong tokens", func(t *testing.T) {
		c := dialRaw(t, addr)
		for range maxWrongTokens {
			if got := c.do("AUTH", "dev@cache", "nope"); !strings.HasPrefix(got, "-WRONGPASS") {
				t.Fatalf("wrong token: %s", got)
			}
		}
		c.expectClosed()
	})
}

// maxWrongTokens is the engine's limit of wrong tokens per connection.
const maxWrongTokens = 3

func TestRedisCLIThroughAirlock(t *testing.T) {
	in, addr := startRedisMain(t)
	k := redisKeys(t, "str", "hash", "pipe")
	login := []string{"--user", "dev@cache", "--pass", devToken}
	run := func(args ...string) string {
		t.Helper()
		out, err := redisCLI(t, addr, "", append(login, args...)...)
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	if got := run("SET", k[0], "mail bob@example.com"); got != "OK" {
		t.Fatalf("SET: %s", got)
	}
	if got := run("GET", k[0]); got != "mail b***@example.com" {
		t.Fatalf("GET through the masked connection: %q", got)
	}
	run("HSET", k[1], "secret_key", "s3cr3t", "email", "ann@example.org", "ssn", "123-45-6789", "plain", "p")
	got := run("--no-raw", "-3", "HGETALL", k[1])
	for _, want := range []string{`"secret_key" => "[redacted]"`, `"email" => "a***@example.org"`, `"ssn" => ""`, `"plain" => "p"`} {
		if !strings.Contains(got, want) {
			t.Errorf("RESP3 HGETALL lacks %s:\n%s", want, got)
		}
	}
	if got := run("HGETALL", k[1]); !strings.Contains(got, "[redacted]") || strings.Contains(got, "s3cr3t") || strings.Contains(got, "123-45") {
		t.Errorf("RESP2 HGETALL not masked by field:\n%s", got)
	}
	if got := run("--no-raw", "-3", "HELLO"); !strings.Contains(got, `"proto" => (integer) 3`) {
		t.Errorf("redis-cli -3 HELLO:\n%s", got)
	}
	// --pipe reads the protocol from standard input.
	var pipe strings.Builder
	for i := range 500 {
		pipe.Write(resp.AppendCommand(nil, "RPUSH", k[2], fmt.Sprint(i)))
	}
	out, err := redisCLI(t, addr, pipe.String(), append(login, "--pipe")...)
	if err != nil || !strings.Contains(out, "errors: 0, replies: 500") {
		t.Fatalf("redis-cli --pipe: %v\n%s", err, out)
	}
	if n := directRedis(t, testDB).LLen(context.Background(), k[2]).Val(); n != 500 {
		t.Fatalf("--pipe pushed %d elements", n)
	}
	// Inline commands, as typed into telnet.
	c := dialRaw(t, addr)
	c.write("AUTH dev@plain dev-token\r\nSET " + k[0] + " 'two words'\r\nGET " + k[0] + "\r\nPING\r\n")
	for _, want := range []string{"+OK", "+OK", "$two words", "+PONG"} {
		if got := c.read(); got != want {
			t.Fatalf("inline: got %q, want %q", got, want)
		}
	}
	c.write("SET k \"unbalanced\r\n")
	if got := c.read(); got != "-ERR Protocol error: unbalanced quotes in request" {
		t.Fatalf("unbalanced inline: %q", got)
	}
	c.expectClosed()
	m := in.metrics(t)
	if !strings.Contains(m, `airlock_commands_total{action="allow",connection="cache",enforced="true",protocol="redis",risk="low"}`) {
		t.Errorf("metrics lack Redis commands:\n%s", grep(m, "airlock_commands_total"))
	}
}

func TestRedisGoRedis(t *testing.T) {
	_, addr := startRedisMain(t)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ctx := context.Background()
			k := redisKeys(t, "n", "h", "w", "list", "ch")
			rdb := throughAirlock(t, addr, "dev@cache", devToken, proto)
			direct := directRedis(t, testDB)

			// A pipeline of many commands in flight, replies in order.
			cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for range 1000 {
					p.Incr(ctx, k[0])
				}
				p.FlushDB(ctx) // refused in the middle of the pipeline
				p.Incr(ctx, k[0])
				return nil
			})
			if err == nil || len(cmds) != 1002 {
				t.Fatalf("pipeline: %v, %d replies", err, len(cmds))
			}
			for i, c := range cmds[:1000] {
				if v := c.(*redis.IntCmd).Val(); v != int64(i+1) {
					t.Fatalf("pipeline reply %d is %d", i, v)
				}
			}
			if err := cmds[1000].Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "admin.flush") {
				t.Fatalf("FLUSHDB in a pipeline: %v", err)
			}
			if v := cmds[1001].(*redis.IntCmd).Val(); v != 1001 {
				t.Fatalf("after the refusal: %d", v)
			}

			// Hash fields are masked by their names.
			rdb.HSet(ctx, k[1], "secret_pin", "4321", "email", "joe@example.com", "ssn", "078-05-1120", "city", "Oslo")
			h, err := rdb.HGetAll(ctx, k[1]).Result()
			if err != nil || h["secret_pin"] != "[redacted]" || h["email"] != "j***@example.com" || h["ssn"] != "" || h["city"] != "Oslo" {
				t.Fatalf("HGETALL: %v %v", h, err)
			}
			vals, err := rdb.HMGet(ctx, k[1], "city", "secret_pin", "ssn").Result()
			if err != nil || vals[0] != "Oslo" || vals[1] != "[redacted]" || vals[2] != nil {
				t.Fatalf("HMGET: %v %v", vals, err)
			}
			if v := rdb.HGet(ctx, k[1], "secret_pin").Val(); v != "[redacted]" {
				t.Fatalf("HGET: %q", v)
			}

			// WATCH: a transaction runs when the key did not change…
			incr := func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, k[2]).Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, k[2], n+1, 0)
					p.HGetAll(ctx, k[1])
					return nil
				})
				return err
			}
			if err := rdb.Watch(ctx, incr, k[2]); err != nil {
				t.Fatalf("WATCH transaction: %v", err)
			}
			// … and fails when another client changed it meanwhile.
			err = rdb.Watch(ctx, func(tx *redis.Tx) error {
				direct.Set(ctx, k[2], 100, 0)
				return incr(tx)
			}, k[2])
			if !errors.Is(err, redis.TxFailedErr) {
				t.Fatalf("WATCH conflict: %v", err)
			}
			// A refused command fails the whole transaction.
			_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, k[2])
				p.FlushAll(ctx)
				p.Incr(ctx, k[2])
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
				t.Fatalf("transaction with a refused command: %v", err)
			}
			if v := direct.Get(ctx, k[2]).Val(); v != "100" {
				t.Fatalf("a refused transaction ran in part: %s", v)
			}
			// EXEC's reply is masked by each command's fields.
			cmds, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HGetAll(ctx, k[1])
				p.HGet(ctx, k[1], "secret_pin")
				return nil
			})
			if err != nil || cmds[0].(*redis.MapStringStringCmd).Val()["secret_pin"] != "[redacted]" || cmds[1].(*redis.StringCmd).Val() != "[redacted]" {
				t.Fatalf("masked EXEC: %v %v", cmds, err)
			}

			// Blocking commands with their timeouts.
			if err := rdb.Do(ctx, "BLPOP", k[3], "0.1").Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("BLPOP timeout: %v", err)
			}
			time.AfterFunc(200*time.Millisecond, func() { direct.RPush(ctx, k[3], "x") })
			if v, err := rdb.BLPop(ctx, 10*time.Second, k[3]).Result(); err != nil || v[1] != "x" {
				t.Fatalf("BLPOP: %v %v", v, err)
			}
			time.AfterFunc(200*time.Millisecond, func() { direct.XAdd(ctx, &redis.XAddArgs{Stream: k[3] + ":s", Values: []string{"f", "v"}}) })
			t.Cleanup(func() { direct.Del(ctx, k[3]+":s") })
			if v, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{k[3] + ":s", "$"}, Block: 10 * time.Second}).Result(); err != nil || len(v) != 1 {
				t.Fatalf("XREAD BLOCK: %v %v", v, err)
			}

			// Pub/sub, payloads masked.
			sub := rdb.Subscribe(ctx, k[4])
			defer sub.Close()
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatalf("SUBSCRIBE: %v", err)
			}
			if err := sub.PSubscribe(ctx, k[4]+"*"); err != nil {
				t.Fatalf("PSUBSCRIBE: %v", err)
			}
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatalf("PSUBSCRIBE: %v", err)
			}
			if n := direct.Publish(ctx, k[4], "write to kim@example.net").Val(); n != 2 {
				t.Fatalf("PUBLISH reached %d subscriptions", n)
			}
			ch := sub.Channel()
			for range 2 {
				select {
				case m := <-ch:
					if m.Payload != "write to k***@example.net" {
						t.Fatalf("message payload: %q", m.Payload)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no message")
				}
			}
			if err := sub.Unsubscribe(ctx, k[4]); err != nil {
				t.Fatal(err)
			}
			if v := rdb.Incr(ctx, k[0]).Val(); v != 1002 {
				t.Fatalf("after pub/sub: %d", v)
			}
		})
	}
}
