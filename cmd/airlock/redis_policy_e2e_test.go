package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestRedisDangerousCommandsRefused sends every command the rule catalogue
// names as dangerous: each is refused with the rule that caught it (the
// policy's reviews are in retry mode, refused at once with a request id),
// and the session goes on.
func TestRedisDangerousCommandsRefused(t *testing.T) {
	in, addr := startRedisMain(t)
	k := redisKeys(t, "x")
	c := authed(t, addr, "dev@plain", devToken)
	for _, tc := range []struct{ cmd, rule string }{
		{"FLUSHALL", "admin.flush"},
		{"FLUSHDB ASYNC", "admin.flush"},
		{"SWAPDB 0 1", "admin.flush"},
		{"KEYS *", "admin.blocking"},
		{"CLIENT PAUSE 1000", "admin.blocking"},
		{"CLIENT LIST", "admin.inspect"},
		{"CLIENT KILL ID 1", "admin.kill"},
		{"MONITOR", "admin.monitor"},
		{"SYNC", "admin.monitor"},
		{"PSYNC ? -1", "admin.monitor"},
		{"DEBUG SLEEP 0", "admin.debug"},
		{"SHUTDOWN NOSAVE", "admin.shutdown"},
		{"CONFIG GET maxmemory", "admin.config"},
		{"CONFIG SET dir /tmp", "reach.file"},
		{"CONFIG SET requirepass x", "admin.config"},
		{"MODULE LOAD /tmp/x.so", "reach.plugin"},
		{"MIGRATE 10.0.0.1 6379 k 0 1000", "reach.network"},
		{"REPLICAOF 10.0.0.1 6379", "reach.network"},
		{"REPLICAOF NO ONE", "admin.replication"},
		{"FAILOVER", "admin.replication"},
		{"SAVE", "admin.maintenance"},
		{"BGREWRITEAOF", "admin.maintenance"},
		{"EVAL return\\ 1 0", "code.script"},
		{"SCRIPT FLUSH", "code.script"},
		{"FUNCTION FLUSH", "code.define"},
		{"ACL SETUSER eve on >pw", "privilege.role"},
		{"ACL LIST", "read.credentials"},
		{"CLUSTER MEET 10.0.0.1 6379", "reach.network"},
		{"FT.DROPINDEX idx", "command.unknown"},
		{"GET", "command.unknown"},
	} {
		args := strings.Fields(strings.ReplaceAll(tc.cmd, "\\ ", "\x00"))
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "\x00", " ")
		}
		got := c.do(args...)
		if !strings.HasPrefix(got, "-NOPERM Airlock refused the command") || !strings.Contains(got, tc.rule) {
			t.Errorf("%s: %s", tc.cmd, got)
		}
	}
	// What the policy holds names its request.
	if got := c.do("FLUSHDB"); !strings.Contains(got, "approval request") && !strings.Contains(got, "airlock approvals approve") {
		t.Errorf("FLUSHDB in retry mode names no request: %s", got)
	}
	if got := c.do("SET", k[0], "still usable"); got != "+OK" {
		t.Fatalf("after the refusals: %s", got)
	}
	m := in.metrics(t)
	if !strings.Contains(m, `airlock_commands_total{action="deny",connection="plain",enforced="true",protocol="redis",risk="critical"}`) {
		t.Errorf("metrics lack the denied critical commands:\n%s", grep(m, "airlock_commands_total"))
	}
}

// TestRedisDatabaseFixed keeps callers in their connection's database.
func TestRedisDatabaseFixed(t *testing.T) {
	_, addr := startRedisMain(t)
	k := redisKeys(t, "moved")
	c := authed(t, addr, "dev@plain", devToken)
	want := fmt.Sprintf(`-NOPERM connection "plain" is fixed to database %d`, testDB)
	for _, cmd := range [][]string{{"SELECT", "3"}, {"MOVE", k[0], "3"}, {"COPY", k[0], k[0] + "x", "DB", "4"}, {"SWAPDB", fmt.Sprint(testDB), "5"}} {
		if got := c.do(cmd...); got != want && !strings.Contains(got, "admin.flush") {
			t.Errorf("%v: %s", cmd, got)
		}
	}
	if got := c.do("SELECT", fmt.Sprint(testDB)); got != "+OK" {
		t.Errorf("SELECT of its own database: %s", got)
	}
	c.do("SET", k[0], "here")
	if v := directRedis(t, testDB).Get(context.Background(), k[0]).Val(); v != "here" {
		t.Fatalf("the session did not write to database %d: %q", testDB, v)
	}
	// RESET takes the upstream to database 0 and logs it out; Airlock
	// logs it in again in its database.
	if got := c.do("RESET"); got != "+RESET" {
		t.Fatalf("RESET: %s", got)
	}
	if got := c.do("GET", k[0]); got != "$here" {
		t.Fatalf("GET after RESET: %s", got)
	}
	if got := c.do("QUIT"); got != "+OK" {
		t.Fatalf("QUIT: %s", got)
	}
	c.expectClosed()
}

// TestRedisFlushDBHeldForApproval holds FLUSHDB, in hold mode, until a
// reviewer approves it from the CLI while the client waits; a denied one
// fails with an error that names its request.
func TestRedisFlushDBHeldForApproval(t *testing.T) {
	t.Parallel()
	testenv.Need(t, "Redis", testenv.RedisAddr)
	in := startAirlock(t, redisConfig(fmt.Sprintf(holdConfig, "1m"), fmt.Sprintf(`
  - name: scratch
    protocol: redis
    upstream: {address: %s, database: %d}
    allow: [dev]
`, testenv.RedisAddr, flushDB)))
	ctx := context.Background()
	direct := directRedis(t, flushDB)
	direct.Set(ctx, "airlock_e2e_keep", "1", 0)
	t.Cleanup(func() { direct.FlushDB(ctx) })
	// One connection: the user name alone chooses it.
	rdb := throughAirlock(t, in.addr("redis"), "dev", devToken, 3)

	h := startHeldRedis(func() error { return rdb.FlushDB(ctx).Err() })
	id := pendingRequest(t, in, "scratch", "flushdb")
	if n := direct.Exists(ctx, "airlock_e2e_keep").Val(); n != 1 {
		t.Fatal("FLUSHDB ran before it was approved")
	}
	approvalsCLI(t, in, "approve", id, "--reason", "scratch space")
	if err := h.wait(t); err != nil {
		t.Fatalf("approved FLUSHDB: %v", err)
	}
	if n := direct.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("approved FLUSHDB left %d keys", n)
	}

	direct.Set(ctx, "airlock_e2e_keep", "1", 0)
	h = startHeldRedis(func() error { return rdb.FlushDB(ctx).Err() })
	id = pendingRequest(t, in, "scratch", "flushdb")
	approvalsCLI(t, in, "deny", id, "--reason", "not now")
	err := h.wait(t)
	var rerr redis.Error
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "not now") {
		t.Fatalf("denied FLUSHDB: %v", err)
	}
	if n := direct.Exists(ctx, "airlock_e2e_keep").Val(); n != 1 {
		t.Fatal("denied FLUSHDB ran")
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("session after the denial: %v", err)
	}

	// A client that goes away while its command is held withdraws it.
	c := dialRaw(t, in.addr("redis"))
	c.do("AUTH", "dev", devToken)
	c.send("FLUSHDB")
	id = pendingRequest(t, in, "scratch", "flushdb")
	c.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(approvalsCLI(t, in, "show", id), "cancelled") {
		if time.Now().After(deadline) {
			t.Fatal("the request of a client that went away is still pending")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := direct.Exists(ctx, "airlock_e2e_keep").Val(); n != 1 {
		t.Fatal("FLUSHDB of a client that went away ran")
	}
}
